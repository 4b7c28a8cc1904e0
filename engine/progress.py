"""Progress throttled at the source: at most `hz` events a second, the latest position wins.

Every long task of the engine (restore jobs, model downloads, later GenIR stages) reports
through one `LatestWins`: an event offered sooner than 1/hz after the last one sent is held,
replaced by any later one, and sent by a timer at the end of the interval, so a slow task (one
callback a minute) never leaves the client a step behind and a fast one never floods it.
Results, errors and stage changes are not progress: callers `flush()` before sending them and
`discard()` once the task is over, so no position follows its final event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from engine import protocol as p

logger = logging.getLogger(__name__)

T = TypeVar("T")
JOB_PROGRESS_HZ = 20.0
"""Most `progress` events per second and job."""


class LatestWins(Generic[T]):
    """`offer(item)` from the task's thread; `send(item)` is called at most `hz` times a second
    (from that thread, or from a timer thread for a held item): it must be thread-safe."""

    def __init__(
        self, send: Callable[[T], None], hz: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.send = send
        self.interval = 1.0 / hz
        self.clock = clock
        self.last_sent = float("-inf")
        self.pending: T | None = None
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def offer(self, item: T) -> None:
        now = self.clock()
        with self._lock:
            if now - self.last_sent >= self.interval:
                self._cancel_timer()
                self._send(item, now)
            else:
                self.pending = item
                if self._timer is None:
                    delay = max(self.last_sent + self.interval - now, 0.0)
                    self._timer = threading.Timer(delay, self._on_timer)
                    self._timer.args = (self._timer,)
                    self._timer.daemon = True
                    self._timer.start()

    def flush(self) -> None:
        """Send the held item now (before a stage change, a result or an error)."""
        with self._lock:
            self._cancel_timer()
            if self.pending is not None:
                self._send(self.pending, self.clock())

    def discard(self) -> None:
        """Drop the held item: the task is over and its last event already sent."""
        with self._lock:
            self._cancel_timer()
            self.pending = None

    def _on_timer(self, timer: threading.Timer) -> None:
        with self._lock:
            if timer is not self._timer:
                return  # cancelled after it fired: a direct send or a flush came first
            self._timer = None
            if self.pending is not None:
                self._send(self.pending, self.clock())

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _send(self, item: T, now: float) -> None:
        self.pending = None
        self.last_sent = now
        self.send(item)


class FractionEta:
    """Seconds left for a whole job, from the rate at which its fraction has grown.

    The origin is the first position (after the model is loaded, which says nothing about the
    rate); no estimate before 2% more of the job is done, so one fast first tile does not
    promise a wrong end. Used by the engine and the command line's local run alike."""

    MIN_PROGRESS = 0.02

    def __init__(self) -> None:
        self.origin: tuple[float, float] | None = None

    def __call__(self, fraction: float, now: float) -> float | None:
        if self.origin is None:
            self.origin = (now, fraction)
            return None
        since, start = self.origin
        gained = fraction - start
        if gained < self.MIN_PROGRESS:
            return None
        return round((now - since) / gained * (1.0 - fraction), 2)


class JobProgress:
    """A job's `on_progress(info)` turned into `stage` events (every change, never held) and
    `progress` events (through `LatestWins`) that carry the whole job's fraction (never going
    back), its label and the ETA from the fraction's rate.

    `info` has stage, step, steps, tile, tiles (counters from 1) and, from a pipeline's
    `StagePlan`, fraction and label (`engine.pipelines.stage_plan.ProgressInfo`)."""

    def __init__(
        self,
        job_id: str,
        request_id: str | None,
        emit: Callable[[p.Event], None],
        hz: float = JOB_PROGRESS_HZ,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.job_id = job_id
        self.request_id = request_id
        self.emit = emit
        self.clock = clock
        self.stage: str | None = None
        self.fraction = 0.0
        self.eta = FractionEta()
        self.throttle: LatestWins[tuple[p.Progress, float]] = LatestWins(self._send, hz, clock)

    def enter(self, stage: str) -> None:
        """Announce `stage` (flushing the last position of the one before), once per change."""
        if stage == self.stage:
            return
        self.flush()
        self.stage = stage
        self.emit(p.StageEvent(request_id=self.request_id, job_id=self.job_id, stage=stage))

    def __call__(self, info: Any) -> None:
        now = self.clock()
        self.enter(info.stage)
        # An out-of-memory retry starts a stage again: the fraction waits instead of going back.
        self.fraction = max(self.fraction, float(getattr(info, "fraction", 0.0)))
        event = p.Progress(
            request_id=self.request_id,
            job_id=self.job_id,
            stage=info.stage,
            step=info.step,
            steps=info.steps,
            tile=info.tile,
            tiles=info.tiles,
            eta_s=self.eta(self.fraction, now),
            fraction=self.fraction,
            label=getattr(info, "label", "") or info.stage,
        )
        self.throttle.offer((event, now))

    def flush(self) -> None:
        self.throttle.flush()

    def discard(self) -> None:
        self.throttle.discard()

    def _send(self, item: tuple[p.Progress, float]) -> None:
        event, called = item
        # The benchmark matches these lines to the events it receives (same monotonic clock).
        logger.debug(
            "progress job=%s stage=%s step=%d tile=%d called=%.6f sent=%.6f",
            event.job_id,
            event.stage,
            event.step,
            event.tile,
            called,
            self.clock(),
        )
        self.emit(event)
