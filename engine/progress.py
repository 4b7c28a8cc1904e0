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


class JobProgress:
    """A job's `on_progress(info)` (stage, step/steps, tile/tiles) turned into `stage` events
    (every change, never held) and `progress` events (through `LatestWins`), with an ETA."""

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
        self.denoise_started: float | None = None
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
        if info.stage == "denoise" and self.denoise_started is None:
            self.denoise_started = now
        event = p.Progress(
            request_id=self.request_id,
            job_id=self.job_id,
            stage=info.stage,
            step=info.step,
            steps=info.steps,
            tile=info.tile,
            tiles=info.tiles,
            eta_s=self._eta(info, now),
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

    def _eta(self, info: Any, now: float) -> float | None:
        """Seconds left in the denoise stage at the rate of the units (step x tile) so far.

        The first denoise callback arrives after one unit, so the rate counts from there.
        """
        if info.stage != "denoise" or self.denoise_started is None:
            return None
        tiles = max(info.tiles, 1)
        done = (info.step - 1) * tiles + info.tile
        total = info.steps * tiles
        if done <= 1:
            return None
        per_unit = (now - self.denoise_started) / (done - 1)
        return round(per_unit * (total - done), 2)
