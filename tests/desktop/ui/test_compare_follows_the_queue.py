"""The compare view shows the chosen job at once: its photo before any result, its latest
preview while it runs, its own photo when it failed."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QSettings, QSize

from desktop.testing.fake_engine import fake_engine_argv
from desktop.ui.main_window import MainWindow


def photo(path: Path, size: tuple[int, int]) -> Path:
    Image.new("RGB", size, (10, 120, 200)).save(path)
    return path


def make_window(controller, qtbot, tmp_path) -> MainWindow:
    ui = QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat)
    window = MainWindow(controller, ui)
    qtbot.addWidget(window)
    window.show()
    return window


def shown(window: MainWindow) -> tuple[QSize, str]:
    canvas = window.compare.canvas
    return (canvas.after.display_size if canvas.after else QSize()), canvas.after_label


@pytest.fixture
def slow_window(make_controller, qtbot, tmp_path):
    """Jobs take a minute: the first one runs, the rest wait; the previews are the test's."""
    argv = fake_engine_argv("normal", "--steps", "1000", "--step-s", "0.06", "--no-previews")
    controller = make_controller(argv)
    return make_window(controller, qtbot, tmp_path)


def test_an_added_photo_shows_at_once_then_its_preview(slow_window, qtbot, tmp_path):
    controller = slow_window.controller
    (job,) = controller.add_paths([photo(tmp_path / "a.png", (40, 30))])
    qtbot.waitUntil(lambda: shown(slow_window)[0] == QSize(40, 30))
    assert shown(slow_window)[1] in ("Not restored yet", "Restoring…")

    qtbot.waitUntil(lambda: controller.jobs.job(job.id).state == "running", timeout=10_000)
    preview = photo(tmp_path / "a.preview.png", (80, 60))
    controller.jobs.update(job.id, preview_path=str(preview))
    qtbot.waitUntil(lambda: shown(slow_window) == (QSize(80, 60), "Preview"))
    # progress that brings no new preview does not reload the view
    with qtbot.assertNotEmitted(slow_window.compare.loader.loaded, wait=100):
        controller.jobs.update(job.id, step=2)
    # the preview rewritten in place is shown again
    photo(preview, (120, 90))
    controller.jobs.update(job.id, step=3)
    qtbot.waitUntil(lambda: shown(slow_window) == (QSize(120, 90), "Preview"))


def test_a_failed_job_shows_its_own_photo(make_controller, qtbot, tmp_path):
    window = make_window(make_controller(), qtbot, tmp_path)
    controller = window.controller
    good, bad = controller.add_paths(
        [photo(tmp_path / "a.png", (40, 30)), photo(tmp_path / "bad.png", (20, 50))]
    )
    qtbot.waitUntil(lambda: controller.jobs.job(bad.id).state == "failed", timeout=10_000)
    window.queue.select(good.id)
    qtbot.waitUntil(lambda: shown(window)[0] == QSize(40, 30))
    window.queue.select(bad.id)
    qtbot.waitUntil(lambda: shown(window) == (QSize(20, 50), "Failed: not restored"))
