"""A cancel token: asked for on one thread, checked by a job between its small units of work.

The server's thread calls `cancel()`; the job (a pipeline, a download, a GenIR stage) calls
`raise_if_cancelled()` between denoising steps, tiles or items, so a stop is acknowledged
within one unit. Torch-free, so any layer may take one.
"""

from __future__ import annotations

import threading

from engine.errors import JobInterrupted


class CancelToken:
    """Set once, from any thread; never reset (a new job gets a new token)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None
        """Why it was cancelled ("interrupt", "shutdown", ...), for the job's last event."""

    def cancel(self, reason: str = "interrupt") -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self, message: str = "restoration interrupted") -> None:
        """JobInterrupted (not a failure: the job ends as `cancelled`) once cancelled."""
        if self._event.is_set():
            raise JobInterrupted(message, "run it again to restart")
