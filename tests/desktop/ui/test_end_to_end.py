"""One run against the real engine subprocess with the tiny model: drop -> progress -> result ->
the compare view shows input and output -> export."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QSettings

from desktop.client import ClientSettings, EngineClient
from desktop.state import AppController
from desktop.ui.main_window import MainWindow

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow


def test_restore_with_the_real_engine_shows_the_result(
    loop, qtbot, settings, tiny_model_dir, tmp_path
):
    pixels = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels, "RGB").save(tmp_path / "photo.png")
    settings.set_value("model", str(tiny_model_dir))
    settings.set_value("steps", 2)
    settings.set_value("upscale", 2)
    client_settings = ClientSettings(
        start_timeout_s=120, request_timeout_s=60, shutdown_timeout_s=10
    )
    controller = AppController(
        lambda: EngineClient(client_settings), settings, data_dir=tmp_path / "data"
    )
    window = MainWindow(controller, QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    controller.start(store=str(tmp_path / "store"))
    try:
        steps: list[int] = []
        controller.jobs.jobChanged.connect(lambda _id: steps.append(controller.jobs.jobs[0].step))
        [job] = controller.add_paths([tmp_path / "photo.png"])
        assert job.state == "waiting" and not job.start  # until the user presses Restore
        window.start_bar.start_button.click()
        with qtbot.waitSignal(controller.jobFinished, timeout=120_000):
            pass
        assert job.state == "done", (job.error, job.hint)
        assert Path(job.output).is_file() and job.map_path and Path(job.map_path).is_file()
        assert job.tile_grid and max(t + h for t, _, h, _ in job.tile_grid) == 32
        assert max(steps) == 2
        compare = window.compare
        # Decoded off the GUI thread: shown once loaded.
        qtbot.waitUntil(lambda: compare.canvas.after is not None and not compare.loading)
        assert compare.canvas.image_size().width() == 32
        window.export()
        dialog = window.export_dialog
        (tmp_path / "exported").mkdir()
        dialog.destination.setText(str(tmp_path / "exported"))
        with qtbot.waitSignal(dialog.finished_exporting, timeout=30_000):
            dialog.save(dialog.results)
        assert dialog.written
    finally:
        task = asyncio.ensure_future(controller.close())
        qtbot.waitUntil(task.done, timeout=20_000)
