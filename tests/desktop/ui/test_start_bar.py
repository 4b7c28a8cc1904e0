"""The queue as a new user meets it, in the main window against the fake engine: photos wait
for Restore, the row's bar fills, the selected job shows its size and time (a warning when it
is large), a failure is shown in full and retried with a changed setting, a result runs again."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtTest import QTest

from desktop.testing.fake_engine import fake_engine_argv
from desktop.ui.job_delegate import BAR, MARGIN, ROW_HEIGHT, THUMB
from desktop.ui.main_window import MainWindow


def photo(path: Path, size: tuple[int, int] = (8, 6)) -> Path:
    Image.new("RGB", size, (10, 120, 200)).save(path)
    return path


@pytest.fixture
def make_window(make_controller, open_window):
    """`make_window(*fake engine options)`: the active window; photos wait for Restore."""

    def make(*engine_options: str) -> MainWindow:
        argv = fake_engine_argv("normal", *engine_options)
        return open_window(make_controller(argv, auto_start=False))

    return make


def states(window: MainWindow) -> list[str]:
    return [job.state for job in window.controller.jobs.jobs]


def test_photos_wait_for_restore_which_the_button_and_ctrl_return_start(
    make_window, qtbot, tmp_path
):
    window = make_window()
    bar = window.start_bar
    assert not bar.start_button.isEnabled() and not bar.auto_start.isChecked()
    window.controller.add_paths([photo(tmp_path / "a.png"), photo(tmp_path / "b.png")])
    assert states(window) == ["waiting", "waiting"]
    assert bar.start_button.isEnabled() and bar.start_button.text() == "Restore 2 photos"
    bar.start_button.click()
    qtbot.waitUntil(lambda: states(window) == ["done", "done"], timeout=15_000)
    assert not bar.start_button.isEnabled()
    window.controller.add_paths([photo(tmp_path / "c.png")])
    assert bar.start_button.text() == "Restore"
    QTest.keyClick(window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: states(window) == ["done"] * 3, timeout=15_000)
    bar.auto_start.setChecked(True)
    assert window.controller.settings.auto_start
    window.controller.add_paths([photo(tmp_path / "d.png")])
    qtbot.waitUntil(lambda: states(window) == ["done"] * 4, timeout=15_000)


def test_a_running_row_fills_its_bar_and_shows_the_label(make_window, qtbot, tmp_path):
    window = make_window("--steps", "200", "--step-s", "0.03")
    [job] = window.controller.add_paths([photo(tmp_path / "a.png")])
    window.start_bar.start()
    qtbot.waitUntil(lambda: job.state == "running" and job.fraction > 0.2, timeout=15_000)
    assert job.status_text.startswith("Denoising ")
    window.queue.clear_selection()
    view = window.queue.list
    row = view.visualRect(window.controller.jobs.index(0))
    image = view.viewport().grab().toImage()
    y = row.bottom() - MARGIN - BAR // 2
    x = row.left() + MARGIN + THUMB + 8 + BAR  # inside the fill, past its round end
    highlight = view.palette().color(QPalette.ColorRole.Highlight)
    assert QColor(image.pixel(x, y)) == highlight
    x_end = row.right() - MARGIN - BAR
    assert QColor(image.pixel(x_end, y)) != highlight  # the rest is the groove
    window.controller.cancel(job.id)
    qtbot.waitUntil(lambda: job.state == "cancelled", timeout=15_000)


def test_the_selected_job_shows_its_size_and_time_and_warns_when_large(
    make_window, qtbot, tmp_path
):
    window = make_window()
    [job] = window.controller.add_paths([photo(tmp_path / "wide.png", (3000, 2000))])
    qtbot.waitUntil(lambda: job.input_size is not None)
    window.queue.select(job.id)
    bar = window.start_bar
    assert "Output 12000 × 8000 px (96.0 MP, about 144 MB)" in bar.estimate.text()
    assert "with dreamclear (a typical speed)" in bar.estimate.text()
    assert bar.warning.isVisible() and "96 MP is over 32 MP" in bar.warning.text()
    upscale = window.settings_panel.editors["upscale"]
    upscale.setCurrentIndex(upscale.findData(2))  # edits the selected job
    assert job.options.upscale == 2
    assert "6000 × 4000 px" in bar.estimate.text() and not bar.warning.isVisible()


def test_a_failure_is_shown_in_full_and_retried_with_the_setting_changed(
    make_window, qtbot, tmp_path
):
    window = make_window("--models", "starter=installed,dreamclear=missing")
    window.controller.settings.set_value("model", "dreamclear")
    [job] = window.controller.add_paths([photo(tmp_path / "a.png")])
    window.start_bar.start()
    qtbot.waitUntil(lambda: job.state == "failed", timeout=15_000)
    row = window.queue.list.visualRect(window.controller.jobs.index(0))
    assert row.height() > ROW_HEIGHT  # the reason and the hint wrap, nothing is cut
    window.queue.select(job.id)
    panel, bar = window.settings_panel, window.start_bar
    assert "Settings of" in panel.title.text() and panel.model_name.isEnabled()
    assert bar.again_button.text() == "Retry"
    box = panel.model_name
    index = next(i for i in range(box.count()) if box.itemData(i) == "starter")
    box.setCurrentIndex(index)
    box.activated.emit(index)
    assert job.options.model == "starter"
    bar.again_button.click()
    qtbot.waitUntil(lambda: job.state == "done", timeout=15_000)
    assert window.controller.settings.value("model") == "dreamclear"  # the defaults kept theirs


def test_run_again_makes_a_new_row_to_edit_and_keeps_the_first_result(make_window, qtbot, tmp_path):
    window = make_window()
    [first] = window.controller.add_paths([photo(tmp_path / "a.png")])
    window.start_bar.start()
    qtbot.waitUntil(lambda: first.state == "done", timeout=15_000)
    window.queue.select(first.id)
    assert window.start_bar.again_button.text() == "Run again…"
    window.start_bar.again_button.click()
    jobs = window.controller.jobs.jobs
    assert len(jobs) == 2 and jobs[1].rerun_of == first.id
    again = jobs[1]
    assert window.queue.current_id() == again.id
    assert window.settings_panel.model.job_id == again.id  # the panel edits the new row
    window.settings_panel.editors["color_fix"].setCurrentIndex(2)
    assert again.options.color_fix != first.options.color_fix
    QTest.keyClick(window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: again.state == "done", timeout=15_000)
    assert first.output != again.output
    window.queue.list.grab()  # both rows paint
