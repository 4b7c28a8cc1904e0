"""Training as a child process of the engine, its progress relayed as the job's.

The engine never imports the trainer (import rule), and a training run that crashes, leaks
or runs out of memory must not take the engine down with it; so a job runs
`python -m dreamclear.cli train ... --events -` and reads the trainer's events
(trainer/events.py: one JSON object per line) from the child's stdout. Nothing of the child
reaches the engine's own stdout, which may be the protocol channel.

- `step` events become the job's progress (`stage`, step of steps, the loss in the label).
- Interrupt: SIGINT (Windows: terminate), on which the trainer finishes its step and saves a
  checkpoint; a kill after `STOP_GRACE_S`. The job ends as `cancelled` once the child is
  gone; `--resume latest` later continues from the last complete checkpoint.
- A child that fails: its own `error` event (kind, message, hint) when it sent one, else the
  exit code and the tail of its stderr.
- If the engine dies, the child's next event meets a closed pipe and the trainer stops.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import protocol as p
from engine.errors import EngineError, JobInterrupted
from engine.jobs.base import JobContext

logger = logging.getLogger(__name__)

STOP_GRACE_S = 60.0
"""How long an interrupted child may take to stop before it is killed: the trainer finishes
its step and saves a checkpoint first (trainer/interrupt.py). A kill in the middle of that
save loses nothing more: an incomplete checkpoint is ignored."""
STDERR_TAIL_CHARS = 2000
"""How much of a failed child's stderr its error shows (the end: the traceback)."""
POLL_S = 0.1
"""How often the job looks at its cancel token while the child is quiet."""


class TrainingFailed(EngineError):
    """The training process failed; `kind` is the one the trainer reported, if any."""

    def __init__(self, message: str, hint: str = "", kind: str = "internal") -> None:
        super().__init__(message, hint)
        known = typing.get_args(p.ErrorKind)
        self.kind = kind if kind in known else "internal"


@dataclass(frozen=True)
class TrainPosition:
    """A training job's position for `JobContext.report`: `step` optimiser steps of `steps`."""

    stage: str
    step: int
    steps: int
    fraction: float
    label: str
    tile: int = 1
    tiles: int = 1


def trainer_command(
    config: Path, *, task: str = "", resume: bool = True, max_steps: int = 0
) -> list[str]:
    """The `dreamclear train` command line of an engine job, events on stdout."""
    argv = [sys.executable, "-m", "dreamclear.cli", "train", str(config), "--events", "-"]
    if task:
        argv += ["--task", task]
    if resume:
        # The trainer starts afresh when the output folder holds no checkpoint yet.
        argv += ["--resume", "latest"]
    if max_steps:
        argv += ["--max-steps", str(max_steps)]
    return argv


def run_trainer_child(argv: list[str], context: JobContext, stage: p.Stage = "train") -> Path:
    """Run `argv` (a `dreamclear train ... --events -` command), relaying its steps as the
    job's progress in `stage`; returns the folder it exported. Raises `JobInterrupted` once
    an interrupted child is gone, `TrainingFailed` when it fails."""
    context.stage("load")
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_child_environment(),
        )
    except OSError as error:
        raise TrainingFailed(
            f"the training process could not start: {error}",
            hint="check that this Python can run `python -m dreamclear.cli train --help`",
        ) from None
    logger.info("training process %d: %s", process.pid, " ".join(argv))
    events: queue.Queue[dict[str, Any] | None] = queue.Queue()
    tail = _Tail()
    readers = [
        threading.Thread(target=_read_events, args=(process.stdout, events), daemon=True),
        threading.Thread(target=tail.read, args=(process.stderr,), daemon=True),
    ]
    for reader in readers:
        reader.start()
    exported: str | None = None
    reported: dict[str, Any] | None = None
    try:
        while True:
            _stop_if_cancelled(process, context)
            try:
                event = events.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if event is None:  # stdout closed: the child is ending
                break
            kind = event.get("event")
            if kind == "started":
                context.stage(stage)
            elif kind == "step":
                context.report(_position(stage, event))
            elif kind == "exported":
                exported = str(event.get("path", ""))
            elif kind == "error":
                reported = event
            else:
                logger.info("training: %s", event)
        while (code := _wait(process, POLL_S)) is None:
            _stop_if_cancelled(process, context)
    finally:
        if process.poll() is None:  # an error in this thread: leave no orphan
            process.kill()
            process.wait()
        for reader in readers:
            reader.join(timeout=5)
    context.progress.flush()
    if code == 0 and exported:
        return Path(exported)
    if reported is not None and reported.get("kind") == "cancelled":
        # Interrupted from elsewhere (Ctrl-C in the engine's terminal): stopped with a checkpoint.
        raise JobInterrupted(str(reported.get("message", "")), str(reported.get("hint", "")))
    raise _failure(code, reported, tail.text())


