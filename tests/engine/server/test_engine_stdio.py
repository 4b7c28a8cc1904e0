"""The engine over stdio: handshake, bad lines, a FIFO queue, cancel/interrupt, OOM retry."""

from __future__ import annotations

import time

import numpy as np
import pytest
from engine_harness import hello, job_events, options, write_photo

from engine.protocol import ADDED_OPTIONS, MAX_MESSAGE_BYTES, PROTOCOL_VERSION

TERMINAL = {"result", "error", "cancelled"}


def test_hello_with_another_protocol_version_is_refused_with_a_hint(stdio_engine):
    _, client = stdio_engine
    reply = hello(client, protocol=PROTOCOL_VERSION + 1)
    assert reply["type"] == "error" and reply["kind"] == "version"
    assert reply["hint"]
    reply = hello(client)
    assert reply["type"] == "hello_reply"
    assert reply["protocol"] == PROTOCOL_VERSION and "restore" in reply["capabilities"]
    assert set(ADDED_OPTIONS) <= set(reply["capabilities"])  # it reads every later option
    assert reply["device"]


def test_bad_lines_get_protocol_errors_and_the_engine_keeps_serving(stdio_engine, tmp_path):
    _, client = stdio_engine
    client.send(b"this is not json\n")
    assert client.next()["kind"] == "protocol"
    assert client.request({"type": "teleport", "id": "t"})["kind"] == "protocol"
    client.send(b'{"type":"hello","id":"big","client":"' + b"x" * MAX_MESSAGE_BYTES + b'"}\n')
    error = client.next()
    assert error["kind"] == "protocol" and "discarded" in error["message"]
    bad = {"type": "restore", "id": "r0", "inputs": ["x.png"], "output_dir": str(tmp_path)}
    bad["options"] = {"steps": 0}
    assert client.request(bad)["kind"] == "bad_setting"
    # Out of range: bad_setting; not a number at all (NaN included): bad_request.
    for strength, kind in ((1.5, "bad_setting"), (-0.2, "bad_setting"), ("0.5", "bad_request"),
                           (None, "bad_request")):  # fmt: skip
        bad["options"] = {"strength": strength}
        error = client.request(bad)
        assert error["kind"] == kind and "strength" in error["message"], error
        assert error["hint"] and error["job_id"] is None
    client.send(b'{"type":"restore","id":"nan","inputs":["x.png"],"options":{"strength":NaN}}\n')
    error = client.next()
    assert error["kind"] == "bad_request" and "strength" in error["message"], error
    # Still serving: a hello and a models request are answered.
    assert hello(client)["type"] == "hello_reply"
    models = client.request({"type": "models", "id": "m"})
    assert models["type"] == "models_reply"
    assert {m["name"] for m in models["models"]} >= {"dreamclear"}
    assert models["devices"][0]["kind"] == "cpu"


def test_three_jobs_run_fifo_with_events_in_order(stdio_engine, tiny_model_dir, tmp_path):
    _, client = stdio_engine
    photos = [str(write_photo(tmp_path / f"p{i}.png")) for i in range(3)]
    out = tmp_path / "out"
    client.send(
        {
            "type": "restore",
            "id": "q",
            "inputs": photos,
            "output_dir": str(out),
            "options": options(tiny_model_dir),
        }
    )
    events = []
    done = 0
    while done < 3:
        event = client.next()
        events.append(event)
        done += event["type"] in TERMINAL
    accepted = [e for e in events if e["type"] == "accepted"]
    assert [e["input"] for e in accepted] == photos
    ids = [e["job_id"] for e in accepted]
    assert [e["position"] for e in events if e["type"] == "queued"] == [0, 1, 2]
    assert [e["job_id"] for e in events if e["type"] == "started"] == ids
    for job_id in ids:
        kinds = job_events(events, job_id)
        assert kinds[:3] == ["accepted", "queued", "started"]
        assert kinds[-1] == "result", events
        assert set(kinds[3:-1]) <= {"stage", "progress", "warning", "preview"}
        stages = [e["stage"] for e in events if e.get("job_id") == job_id and e["type"] == "stage"]
        assert stages == [
            "load",
            "remove",
            "caption",
            "encode",
            "denoise",
            "decode",
            "colour",
            "save",
        ]
    # FIFO: each job ends before the next starts.
    order = [(e["type"], e["job_id"]) for e in events if e["type"] in {"started", "result"}]
    assert order == [(kind, job) for job in ids for kind in ("started", "result")]
    results = [e for e in events if e["type"] == "result"]
    assert all(e["peak_memory_bytes"] > 0 and e["timings"]["denoise"] > 0 for e in results)
    for result in results:  # tiles in output pixels (16 px x2 = 32 px output) covering it
        boxes = result["tile_grid"]
        assert boxes and all(len(box) == 4 for box in boxes)
        assert max(top + height for top, _, height, _ in boxes) == 32
        assert max(left + width for _, left, _, width in boxes) == 32
        assert min(top for top, *_ in boxes) == 0 and min(box[1] for box in boxes) == 0
    assert sorted(p.name for p in out.iterdir()) == ["p0_x2.png", "p1_x2.png", "p2_x2.png"]


