"""The main window against the fake engine: drop, rows, status, settings binding, shortcuts,
geometry kept across windows."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent, QGuiApplication
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog

from desktop.testing.fake_engine import fake_engine_argv
from desktop.ui.main_window import IMAGE_FILTER, MainWindow


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


def test_on_a_machine_without_dreamclear_the_panel_greys_out_what_the_starter_ignores(
    make_controller, qtbot, ui_settings
):
    controller = make_controller(
        fake_engine_argv("normal", "--models", "starter=installed,dreamclear=missing")
    )
    window = MainWindow(controller, ui_settings)
    qtbot.addWidget(window)
    window.show()
    panel = window.settings_panel
    qtbot.waitUntil(panel.starter_hint.isVisible)  # once the engine has listed its models
    assert not panel.editors["steps"].isEnabled() and panel.editors["upscale"].isEnabled()
    controller.settings.set_value("model", "dreamclear")
    assert panel.editors["steps"].isEnabled() and not panel.starter_hint.isVisible()


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


@pytest.fixture
def ui_settings(tmp_path):
    return QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat)


def test_geometry_splitter_and_dock_are_restored_by_the_next_window(
    make_controller, qtbot, ui_settings
):
    controller = make_controller()
    first = MainWindow(controller, ui_settings)
    qtbot.addWidget(first)
    first.show()
    qtbot.waitExposed(first)
    first.resize(1100, 720)
    first.splitter.setSizes([250, 600, 250])
    first.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, first.log_dock)
    first.log_dock.hide()
    sizes = first.splitter.sizes()
    assert first.close()

    second = MainWindow(controller, ui_settings)
    qtbot.addWidget(second)
    second.show()
    qtbot.waitExposed(second)
    assert second.size() == first.size()
    assert second.splitter.sizes() == sizes
    assert second.dockWidgetArea(second.log_dock) == Qt.DockWidgetArea.RightDockWidgetArea
    assert second.log_dock.isHidden()


def press(window: MainWindow, key: Qt.Key, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    QTest.keyClick(window, key, modifiers)


@pytest.fixture
def active_window(window, qtbot):
    """The window as the active one: its shortcuts (window context) only fire then."""
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    return window


@pytest.fixture
def busy_window(make_controller, open_window, ui_settings):
    """A window whose engine takes a minute per job: jobs behind the first one stay waiting."""
    controller = make_controller(fake_engine_argv("normal", "--steps", "1000", "--step-s", "0.06"))
    return open_window(controller, ui_settings)


def test_ctrl_o_opens_the_file_dialog_and_queues_the_chosen_images(
    active_window, monkeypatch, tmp_path
):
    chosen = [str(photo(tmp_path / "a.png")), str(photo(tmp_path / "b.png"))]
    asked = []

    def get_open_file_names(parent, caption, folder, filter):
        asked.append((parent, filter))
        return chosen, filter

    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(get_open_file_names))
    press(active_window, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    assert asked == [(active_window, IMAGE_FILTER)]
    assert [job.input for job in active_window.controller.jobs.jobs] == chosen


def test_queue_shortcuts_cancel_retry_and_reorder_the_selected_job(busy_window, qtbot, tmp_path):
    window, jobs = busy_window, busy_window.controller.jobs
    window.controller.add_paths([photo(tmp_path / f"{name}.png") for name in "abc"])
    a, b, c = (job.id for job in jobs.jobs)
    qtbot.waitUntil(lambda: jobs.job(a).state == "running", timeout=10_000)
    window.queue.list.setFocus()

    window.queue.select(b)
    press(window, Qt.Key.Key_Delete)
    assert jobs.job(b).state == "cancelled"
    press(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    assert jobs.job(b).state == "waiting"

    press(window, Qt.Key.Key_Down, Qt.KeyboardModifier.AltModifier)
    assert [job.id for job in jobs.jobs] == [a, c, b]
    assert window.queue.current_id() == b  # the moved row stays selected
    press(window, Qt.Key.Key_Up, Qt.KeyboardModifier.AltModifier)
    assert [job.id for job in jobs.jobs] == [a, b, c]
    press(window, Qt.Key.Key_Up, Qt.KeyboardModifier.AltModifier)  # not above the running job
    assert [job.id for job in jobs.jobs] == [a, b, c]

    window.queue.select(a)
    with qtbot.waitSignal(
        jobs.jobChanged,
        check_params_cb=lambda _id: jobs.job(a).state == "cancelled",
        timeout=10_000,
    ):
        press(window, Qt.Key.Key_Delete)  # the running job is interrupted


def test_ctrl_e_opens_the_export_dialog_with_the_finished_results(
    active_window, qtbot, monkeypatch, tmp_path
):
    from desktop.ui.export_dialog import ExportDialog

    opened = []
    monkeypatch.setattr(ExportDialog, "open", lambda dialog: opened.append(dialog))
    controller = active_window.controller
    with qtbot.waitSignal(controller.jobFinished, timeout=10_000):
        controller.add_paths([photo(tmp_path / "a.png")])
    press(active_window, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    assert opened == [active_window.export_dialog]
    assert [job.input for job in opened[0].results] == [str(tmp_path / "a.png")]


def test_ctrl_m_opens_the_model_manager_on_the_engines_models(active_window, qtbot, monkeypatch):
    from desktop.ui.model_manager import ModelManagerDialog

    opened = []
    monkeypatch.setattr(ModelManagerDialog, "open", lambda dialog: opened.append(dialog))
    press(active_window, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)
    [dialog] = opened
    assert dialog.parent() is active_window
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1)  # the fake engine's one model
    assert dialog.models == [{"name": "dreamclear", "status": "installed"}]


def test_a_selected_waiting_job_is_edited_in_the_settings_panel(busy_window, qtbot, tmp_path):
    window, panel = busy_window, busy_window.settings_panel
    controller = window.controller
    controller.add_paths([photo(tmp_path / "a.png"), photo(tmp_path / "b.png")])
    a, b = (job.id for job in controller.jobs.jobs)
    qtbot.waitUntil(lambda: controller.jobs.job(a).state == "running", timeout=10_000)
    assert "Defaults" in panel.title.text() and not panel.defaults_button.isVisible()

    window.queue.select(b)
    assert "b.png" in panel.title.text() and panel.defaults_button.isVisible()
    panel.editors["steps"].setValue(7)
    panel.editors["sampler"].setCurrentIndex(panel.editors["sampler"].findData("dpm++"))
    options = controller.jobs.job(b).options
    assert (options.steps, options.sampler) == (7, "dpm++")
    assert controller.settings.value("steps") == 50  # the defaults stay
    assert not panel.editors["seed_locked"].isEnabled()  # the job's seed is its own

    window.queue.select(a)  # running: the panel shows the defaults
    assert "Defaults" in panel.title.text() and panel.editors["steps"].value() == 50
    window.queue.select(b)
    assert panel.editors["steps"].value() == 7
    panel.defaults_button.click()
    assert window.queue.current_id() == "" and panel.model is controller.settings


def test_the_edited_job_keeps_the_selection_and_greys_out_when_it_starts(
    make_controller, qtbot, ui_settings, tmp_path
):
    controller = make_controller(fake_engine_argv("normal", "--steps", "3", "--step-s", "0.1"))
    window = MainWindow(controller, ui_settings)
    qtbot.addWidget(window)
    window.show()
    controller.add_paths([photo(tmp_path / "a.png"), photo(tmp_path / "b.png")])
    a, b = (job.id for job in controller.jobs.jobs)
    window.queue.select(b)
    panel = window.settings_panel
    with qtbot.waitSignal(controller.jobFinished, check_params_cb=lambda i: i == a, timeout=10_000):
        pass
    assert window.queue.current_id() == b
    qtbot.waitUntil(lambda: not panel.editors["steps"].isEnabled(), timeout=10_000)
    assert "b.png" in panel.title.text() and controller.jobs.job(b).state in (
        "submitted",
        "running",
    )
