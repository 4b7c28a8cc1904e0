"""ExportDialog against a scripted client, and once through the real engine."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from dialog_harness import FakeExportClient, finish, loop  # noqa: F401 - `loop` is a fixture
from PIL import Image, ImageCms
from PySide6.QtCore import QSettings
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox

from desktop.client import ClientSettings, EngineClient
from desktop.client.connection_state import EngineClientError
from desktop.state.jobs_model import JobView
from desktop.ui.export_dialog import FORMATS, ExportDialog
from engine.protocol import RestoreOptionsMessage

ARTIST = 0x013B


def result(name: str, folder: str = "/out", upscale: int = 4) -> JobView:
    return JobView(
        id=name,
        input=f"/photos/{name}.jpg",
        options=RestoreOptionsMessage(upscale=upscale),
        output_dir=folder,
        state="done",
        output=f"{folder}/{name}_x{upscale}.png",
    )


def holiday(result: Path) -> JobView:
    """The job that restored holiday.jpg (beside `result`) x2 into `result`."""
    return JobView(
        id="1",
        input=str(result.with_name("holiday.jpg")),
        options=RestoreOptionsMessage(upscale=2),
        output_dir=str(result.parent),
        state="done",
        output=str(result),
    )


@pytest.fixture
def make_dialog(loop, qtbot, tmp_path):  # noqa: F811
    def make(results, client, settings=None) -> ExportDialog:
        dialog = ExportDialog(results, settings, client=client)
        qtbot.addWidget(dialog)
        dialog.destination.setText(str(tmp_path))
        return dialog

    return make


def test_controls_follow_the_format(make_dialog):
    dialog = make_dialog([result("a")], FakeExportClient())
    dialog.sixteen_bit.setChecked(True)
    dialog.format.setCurrentIndex(FORMATS.index("jpg"))
    assert dialog.quality.isEnabled() and not dialog.sixteen_bit.isEnabled()
    assert dialog.bit_depth() == 8
    dialog.format.setCurrentIndex(FORMATS.index("tiff"))
    assert not dialog.quality.isEnabled() and dialog.bit_depth() == 16


def test_save_all_asks_per_conflict(make_dialog, qtbot, tmp_path):
    results = [result("a"), result("b"), result("c"), result("d")]
    client = FakeExportClient(taken={f"{tmp_path}/{n}_x4.webp" for n in "abc"})
    dialog = make_dialog(results, client)
    dialog.format.setCurrentIndex(FORMATS.index("webp"))
    dialog.quality.setValue(70)
    answers = iter(["overwrite", "keep_both", "skip"])

    async def scripted(path: str) -> str:
        return next(answers)

    dialog.ask_conflict = scripted
    with qtbot.waitSignal(dialog.finished_exporting) as done:
        finish(qtbot, dialog.save(dialog.results))
    assert done.args == [3, 1]
    writes = [c for c in client.calls if not c["dry_run"]]
    assert [(c["source"], c["overwrite"], c["keep_both"]) for c in writes] == [
        ("/out/a_x4.png", True, False),
        ("/out/b_x4.png", False, True),
        ("/out/d_x4.png", False, False),
    ]
    first = writes[0]
    assert first["format"] == "webp" and first["quality"] == 70 and first["bit_depth"] == 8
    assert (
        first["stem"] == "a" and first["scale"] == 4 and first["name_pattern"] == "{stem}_x{scale}"
    )
    assert dialog.written[1] == f"{tmp_path}/b_x4 (1).webp"
    assert dialog.message.text() == "Saved 3 of 4 files."


def test_the_conflict_box_can_stop_the_batch(make_dialog, qtbot, tmp_path):
    client = FakeExportClient(taken={f"{tmp_path}/a_x4.png"})
    dialog = make_dialog([result("a"), result("b")], client)
    task = dialog.save(dialog.results)
    qtbot.waitUntil(lambda: any(b.isVisible() for b in dialog.findChildren(QMessageBox)))
    box = next(b for b in dialog.findChildren(QMessageBox) if b.isVisible())
    assert "a_x4.png already exists" in box.text()
    next(b for b in box.buttons() if b.text() == "Stop").click()
    finish(qtbot, task)
    assert not [c for c in client.calls if not c["dry_run"]]  # nothing written, b not tried
    assert dialog.message.text() == "Saved 0 of 2 files."


def test_failures_are_reported_and_the_rest_go_on(make_dialog, qtbot):
    client = FakeExportClient()
    client.failures["/out/a_x4.png"] = EngineClientError(
        "bad_input", "/out/a_x4.png: file not found", "check the path and file name"
    )
    dialog = make_dialog([result("a"), result("b")], client)
    dialog.list.selectAll()
    finish(qtbot, dialog.save(dialog.selected()))
    text = dialog.message.text()
    assert "Saved 1 of 2 files." in text and "a.jpg: /out/a_x4.png: file not found" in text
    assert "check the path" in text


def test_choices_are_remembered_and_the_folder_opens(make_dialog, qtbot, tmp_path, monkeypatch):
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    dialog = make_dialog([result("a")], FakeExportClient(), settings)
    dialog.format.setCurrentIndex(FORMATS.index("tiff"))
    dialog.sixteen_bit.setChecked(True)
    dialog.pattern.setText("{stem}-restored")
    finish(qtbot, dialog.save(dialog.results))
    again = make_dialog([result("a")], FakeExportClient(), settings)
    assert again.chosen_format() == "tiff" and again.bit_depth() == 16
    assert again.pattern.text() == "{stem}-restored"

    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    again.open_folder_button.click()
    assert opened[0].toLocalFile() == str(tmp_path)


def test_export_through_the_real_engine_keeps_metadata(make_dialog, qtbot, tmp_path):
    """The dialog -> EngineClient -> engine subprocess: EXIF and ICC kept, source untouched,
    a second save asks and keeps both."""
    import asyncio

    source = tmp_path / "holiday_x2.jpg"
    exif = Image.Exif()
    exif[ARTIST] = "Ada"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    pixels = np.random.default_rng(0).integers(0, 255, (16, 24, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(source, exif=exif.tobytes(), icc_profile=icc)
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    out = tmp_path / "export"
    out.mkdir()

    client = EngineClient(ClientSettings(start_timeout_s=60.0, request_timeout_s=30.0))
    finish(qtbot, asyncio.ensure_future(client.spawn(store=str(tmp_path / "store"))))
    try:
        dialog = make_dialog([holiday(source)], client)
        dialog.destination.setText(str(out))
        dialog.format.setCurrentIndex(FORMATS.index("png"))
        finish(qtbot, dialog.save(dialog.results))
        written = out / "holiday_x2.png"
        assert dialog.written == [str(written)], dialog.message.text()
        with Image.open(written) as image:
            assert image.getexif()[ARTIST] == "Ada" and image.info.get("icc_profile")

        async def keep_both(path: str) -> str:
            return "keep_both"

        dialog.ask_conflict = keep_both
        finish(qtbot, dialog.save(dialog.results))
        assert dialog.written[-1] == str(out / "holiday_x2 (1).png")
        assert hashlib.sha256(source.read_bytes()).hexdigest() == before
    finally:
        finish(qtbot, asyncio.ensure_future(client.close()))


def test_the_default_destination_is_a_folder_beside_the_results(loop, qtbot, tmp_path):  # noqa: F811
    """Its defaults once named the result itself as the target (which is never written onto)."""
    source = tmp_path / "holiday_x2.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(source)
    dialog = ExportDialog([holiday(source)], None, client=FakeExportClient())
    qtbot.addWidget(dialog)
    assert dialog.destination.text() == str(tmp_path / "exported")
    finish(qtbot, dialog.save(dialog.results))
    assert (tmp_path / "exported").is_dir()
    assert dialog.written == [str(tmp_path / "exported" / "holiday_x2.png")], dialog.message.text()
