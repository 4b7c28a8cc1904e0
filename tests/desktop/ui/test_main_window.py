"""The main window against the fake engine: drop, rows, status, settings binding, shortcuts."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent, QGuiApplication

from desktop.ui.main_window import MainWindow


def photo(path: Path) -> Path:
    Image.new("RGB", (8, 8), (10, 120, 200)).save(path)
    return path


@pytest.fixture
def window(make_controller, qtbot, tmp_path):
    controller = make_controller()
    window = MainWindow(controller, QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    return window


def drop(window: MainWindow, paths: list[Path]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path)) for path in paths])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(event)


def test_drop_a_folder_rows_show_states_and_the_status(window, qtbot, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    photo(folder / "a.png")
    photo(folder / "bad.png")
    assert window.status_indicator.label.text() == "Engine ready"
    assert window.queue.drop_hint.isVisible()
    drop(window, [folder])
    jobs = window.controller.jobs
    assert jobs.rowCount() == 2 and not window.queue.drop_hint.isVisible()
    qtbot.waitUntil(lambda: [j.state for j in jobs.jobs] == ["done", "failed"], timeout=15_000)
    assert "failed: cannot read" in jobs.jobs[1].status_text
    assert "fix" in jobs.data(jobs.index(1), Qt.ItemDataRole.ToolTipRole)
    window.queue.list.grab()  # the delegate paints every state without error


def test_settings_panel_binds_both_ways_and_resets(window):
    panel, settings = window.settings_panel, window.controller.settings
    panel.editors["steps"].setValue(12)
    assert settings.value("steps") == 12
    settings.set_value("sampler", "dpm++")
    assert panel.editors["sampler"].currentData() == "dpm++"
    panel.reset_button.click()
    assert settings.value("steps") == 50 and panel.editors["steps"].value() == 50


def test_paste_an_image_and_copy_the_diagnostic_report(window, qtbot):
    from PySide6.QtGui import QColor, QImage

    image = QImage(8, 8, QImage.Format.Format_RGB32)
    image.fill(QColor("orange"))
    QGuiApplication.clipboard().setImage(image)
    window.paste()
    assert window.controller.jobs.rowCount() == 1
    window.copy_diagnostics()
    assert "DreamClear Studio diagnostic report" in QGuiApplication.clipboard().text()
    shortcuts = {a.shortcut().toString() for a in window.actions()}
    assert {"Ctrl+O", "Ctrl+V", "Ctrl+E", "Del", "Ctrl+R", "Alt+Up", "Ctrl+L"} <= shortcuts
