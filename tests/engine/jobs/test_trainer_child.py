"""`run_trainer_child` with scripted children (no torch, fast): events become progress, a
failure an error with the child's words, an interrupt a stopped child; and `train` planning."""

from __future__ import annotations

import json
import sys
import threading
import time

import psutil
import pytest

from engine import protocol as p
from engine.cancel import CancelToken
from engine.errors import BadSettingError, JobInterrupted
from engine.jobs import trainer_child
from engine.jobs.base import JobContext
from engine.jobs.train_job import TrainJobs
from engine.jobs.trainer_child import TrainingFailed, run_trainer_child, trainer_command
from engine.model_cache import WarmModels
from engine.path_policy import PathNotAllowedError, PathPolicy
from engine.progress import JobProgress


def context(events: list[p.Event]) -> JobContext:
    emit = events.append
    return JobContext(
        job_id="j1",
        request_id="r1",
        emit=emit,
        cancel=CancelToken(),
        progress=JobProgress("j1", "r1", emit, hz=1000.0),
        models=WarmModels(1),
    )


def child(script: str) -> list[str]:
    return [sys.executable, "-c", script]


def lines(*events: dict) -> str:
    return "".join(f"print({json.dumps(json.dumps(event))}, flush=True)\n" for event in events)


def test_events_become_progress_and_the_export_is_returned():
    script = "print('a library that prints')\n" + lines(
        {"event": "started", "steps": 4, "resume_step": 2},
        {"event": "step", "step": 3, "steps": 4, "loss": 0.123456},
        {"event": "checkpoint", "step": 3, "path": "/x/checkpoint_1"},
        {"event": "step", "step": 4, "steps": 4, "loss": None},
        {"event": "exported", "path": "/x/export"},
    )
    events: list[p.Event] = []
    assert str(run_trainer_child(child(script), context(events))) == "/x/export"
    assert [e.stage for e in events if isinstance(e, p.StageEvent)] == ["load", "train"]
    progress = [e for e in events if isinstance(e, p.Progress)]
    assert [(e.step, e.steps, e.fraction) for e in progress] == [(3, 4, 0.75), (4, 4, 1.0)]
    assert progress[0].label == "Training step 3/4, loss 0.1235"
    assert progress[1].label == "Training step 4/4"


def test_a_crash_gives_the_exit_code_and_the_end_of_stderr():
    script = (
        "import sys\n"
        + lines({"event": "started", "steps": 4, "resume_step": 0})
        + "sys.stderr.write('noise\\n' * 2000 + 'Traceback: RuntimeError: boom\\n')\n"
        + "sys.exit(3)\n"
    )
    with pytest.raises(TrainingFailed) as caught:
        run_trainer_child(child(script), context([]))
    error = caught.value
    assert error.kind == "internal" and "exited with code 3" in error.message
    assert error.message.endswith("Traceback: RuntimeError: boom")
    assert len(error.message) < trainer_child.STDERR_TAIL_CHARS + 200 and error.hint


def test_the_trainers_own_error_keeps_its_kind_and_hint():
    error_event = {"event": "error", "kind": "bad_setting", "message": "field x", "hint": "fix x"}
    script = lines(error_event) + "raise SystemExit(1)\n"
    with pytest.raises(TrainingFailed) as caught:
        run_trainer_child(child(script), context([]))
    assert (caught.value.kind, caught.value.message, caught.value.hint) == (
        "bad_setting",
        "field x",
        "fix x",
    )


def test_a_child_interrupted_from_elsewhere_ends_as_interrupted():
    stopped = {"event": "error", "kind": "cancelled", "message": "at step 3", "hint": "resume"}
    with pytest.raises(JobInterrupted, match="at step 3"):
        run_trainer_child(child(lines(stopped) + "raise SystemExit(1)\n"), context([]))


def test_an_end_without_export_is_an_error():
    with pytest.raises(TrainingFailed, match="without exporting"):
        run_trainer_child(child("pass"), context([]))


