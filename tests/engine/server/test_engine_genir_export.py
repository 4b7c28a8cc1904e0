"""GenIR's export as an engine job, and `genir_status` answered with the status as data."""

from __future__ import annotations

from genir_fabric import fabricate_run


def _base(tmp_path):
    folder = tmp_path / "base"
    folder.mkdir()
    (folder / "model_index.json").write_text("{}")
    return folder


def test_the_engine_exports_and_reports_the_status(stdio_engine, tmp_path):
    _, client = stdio_engine
    run = fabricate_run(tmp_path / "run", _base(tmp_path))
    reply = client.request({"type": "genir_status", "id": "s1", "run": str(run)})
    assert reply["type"] == "genir_status_reply" and reply["request_id"] == "s1"
    assert reply["run"] == str(run) and reply["status"]["next"] == "export"
    assert [s["name"] for s in reply["status"]["stages"]][-1] == "export"

    client.send({"type": "genir_export", "id": "e1", "run": str(run)})
    events = client.until(lambda e: e["type"] in {"result", "error", "cancelled"})
    assert events[-1]["type"] == "result", events[-1]
    assert events[-1]["output"] == str(run / "export")
    assert {"type": "stage", "stage": "export"}.items() <= next(
        e for e in events if e["type"] == "stage"
    ).items()
    last = [e for e in events if e["type"] == "progress"][-1]
    assert (last["step"], last["steps"]) == (5, 5)
    assert (run / "export" / "manifest.jsonl").is_file()

    reply = client.request({"type": "genir_status", "id": "s2", "run": str(run)})
    assert reply["status"]["next"] is None
    assert reply["status"]["stages"][-1]["counts"] == {"exported": 5, "rejected": 1}


def test_status_of_a_folder_that_is_no_run_is_an_error(stdio_engine, tmp_path):
    _, client = stdio_engine
    error = client.request({"type": "genir_status", "id": "s3", "run": str(tmp_path)})
    assert error["type"] == "error" and error["kind"] == "bad_setting"
    assert "not a GenIR run folder" in error["message"]
    error = client.request({"type": "genir_status", "id": "s4"})
    assert "genir_status needs a run folder" in error["message"]
