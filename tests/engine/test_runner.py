"""The job runner knows no job kind: a counting kind made here gets the queue, progress,
cancel, interrupt, warm models and the way every ending becomes one final event."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

from engine import protocol as p
from engine.errors import BadSettingError, OutputError
from engine.jobs.base import JobContext, PlannedJob
from engine.runner import JobRunner


@dataclass
class Count(p.Request):
    """A request of our own: count to `to` for each name, or fail as told."""

    TYPE: ClassVar[str] = "count"
    names: tuple[str, ...] = ("a",)
    to: int = 3
    fail: str = ""


@dataclass(frozen=True)
class Position:
    stage: str
    step: int
    steps: int
    tile: int = 1
    tiles: int = 1


class CountingJobs:
    request_type: ClassVar[type[p.Request]] = Count

    def __init__(self) -> None:
        self.loads = 0
        self.gate = threading.Event()
        self.gate.set()
        self.in_step = threading.Event()

    def plan(self, request: Count, paths) -> list[PlannedJob]:
        if request.to < 1:
            raise BadSettingError("to must be at least 1")
        return [
            PlannedJob(label=name, spec=(name, request.to, request.fail)) for name in request.names
        ]

    def run(self, spec, context: JobContext) -> p.Event:
        name, to, fail = spec
        context.stage("load")
        context.models.get(("counter",), self._load)
        for step in range(1, to + 1):
            self.in_step.set()
            self.gate.wait(5)
            context.cancel.raise_if_cancelled("counting interrupted")
            context.report(Position("denoise", step, to))
        if fail == "oom":
            raise torch.OutOfMemoryError("no room")
        if fail == "output":
            raise OutputError("cannot write the count")
        if fail == "bug":
            raise ZeroDivisionError("oops")
        context.warn(f"{name} counted")
        return p.Result(request_id=context.request_id, job_id=context.job_id, input=name)

    def _load(self):
        self.loads += 1
        return object()


class Recorder:
    def __init__(self) -> None:
        self.events: list[p.Event] = []
        self.done = threading.Condition()

    def __call__(self, event: p.Event) -> None:
        with self.done:
            self.events.append(event)
            self.done.notify_all()

    def wait_for(self, count: int, types=("result", "error", "cancelled")) -> None:
        with self.done:
            assert self.done.wait_for(
                lambda: sum(e.TYPE in types for e in self.events) >= count, timeout=10
            ), [e.TYPE for e in self.events]

    def of(self, job_id: str) -> list[str]:
        return [e.TYPE for e in self.events if getattr(e, "job_id", None) == job_id]


@pytest.fixture
def runner():
    kind = CountingJobs()
    recorder = Recorder()
    runner = JobRunner(recorder, [kind], progress_hz=1000)
    runner.start()
    yield runner, kind, recorder
    runner.shutdown()


def test_each_job_gets_the_events_in_order_and_models_stay_warm(runner):
    runner, kind, recorder = runner
    ids = runner.submit(Count(id="r", names=("a", "b")))
    recorder.wait_for(2)
    for job_id in ids:
        types = recorder.of(job_id)
        assert types[:3] == ["accepted", "queued", "started"]
        assert types[-2:] == ["warning", "result"]
        assert "progress" in types and "stage" in types
    assert kind.loads == 1  # the second job found the model warm


def test_a_bad_request_queues_nothing(runner):
    runner, _, recorder = runner
    with pytest.raises(BadSettingError):
        runner.submit(Count(to=0))
    assert recorder.events == []


@pytest.mark.parametrize(
    ("fail", "kind", "words"),
    [("oom", "out_of_memory", "out of memory"), ("output", "output", "cannot write"),
     ("bug", "internal", "internal error: ZeroDivisionError")],
)  # fmt: skip
def test_every_failure_ends_the_job_with_one_error_and_the_queue_goes_on(runner, fail, kind, words):
    runner, _, recorder = runner
    failing, after = runner.submit(Count(names=("x", "y"), fail=fail)), runner.submit(Count())
    recorder.wait_for(3)
    error = next(e for e in recorder.events if e.TYPE == "error")
    assert error.job_id == failing[0] and error.kind == kind and words in error.message
    assert error.message.startswith("x: ")  # names what failed
    assert recorder.of(after[0])[-1] == "result"
    # Nothing of a job follows its final event.
    for job_id in [*failing, *after]:
        types = recorder.of(job_id)
        assert types[-1] in ("result", "error") and types.count(types[-1]) == 1


def test_interrupt_cancels_the_running_job_through_its_token(runner):
    runner, kind, recorder = runner
    kind.gate.clear()
    kind.in_step.clear()
    running, queued = runner.submit(Count(id="r", names=("a", "b"), to=100))
    assert kind.in_step.wait(5)
    assert runner.interrupt(running, request_id="stop") is True
    assert runner.cancel([queued], request_id="drop") == [queued]
    kind.gate.set()
    recorder.wait_for(2)
    stopped = [e for e in recorder.events if e.TYPE == "cancelled"]
    assert {(e.job_id, e.reason, e.request_id) for e in stopped} == {
        (running, "interrupt", "stop"),
        (queued, "cancel", "drop"),
    }
    assert "started" not in recorder.of(queued)


def test_shutdown_stops_the_worker_and_refuses_new_jobs(runner):
    runner, kind, recorder = runner
    kind.gate.clear()
    kind.in_step.clear()
    (running,) = runner.submit(Count(to=100))
    assert kind.in_step.wait(5)
    kind.gate.set()
    assert runner.shutdown(request_id="bye") is True
    assert recorder.of(running)[-1] == "cancelled"
    with pytest.raises(BadSettingError, match="shutting down"):
        runner.submit(Count())