def _child_environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONIOENCODING"] = "utf-8"  # events hold paths in any script
    env["TQDM_DISABLE"] = "1"  # the events carry the progress; stderr keeps the errors
    return env


def _read_events(stream, events: queue.Queue) -> None:
    """Each JSON line of the child's stdout into `events`; anything else (a library that
    prints) is logged and skipped. None at the end."""
    try:
        for raw in stream:
            line = raw.decode("utf-8", errors="replace").strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                event = None
            if isinstance(event, dict):
                events.put(event)
            else:
                logger.debug("training stdout: %s", line)
    finally:
        events.put(None)


class _Tail:
    """The last `STDERR_TAIL_CHARS` of a stream, read to its end on a thread."""

    def __init__(self) -> None:
        self._data = b""
        self._lock = threading.Lock()

    def read(self, stream) -> None:
        while chunk := stream.read1(8192) if hasattr(stream, "read1") else stream.read(8192):
            with self._lock:
                self._data = (self._data + chunk)[-4 * STDERR_TAIL_CHARS :]

    def text(self) -> str:
        with self._lock:
            text = self._data.decode("utf-8", errors="replace")
        lines = [line.rstrip() for line in text.replace("\r", "\n").splitlines()]
        return "\n".join(line for line in lines if line)[-STDERR_TAIL_CHARS:]


def _position(stage: str, event: dict[str, Any]) -> TrainPosition:
    step, steps = int(event.get("step", 0)), max(1, int(event.get("steps", 0) or 1))
    label = f"Training step {step}/{steps}"
    loss = event.get("loss")
    if isinstance(loss, int | float):
        label += f", loss {loss:.4g}"
    return TrainPosition(stage, step, steps, min(1.0, step / steps), label)


def _wait(process: subprocess.Popen, timeout: float) -> int | None:
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def _stop_if_cancelled(process: subprocess.Popen, context: JobContext) -> None:
    if context.cancel.cancelled:
        _stop(process)
        raise JobInterrupted(
            "training interrupted",
            "send `train` again with resume: it continues from the last checkpoint",
        )


def _stop(process: subprocess.Popen) -> None:
    """Ask the child to stop, and kill it if it has not within the grace period."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        if os.name == "posix":
            process.send_signal(signal.SIGINT)
        else:
            process.terminate()
    if _wait(process, STOP_GRACE_S) is None:
        logger.warning("training process %d ignored the interrupt: killing it", process.pid)
        process.kill()
        process.wait()


def _failure(code: int, reported: dict[str, Any] | None, stderr: str) -> TrainingFailed:
    if reported is not None:
        return TrainingFailed(
            str(reported.get("message") or "training failed"),
            str(reported.get("hint") or ""),
            str(reported.get("kind") or "internal"),
        )
    if code == 0:
        return TrainingFailed(
            "the training process ended without exporting its weights",
            hint="its output folder has what it did; run `dreamclear train` to see why",
        )
    how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
    message = f"the training process {how}"
    if stderr:
        message += f"; the end of its output:\n{stderr}"
    return TrainingFailed(
        message,
        hint="the engine is fine; fix what the output says and send `train` again",
    )