@pytest.mark.slow
def test_cancel_drops_a_queued_job_and_interrupt_stops_the_running_one(
    stdio_engine, tiny_model_dir, tmp_path
):
    _, client = stdio_engine
    out = tmp_path / "out"
    long_job = {
        "type": "restore",
        "id": "long",
        "inputs": [str(write_photo(tmp_path / "long.png"))],
        "output_dir": str(out),
        "options": options(tiny_model_dir, steps=500),
    }
    client.send(long_job)
    queued = dict(long_job, id="short", inputs=[str(write_photo(tmp_path / "short.png"))])
    queued["options"] = options(tiny_model_dir)
    client.send(queued)
    events = client.until(lambda e: e["type"] == "progress" and e["stage"] == "denoise")
    running = events[-1]["job_id"]
    waiting = next(e["job_id"] for e in events if e.get("request_id") == "short")

    cancelled = client.request({"type": "cancel", "id": "c", "job_ids": [waiting]})
    assert (cancelled["type"], cancelled["job_id"], cancelled["reason"]) == (
        "cancelled",
        waiting,
        "cancel",
    )
    asked = time.monotonic()
    client.send({"type": "interrupt", "id": "i", "job_id": running})
    events = client.until(lambda e: e["type"] in TERMINAL)
    took = time.monotonic() - asked
    assert (events[-1]["type"], events[-1]["job_id"], events[-1]["reason"]) == (
        "cancelled",
        running,
        "interrupt",
    )
    print(f"interrupt -> cancelled: {took * 1000:.0f} ms")
    assert took < 10  # one tiny-model step is well under a second, even on a busy CPU
    assert not out.exists() or not list(out.iterdir())
    # The engine goes on with new work.
    assert hello(client)["type"] == "hello_reply"


def test_out_of_memory_halves_the_tiles_and_succeeds_with_a_warning(
    stdio_engine, tiny_model_dir, tmp_path
):
    _, client = stdio_engine
    photo = write_photo(tmp_path / "oom-me.png")
    client.send(
        {
            "type": "restore",
            "id": "oom",
            "inputs": [str(photo)],
            "output_dir": str(tmp_path / "out"),
            "options": options(tiny_model_dir, tile=64),
        }
    )
    events = client.until(lambda e: e["type"] in TERMINAL)
    warnings = [e for e in events if e["type"] == "warning"]
    assert len(warnings) == 1 and "latent tiles 32" in warnings[0]["message"]
    assert events[-1]["type"] == "result", events
    assert (tmp_path / "out" / "oom-me_x2.png").exists()


def test_missing_input_and_saved_map(stdio_engine, tiny_model_dir, tmp_path):
    _, client = stdio_engine
    photo = write_photo(tmp_path / "mapped.png")
    client.send(
        {
            "type": "restore",
            "id": "maps",
            "inputs": [str(photo), str(tmp_path / "missing.png")],
            "output_dir": str(tmp_path / "out"),
            "options": options(tiny_model_dir, save_map=True),
        }
    )
    events = client.until(lambda e: e["type"] == "error")
    maps = [e for e in events if e["type"] == "degradation_map"]
    assert len(maps) == 1 and maps[0]["path"].endswith("mapped_x2.map.npz")
    assert maps[0]["legend"][0] == ["red", "expert 1 router weight"]
    assert events[-1]["kind"] == "bad_input" and "missing.png" in events[-1]["message"]


