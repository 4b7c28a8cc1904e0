"""ModelManagerDialog against a scripted client: listing, import, download, verify, remove."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from dialog_harness import FakeModelClient, finish, loop  # noqa: F401 - `loop` is a fixture
from PySide6.QtWidgets import QFileDialog, QMessageBox

from desktop.client.connection_state import EngineClientError
from desktop.ui.model_manager import COLUMNS, ModelManagerDialog, device_fit, store_root_from

GB = 1_000_000_000
DEVICES = [
    {"name": "cpu", "kind": "cpu", "total_memory_bytes": 64 * GB, "free_memory_bytes": 32 * GB},
    {
        "name": "cuda:0",
        "kind": "cuda",
        "title": "H100",
        "total_memory_bytes": 80 * GB,
        "free_memory_bytes": 79 * GB,
    },
]


def models() -> list[dict]:
    return [
        {
            "name": "starter",
            "title": "Starter",
            "status": "installed",
            "size_bytes": 70_000_000,
            "licence": "Apache-2.0",
            "path": "/app/resources/models/starter",
        },
        {
            "name": "dreamclear",
            "title": "DreamClear",
            "status": "missing",
            "size_bytes": 0,
            "licence": "Apache-2.0",
            "path": "/store/dreamclear/DreamClear-1024.pth",
        },
        {
            "name": "t5-xxl",
            "title": "T5",
            "status": "installed",
            "size_bytes": 90 * GB,
            "licence": "Apache-2.0",
            "path": "/store/t5-xxl/t5",
        },
    ]


@pytest.fixture
def open_dialog(loop, qtbot):  # noqa: F811
    def make(store_location: str | None = None) -> tuple[ModelManagerDialog, FakeModelClient]:
        client = FakeModelClient(models(), DEVICES)
        controller = SimpleNamespace(client=client, store_location=store_location)
        dialog = ModelManagerDialog(controller)
        qtbot.addWidget(dialog)
        qtbot.waitUntil(lambda: dialog.table.rowCount() == 3)
        return dialog, client

    return make


def cell(dialog: ModelManagerDialog, name: str, column: str) -> str:
    row = [m["name"] for m in dialog.models].index(name)
    return dialog.table.item(row, COLUMNS.index(column)).text()


def test_lists_models_with_status_size_and_device_fit(open_dialog):
    dialog, _ = open_dialog()
    assert cell(dialog, "starter", "Status") == "installed"
    assert cell(dialog, "starter", "Size") == "70.0 MB"
    assert cell(dialog, "starter", "Device fit") == "fits cuda:0 (80.0 GB)"
    assert cell(dialog, "t5-xxl", "Device fit") == "too large for cuda:0 (80.0 GB)"
    assert (
        cell(dialog, "dreamclear", "Size") == "—" and cell(dialog, "dreamclear", "Device fit") == ""
    )
    assert dialog.store_label.text() == "/store"  # read from the paths: starter lives elsewhere


def test_device_fit_and_store_root():
    cpu_only = DEVICES[:1]
    assert device_fit(60 * GB, cpu_only) == "tight on cpu (64.0 GB)"
    assert device_fit(0, DEVICES) == ""
    local = [{"name": "tiny", "path": "/s/local/tiny"}, {"name": "x", "path": "/s/x/x.pth"}]
    assert store_root_from(local) == "/s"


def test_buttons_follow_the_selected_model(open_dialog):
    dialog, _ = open_dialog(store_location="/chosen/store")
    assert dialog.store_label.text() == "/chosen/store"
    dialog.select("dreamclear")
    assert dialog.download_button.isEnabled() and not dialog.remove_button.isEnabled()
    dialog.select("t5-xxl")
    assert not dialog.download_button.isEnabled()
    assert dialog.verify_button.isEnabled() and dialog.remove_button.isEnabled()


def test_import_refreshes_and_says_models_changed(open_dialog, qtbot):
    dialog, client = open_dialog()
    with qtbot.waitSignal(dialog.models_changed):
        finish(qtbot, dialog.import_path("/somewhere/tiny"))
    assert ("import", None, "/somewhere/tiny") in client.calls
    assert dialog.table.rowCount() == 4 and "Imported tiny" in dialog.message.text()


def test_import_file_button_uses_a_file_dialog(open_dialog, qtbot, monkeypatch):
    dialog, client = open_dialog()
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: ("/w/model.pth", ""))
    dialog.import_file_button.click()
    qtbot.waitUntil(lambda: ("import", None, "/w/model.pth") in client.calls)


def test_download_shows_progress_and_can_be_cancelled(open_dialog, qtbot):
    dialog, client = open_dialog()
    task = dialog.download("dreamclear")
    qtbot.waitUntil(lambda: dialog.progress.value() == 250)  # 50 of 200 bytes, in 1000ths
    assert dialog.progress.isVisibleTo(dialog) and dialog.cancel_button.isEnabled()
    finish(qtbot, dialog.cancel_download())
    finish(qtbot, task)
    assert "cancelled" in dialog.message.text() and not dialog.cancel_button.isEnabled()
    assert cell(dialog, "dreamclear", "Status") == "missing"

    task = dialog.download("dreamclear")
    qtbot.waitUntil(lambda: dialog.downloading == "dreamclear")
    client.release_download()
    finish(qtbot, task)
    assert cell(dialog, "dreamclear", "Status") == "installed"
    assert dialog.message.text() == "Downloaded dreamclear."


def test_a_failure_in_the_client_is_shown_and_the_dialog_is_usable_again(open_dialog, qtbot):
    dialog, client = open_dialog()
    dialog.select("dreamclear")
    client.failures["download"] = OverflowError("cannot convert float infinity to integer")
    finish(qtbot, dialog.download("dreamclear"))
    assert "cannot convert float infinity to integer" in dialog.message.text()
    assert "Downloading" not in dialog.message.text()
    assert not dialog.cancel_button.isEnabled() and dialog.download_button.isEnabled()
    assert not dialog.progress.isVisibleTo(dialog)


def test_engine_errors_are_shown_with_their_hint(open_dialog, qtbot):
    dialog, client = open_dialog()
    client.failures["download"] = EngineClientError(
        "model_missing", "Cannot download dreamclear: offline mode is on", "unset HF_HUB_OFFLINE"
    )
    finish(qtbot, dialog.download("dreamclear"))
    assert "offline mode" in dialog.message.text() and "HF_HUB_OFFLINE" in dialog.message.text()
    assert not dialog.progress.isVisibleTo(dialog) and dialog.downloading is None


def test_verify_reports_problems(open_dialog, qtbot):
    dialog, client = open_dialog()
    finish(qtbot, dialog.verify("t5-xxl"))
    assert "sound (2 files checked)" in dialog.message.text()
    client.problems = ["t5/model.safetensors: truncated"]
    finish(qtbot, dialog.verify("t5-xxl"))
    assert "truncated" in dialog.message.text()


def test_remove_asks_first(open_dialog, qtbot):
    dialog, client = open_dialog()
    task = dialog.remove("t5-xxl")
    box = wait_for_box(qtbot, dialog)
    box.button(QMessageBox.StandardButton.Cancel).click()
    finish(qtbot, task)
    assert not any(call[0] == "remove" for call in client.calls)

    task = dialog.remove("t5-xxl")
    wait_for_box(qtbot, dialog).button(QMessageBox.StandardButton.Yes).click()
    with qtbot.waitSignal(dialog.models_changed):
        finish(qtbot, task)
    assert ("remove", "t5-xxl", None) in client.calls
    assert cell(dialog, "t5-xxl", "Status") == "missing" and "2.0 MB freed" in dialog.message.text()


def test_changing_the_store_is_left_to_the_controller(open_dialog, qtbot, monkeypatch):
    dialog, _ = open_dialog()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: "/new/store")
    with qtbot.waitSignal(dialog.store_changed) as signal:
        dialog._choose_store()
    assert signal.args == ["/new/store"] and dialog.store_label.text() == "/new/store"


def wait_for_box(qtbot, dialog) -> QMessageBox:
    qtbot.waitUntil(lambda: any(b.isVisible() for b in dialog.findChildren(QMessageBox)))
    return next(b for b in dialog.findChildren(QMessageBox) if b.isVisible())
