"""`StageControls`: start, pause (interrupt) and resume one stage's engine job, with its
progress, ETA and error, bound to the wizard's `stageChanged`.

Redrawn at most every `REDRAW_MS` and only while shown: a stage may report hundreds of steps a
second, and laying the page out again for each would stall the event loop (TextLine,
ProgressLine)."""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from desktop.state.genir_estimates import human_seconds
from desktop.state.genir_wizard import GenirWizard

REDRAW_MS = 50


class ProgressLine(QWidget):
    """A progress bar that repaints with the next paint, not at once: QProgressBar.setValue
    repaints synchronously, which cost milliseconds per progress event here."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.step, self.steps = 0, 0
        self.setMinimumHeight(22)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set(self, step: int, steps: int) -> None:
        if (step, steps) != (self.step, self.steps):
            self.step, self.steps = step, steps
            self.update()

    @property
    def text(self) -> str:
        return f"{self.step} / {self.steps}" if self.steps else ""

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        palette = self.palette()
        frame = self.rect().adjusted(0, 0, -1, -1)
        painter.fillRect(frame, palette.base())
        if self.steps:
            done = frame.adjusted(1, 1, 0, 0)
            done.setWidth(round((frame.width() - 1) * min(self.step / self.steps, 1.0)))
            painter.fillRect(done, palette.highlight())
        painter.setPen(palette.mid().color())
        painter.drawRect(frame)
        painter.setPen(palette.text().color())
        painter.drawText(frame, Qt.AlignmentFlag.AlignCenter, self.text)


class TextLine(QWidget):
    """One line of text that changes often (a stage's position, an estimate). Unlike a QLabel,
    new text only repaints it: a QLabel asks its page to lay out again, and a page with
    word-wrapped labels and a grid of thumbnails took tens of milliseconds to do so."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._text = ""
        self.setFixedHeight(self.fontMetrics().height() + 4)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)

    def text(self) -> str:
        return self._text

    def setText(self, text: str) -> None:
        if text != self._text:
            self._text = text
            self.setToolTip(text)
            self.update()

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.setPen(self.palette().windowText().color())
        shown = self.fontMetrics().elidedText(self._text, Qt.TextElideMode.ElideRight, self.width())
        painter.drawText(self.rect(), Qt.AlignmentFlag.AlignVCenter, shown)


class StageControls(QWidget):
    """The button says what pressing it does: Start, Pause, Resume, Run again."""

    def __init__(
        self,
        wizard: GenirWizard,
        stage: str,
        start_text: str,
        before_start: Callable[[], bool] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.wizard, self.stage, self.start_text = wizard, stage, start_text
        self.before_start = before_start
        """Called before the stage starts (the page saves its settings); False stops it."""
        self.button = QPushButton(start_text)
        self.button.clicked.connect(self.press)
        self.progress = ProgressLine()
        self.status = TextLine()
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #c0392b")
        row = QHBoxLayout()
        row.addWidget(self.button)
        row.addWidget(self.progress, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(self.error)
        self._redraw = QTimer(self, singleShot=True, interval=REDRAW_MS)
        self._redraw.timeout.connect(self.update_view)
        wizard.stageChanged.connect(self._changed)
        wizard.runChanged.connect(self._changed)
        self.update_view()

    def press(self) -> None:
        run = self.wizard.stage_run(self.stage)
        if run.active:
            self.wizard.cancel(self.stage)
        elif self.before_start is not None and not self.before_start():
            return
        elif self.stage == "train":
            self.wizard.train_starter()
        else:
            self.wizard.start(self.stage)

    def _changed(self, _stage: str = "") -> None:
        if self.isVisible() and not self._redraw.isActive():
            self._redraw.start()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.update_view()

    def update_view(self) -> None:
        wizard, run = self.wizard, self.wizard.stage_run(self.stage)
        complete = bool(wizard.state and wizard.state.complete.get(self.stage))
        busy_elsewhere = wizard.running_stage() not in (None, self.stage)
        if run.active:
            text = "Pause" if self.stage == "generate" else "Cancel"
        elif run.resumable:
            text = "Resume"
        elif complete or run.status == "done":
            text = "Run again"
        else:
            text = self.start_text
        self.button.setText(text)
        self.button.setEnabled(wizard.run is not None and not busy_elsewhere)
        self.progress.set(run.step, run.steps)
        if run.status == "starting":
            status = "Starting…"
        elif run.active:
            eta = run.estimated_eta(time.monotonic())
            status = run.label or "Running…"
            if eta is not None:
                status += f" — about {human_seconds(eta)} left"
        elif run.status == "cancelled":
            status = "Paused: what was done is kept. Resume goes on from there."
        elif run.status == "done":
            status = "Done." + (f" Output: {run.output}" if run.output else "")
        elif busy_elsewhere:
            status = f"Waiting: the {wizard.running_stage()} stage is running."
        else:
            status = "Done (found in the run folder)." if complete else ""
        self.status.setText(status)
        self.error.setVisible(run.status == "failed")
        if run.status == "failed":
            self.error.setText(f"{run.error}\n{run.hint}".strip())
