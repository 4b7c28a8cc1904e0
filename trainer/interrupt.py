"""Ctrl-C (SIGINT) stops a training run after its current step, with a checkpoint.

The engine interrupts a training child with SIGINT, and so does a person at a terminal; in
both cases the steps done since the last periodic checkpoint should not be lost. The first
SIGINT only asks (`StopRequest.asked`); the loop sees it at the next optimiser step, saves a
checkpoint and ends with `JobInterrupted`, so `--resume latest` continues from that step. A
second SIGINT interrupts at once (KeyboardInterrupt), as Ctrl-C always did.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType, TracebackType

logger = logging.getLogger(__name__)


class StopRequest:
    """Installs the SIGINT handler while in use (`with`), where Python's default one is in
    place on the main thread; elsewhere (a thread, a handler of the caller's) it does nothing."""

    def __init__(self) -> None:
        self.asked = False
        self._installed = False

    def __enter__(self) -> StopRequest:
        on_main_thread = threading.current_thread() is threading.main_thread()
        if on_main_thread and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self._installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.asked:
            raise KeyboardInterrupt
        self.asked = True
        logger.warning("Interrupted: stopping after this step with a checkpoint (again: at once).")
