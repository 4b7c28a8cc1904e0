"""`LogModel`: the app's log records (and errors) as the log panel and the diagnostic report see them."""

from __future__ import annotations

import contextlib
import logging
from collections import deque

from PySide6.QtCore import QObject, Signal

_FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")


class _Handler(logging.Handler):
    def __init__(self, model: LogModel) -> None:
        super().__init__(logging.INFO)
        self._model = model

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(RuntimeError):  # the model was deleted (the app is closing)
            self._model._add(self.format(record), record.levelno)


class LogModel(QObject):
    """The last `max_lines` log lines; `lineAdded(text, level)` for each new one.

    Qt queues the signal when a record comes from another thread, so widgets update on theirs.
    """

    lineAdded = Signal(str, int)

    def __init__(self, max_lines: int = 2000, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lines: deque[str] = deque(maxlen=max_lines)
        self._errors: deque[str] = deque(maxlen=50)
        self.handler = _Handler(self)
        self.handler.setFormatter(_FORMAT)

    def install(self, logger: logging.Logger | None = None) -> None:
        (logger or logging.getLogger()).addHandler(self.handler)

    def uninstall(self, logger: logging.Logger | None = None) -> None:
        (logger or logging.getLogger()).removeHandler(self.handler)

    @property
    def lines(self) -> list[str]:
        return list(self._lines)

    @property
    def errors(self) -> list[str]:
        """Recent errors: log records at ERROR and failed jobs, newest last."""
        return list(self._errors)

    def add_error(self, text: str) -> None:
        self._errors.append(text)

    def _add(self, text: str, level: int) -> None:
        self._lines.append(text)
        if level >= logging.ERROR:
            self._errors.append(text)
        self.lineAdded.emit(text, level)