def interrupt_once_started(script: str, monkeypatch) -> tuple[list[p.Event], float]:
    """Run `script` (it prints `started`, then runs until stopped), cancel on its first
    progress; returns the events and the seconds the stop took."""
    monkeypatch.setattr(trainer_child, "STOP_GRACE_S", 1.0)
    events: list[p.Event] = []
    job = context(events)
    progressed = threading.Event()

    def emit(event: p.Event) -> None:
        events.append(event)
        if isinstance(event, p.Progress):
            progressed.set()

    job.emit = job.progress.emit = emit

    def cancel() -> None:
        progressed.wait(30)
        job.cancel.cancel("interrupt")

    threading.Thread(target=cancel, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(JobInterrupted, match="resume"):
        run_trainer_child(child(script), job)
    assert not psutil.Process().children(), "the child outlived its job"
    return events, time.monotonic() - started


LOOP = lines({"event": "started", "steps": 100, "resume_step": 0}) + (
    "import json, time\n"
    "for step in range(1, 100):\n"
    "    print(json.dumps({'event': 'step', 'step': step, 'steps': 100}), flush=True)\n"
    "    time.sleep(0.05)\n"
)


def test_interrupt_stops_the_child(monkeypatch):
    events, seconds = interrupt_once_started(LOOP, monkeypatch)
    assert any(isinstance(e, p.Progress) for e in events) and seconds < 1.0


def test_a_child_that_ignores_the_interrupt_is_killed(monkeypatch):
    stubborn = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n" + LOOP.replace(
        "range(1, 100)", "range(1, 10**6)"
    )
    _, seconds = interrupt_once_started(stubborn, monkeypatch)
    assert seconds >= 1.0


def test_the_command_line():
    argv = trainer_command("/r/genir.toml", task="genir-prompts", resume=True, max_steps=7)
    assert argv[1:] == [
        "-m",
        "dreamclear.cli",
        "train",
        "/r/genir.toml",
        "--events",
        "-",
        "--task",
        "genir-prompts",
        "--resume",
        "latest",
        "--max-steps",
        "7",
    ]
    assert "--resume" not in trainer_command("/c.toml", resume=False)


def test_planning_checks_every_folder_the_config_names(tmp_path):
    inside = tmp_path / "inside"
    inside.mkdir()
    config = inside / "train.toml"
    policy = PathPolicy([inside])
    config.write_text(
        f'task = "starter"\n[data]\nphotos = "{inside}"\n'
        f'[checkpointing]\noutput_dir = "{inside / "out"}"\n'
    )
    (job,) = TrainJobs().plan(p.Train(config=str(config)), policy)
    assert job.label == str(config) and job.spec.resume and job.spec.max_steps == 0

    config.write_text(f'task = "starter"\n[checkpointing]\noutput_dir = "{tmp_path / "out"}"\n')
    with pytest.raises(PathNotAllowedError, match="training output folder"):
        TrainJobs().plan(p.Train(config=str(config)), policy)
    config.write_text('task = "starter"\n[dreamclear]\nmodel = "/elsewhere/model"\n')
    with pytest.raises(PathNotAllowedError, match="DreamClear model folder"):
        TrainJobs().plan(p.Train(config=str(config)), PathPolicy([tmp_path]))
    with pytest.raises(PathNotAllowedError):
        TrainJobs().plan(p.Train(config=str(tmp_path / "x.toml")), policy)
    for bad in (
        p.Train(),
        p.Train(config=str(inside)),
        p.Train(config=str(config), task="--output-dir=/"),
        p.Train(config=str(config), max_steps=-1),
    ):
        with pytest.raises(BadSettingError):
            TrainJobs().plan(bad, PathPolicy([tmp_path]))
    config.write_text("not = [toml")
    with pytest.raises(BadSettingError, match="cannot be read"):
        TrainJobs().plan(p.Train(config=str(config)), PathPolicy([tmp_path]))


def test_planning_a_genir_run_checks_its_folders(tmp_path):
    from engine.genir.run_folder import init_run

    images, base = tmp_path / "images", tmp_path / "elsewhere" / "base"
    images.mkdir()
    base.mkdir(parents=True)
    (base / "model_index.json").write_text("{}")
    run = tmp_path / "run"
    config = init_run(run, images=images, base_model=base)
    request = p.Train(config=str(config), task="genir-prompts")
    (job,) = TrainJobs().plan(request, PathPolicy([tmp_path]))
    assert job.spec.task == "genir-prompts"
    with pytest.raises(PathNotAllowedError, match="base model"):
        TrainJobs().plan(request, PathPolicy([run, images]))
