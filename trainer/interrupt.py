"""Ctrl-C (SIGINT) or SIGTERM stops a training run after its current step, with a checkpoint.

The engine interrupts a training child with SIGINT, and so does a person at a terminal;
`kill`, systemd, a container runtime and cluster schedulers (SLURM before a time limit) send
SIGTERM. In every case the steps done since the last periodic checkpoint should not be lost.
The first signal only asks (`StopRequest.asked`); the loop sees it at the next optimiser
step, saves a checkpoint and ends with `JobInterrupted`, so `--resume latest` continues from
that step. A second one acts at once: SIGINT raises KeyboardInterrupt, as Ctrl-C always did,
and SIGTERM ends the process as its default would.

A signal the caller ignores stays ignored (a shell starts background jobs with SIGINT
ignored; `nohup` ignores SIGHUP only), and a handler of the caller's stays in place.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType, TracebackType

logger = logging.getLogger(__name__)


def _stop_signals() -> dict[int, object]:
    """Each signal that asks for a stop -> the handler that must be in place for ours to
    replace it (Python's default one; SIGTERM's is the system's)."""
    signals: dict[int, object] = {signal.SIGINT: signal.default_int_handler}
    if hasattr(signal, "SIGTERM") and os.name == "posix":
        signals[signal.SIGTERM] = signal.SIG_DFL
    return signals


class StopRequest:
    """Installs the SIGINT and SIGTERM handlers while in use (`with`), each where the default
    is in place on the main thread; elsewhere (a thread, a handler of the caller's, an
    ignored signal) it leaves that signal alone."""

    def __init__(self) -> None:
        self.asked = False
        self._installed: dict[int, object] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum, default in _stop_signals().items():
            if signal.getsignal(signum) is default:
                signal.signal(signum, self._handle)
                self._installed[signum] = default
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for signum, default in self._installed.items():
            signal.signal(signum, default)  # type: ignore[arg-type]
        self._installed = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.asked:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            # The second SIGTERM: die of it, so whoever sent it sees the status it expects.
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.asked = True
        name = signal.Signals(signum).name
        logger.warning("%s: stopping after this step with a checkpoint (again: at once).", name)
