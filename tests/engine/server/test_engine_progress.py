"""Progress, previews and interrupts of real jobs, over the real engine subprocess."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from engine_harness import hello, options, write_photo

from engine.pipelines.stage_plan import STAGE_WORDS
from engine.previews import previews_root
from engine.weights.starter_io import starter_available

TERMINAL = {"result", "error", "cancelled"}
SLOW_CPU_S = 300.0
"""A whole job's wait: the CPU is shared, and loaded it can be ten times slower."""


def send_restore(client, request_id: str, photo: Path, out: Path, model_options: dict) -> None:
    client.send(
        {
            "type": "restore",
            "id": request_id,
            "inputs": [str(photo)],
            "output_dir": str(out),
            "options": model_options,
        }
    )


def restore(client, request_id: str, photo: Path, out: Path, model_options: dict) -> list[dict]:
    """Run one job; its events from `accepted` to its final one."""
    send_restore(client, request_id, photo, out, model_options)
    events = client.until(lambda e: e["type"] == "accepted" and e["request_id"] == request_id)
    job_id = events[-1]["job_id"]
    events = client.until(lambda e: e["type"] in TERMINAL and e["job_id"] == job_id, SLOW_CPU_S)
    return [e for e in events if e.get("job_id") == job_id]


def check_progress_and_previews(events: list[dict], output_size: tuple[int, int]) -> None:
    """Every progress carries a whole-job fraction that never goes back and ends at 1, with a
    label in words; previews come between `started` and the result, at the output's size."""
    types = [e["type"] for e in events]
    assert types[-1] == "result", events[-1].get("message")
    progress = [e for e in events if e["type"] == "progress"]
    fractions = [e["fraction"] for e in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert fractions[0] < 0.5, [(e["label"], e["fraction"]) for e in progress]
    assert all(e["label"].startswith(STAGE_WORDS[e["stage"]]) for e in progress)
    assert any(e["eta_s"] is not None for e in progress) or len(progress) < 3
    previews = [e for e in events if e["type"] == "preview"]
    assert previews, "no preview was sent"
    first, last = types.index("started"), len(types) - 1
    assert all(first < i < last for i, t in enumerate(types) if t == "preview")
    height, width = output_size
    assert {(e["height"], e["width"]) for e in previews} == {(height, width)}
    folder = Path(previews[0]["path"]).parent
    assert folder.parent == previews_root()
    assert not folder.exists(), "the job's preview folder outlived the job"


def test_a_starter_job_reports_its_whole_progress_and_previews(
    stdio_engine, starter_model_dir, tmp_path
):
    _, client = stdio_engine
    photo = write_photo(tmp_path / "wide.png", size=200)  # x4: 800 px, 3 x 3 tiles
    events = restore(client, "s", photo, tmp_path / "out", options(starter_model_dir, upscale=4))
    check_progress_and_previews(events, (800, 800))
    labels = [e["label"] for e in events if e["type"] == "progress"]
    assert "Removing degradations (tile 1/9)" in labels or labels[0].startswith("Removing")


def test_a_tiny_dreamclear_job_reports_its_whole_progress_and_previews(
    stdio_engine, tiny_model_dir, tmp_path
):
    _, client = stdio_engine
    photo = write_photo(tmp_path / "tiny.png")
    events = restore(client, "d", photo, tmp_path / "out", options(tiny_model_dir, steps=4))
    check_progress_and_previews(events, (32, 32))
    stages = {e["stage"] for e in events if e["type"] == "progress"}
    assert {"remove", "denoise", "decode", "colour"} <= stages


@pytest.mark.slow
@pytest.mark.skipif(not starter_available(), reason="the bundled starter is not installed")
def test_interrupting_the_bundled_starter_stops_it_within_seconds_and_the_engine_serves_on(
    stdio_engine, tmp_path
):
    """A 2048 px starter output: 36 tiles of ~368 px, each well under a second here."""
    _, client = stdio_engine
    photo = write_photo(tmp_path / "big.png", size=256)
    out = tmp_path / "out"
    send_restore(client, "big", photo, out, options("starter", upscale=8))
    events = client.until(lambda e: e["type"] == "progress" and e["stage"] == "remove")
    asked = time.monotonic()
    client.send({"type": "interrupt", "id": "stop", "job_id": events[-1]["job_id"]})
    events = client.until(lambda e: e["type"] in TERMINAL)
    took = time.monotonic() - asked
    assert events[-1]["type"] == "cancelled", events[-1]
    print(f"interrupt -> cancelled (starter, 2048 px): {took * 1000:.0f} ms")
    assert took < 3.0
    assert not out.exists() or not list(out.iterdir())
    assert hello(client)["type"] == "hello_reply"  # the same engine, not a restarted one