def test_a_starter_model_restores_with_its_map(stdio_engine, starter_model_dir, tmp_path):
    """The starter's maps (named channels, not router weights) reach the client with a legend."""
    _, client = stdio_engine
    photo = write_photo(tmp_path / "starter-photo.png")
    client.send(
        {
            "type": "restore",
            "id": "starter",
            "inputs": [str(photo)],
            "output_dir": str(tmp_path / "out"),
            "options": options(starter_model_dir, save_map=True),
        }
    )
    events = client.until(lambda e: e["type"] in ("result", "error"))
    assert events[-1]["type"] == "result", events[-1]
    maps = [e for e in events if e["type"] == "degradation_map"]
    assert maps and maps[0]["legend"][0] == ["red", "blur"]
    # 16 px x2 fits one remover tile: one box over the whole 32 px output, as DreamClear's.
    assert events[-1]["tile_grid"] == [[0, 0, 32, 32]]


def test_a_starter_job_at_strength_zero_saves_the_bicubic_upscale(
    stdio_engine, starter_model_dir, tmp_path
):
    """The strength option reaches the saved file over the protocol."""
    import torch
    from PIL import Image

    from engine.pipelines.strength import upscale_input

    _, client = stdio_engine
    photo = write_photo(tmp_path / "grain.png")
    out = tmp_path / "out"
    client.send(
        {
            "type": "restore",
            "id": "strength",
            "inputs": [str(photo)],
            "output_dir": str(out),
            "options": options(starter_model_dir, strength=0.0),
        }
    )
    events = client.until(lambda e: e["type"] in TERMINAL)
    assert events[-1]["type"] == "result", events[-1]
    pixels = torch.from_numpy(np.asarray(Image.open(photo), dtype=np.float32) / 255)
    bicubic = upscale_input(pixels.permute(2, 0, 1)[None], (32, 32))[0].permute(1, 2, 0)
    saved = np.asarray(Image.open(events[-1]["output"]), dtype=np.float32)
    assert np.abs(saved - bicubic.numpy() * 255).max() <= 0.5 + 1e-3  # 8-bit rounding


def test_a_starter_job_reports_the_remover_tiles_in_output_pixels(
    stdio_engine, starter_model_dir, tmp_path
):
    """272 px x2 = 544 px of output is restored in 2 x 2 tiles of 288 px (the fitted size,
    whose 32 px overlap repeats least); the out-of-memory retry halves the cap on the
    remover's tile to 512 px, which leaves them as they are."""
    _, client = stdio_engine
    photo = write_photo(tmp_path / "oom-me-starter.png", size=272)
    client.send(
        {
            "type": "restore",
            "id": "starter-tiles",
            "inputs": [str(photo)],
            "output_dir": str(tmp_path / "out"),
            "options": options(starter_model_dir),
        }
    )
    events = client.until(lambda e: e["type"] in TERMINAL)
    assert events[-1]["type"] == "result", events[-1]
    warnings = [e["message"] for e in events if e["type"] == "warning"]
    assert len(warnings) == 1 and "remover 512 px" in warnings[0]
    assert events[-1]["tile_grid"] == [
        [0, 0, 288, 288],
        [0, 256, 288, 288],
        [256, 0, 288, 288],
        [256, 256, 288, 288],
    ]


def test_skip_existing_answers_at_once_with_the_result_that_is_there(
    stdio_engine, starter_model_dir, tmp_path
):
    _, client = stdio_engine
    photo = write_photo(tmp_path / "done.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "done_x2.png").write_bytes(b"the earlier result")
    request = {"type": "restore", "inputs": [str(photo)], "output_dir": str(out)}
    request["options"] = options(starter_model_dir, skip_existing=True)
    client.send({**request, "id": "skip"})
    events = client.until(lambda e: e["type"] in TERMINAL)
    result = events[-1]
    assert result["type"] == "result" and result["skipped"] is True, result
    assert result["output"] == str(out / "done_x2.png")
    assert "load" not in [e.get("stage") for e in events]  # no model was loaded for it
    assert sorted(p.name for p in out.iterdir()) == ["done_x2.png"]
    both = {**request, "id": "both"}
    both["options"] = options(starter_model_dir, skip_existing=True, overwrite=True)
    assert client.request(both)["kind"] == "bad_setting"
