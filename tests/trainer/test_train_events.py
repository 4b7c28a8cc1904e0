"""`dreamclear train --events`: one JSON object per line, every kind of event in order; a
SIGINT or SIGTERM stops a run after its step with a checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from dreamclear.cli import main
from trainer import checkpoints


def read_events(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_events_of_a_run_and_its_resume(make_starter_config, capsys):
    config = make_starter_config("events", max_steps=3, checkpoint_every=2)
    out = config.checkpointing.output_dir
    toml = out.parent / "train.toml"
    path = out.parent / "events.jsonl"
    assert main(["train", str(toml), "--events", str(path)]) == 0
    assert "weights exported" in capsys.readouterr().out  # the words for people stay

    events = read_events(path)
    kinds = [event["event"] for event in events]
    assert kinds[0] == "started" and kinds[-1] == "exported"
    assert events[0] == {"event": "started", "steps": 3, "resume_step": 0, "output_dir": str(out)}
    steps = [event for event in events if event["event"] == "step"]
    assert [event["step"] for event in steps] == [1, 2, 3]
    for event in steps:
        assert event["steps"] == 3 and isinstance(event["loss"], float)
        assert event["seconds_per_step"] > 0 and event["eta_seconds"] >= 0
    assert steps[-1]["eta_seconds"] == 0
    saved = [event for event in events if event["event"] == "checkpoint"]
    assert [event["step"] for event in saved] == [2, 3]
    assert all((out / "checkpoints").is_dir() for _ in saved)
    validation = next(event for event in events if event["event"] == "validation")
    assert validation["step"] == 3 and validation["metrics"]
    assert events[-1]["path"] == str(out / "export")

    # A resumed run says where it starts; `-` puts the events on stdout, the words on stderr.
    assert (
        main(["train", str(toml), "--events", "-", "--resume", "latest", "--max-steps", "4"]) == 0
    )
    captured = capsys.readouterr()
    resumed = [json.loads(line) for line in captured.out.splitlines()]
    assert resumed[0]["event"] == "started" and resumed[0]["resume_step"] == 3
    assert [e["step"] for e in resumed if e["event"] == "step"] == [4]
    assert "weights exported" in captured.err


def test_a_bad_config_gives_an_error_event(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('task = "starter"\n[optimisation]\nlearning_rat = 1e-4\n', encoding="utf-8")
    events = tmp_path / "events.jsonl"
    assert main(["train", str(path), "--events", str(events)]) == 1
    (error,) = read_events(events)
    assert error["event"] == "error" and error["kind"] == "bad_setting"
    assert "optimisation.learning_rat" in error["message"]
    assert "optimisation.learning_rat" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="signals to a child process are POSIX's")
@pytest.mark.parametrize("stop_signal", ["SIGINT", "SIGTERM"])
def test_a_stop_signal_stops_after_the_step_with_a_checkpoint(make_starter_config, stop_signal):
    # SIGTERM is what kill, systemd, containers and cluster schedulers send.
    config = make_starter_config(stop_signal.lower(), max_steps=1000, checkpoint_every=500)
    out = config.checkpointing.output_dir
    path = out.parent / "events.jsonl"
    command = [sys.executable, "-m", "dreamclear.cli", "train", str(out.parent / "train.toml")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([*command, "--events", str(path)], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (path.exists() and '"step"' in path.read_text(encoding="utf-8")):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(getattr(signal, stop_signal))
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 1
    assert "hint: continue with --resume latest" in stderr.decode()
    events = read_events(path)
    last_step = max(event["step"] for event in events if event["event"] == "step")
    assert events[-2] == {
        "event": "checkpoint",
        "step": last_step,
        "path": str(out / "checkpoints" / "checkpoint_0"),
    }
    assert events[-1]["event"] == "error" and events[-1]["kind"] == "cancelled"
    assert checkpoints.read_marker(out / "checkpoints" / "checkpoint_0")["step"] == last_step
