"""`StageControls`: start, pause (interrupt) and resume one stage's engine job, with its
progress, ETA and error, bound to the wizard's `stageChanged`."""

from __future__ import annotations

import time

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from desktop.state.genir_estimates import human_seconds
from desktop.state.genir_wizard import GenirWizard


class StageControls(QWidget):
    """The button says what pressing it does: Start, Pause, Resume, Run again."""

    def __init__(
        self, wizard: GenirWizard, stage: str, start_text: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.wizard, self.stage, self.start_text = wizard, stage, start_text
        self.button = QPushButton(start_text)
        self.button.clicked.connect(self.press)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.status = QLabel()
        self.status.setWordWrap(True)
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
        wizard.stageChanged.connect(self._changed)
        wizard.runChanged.connect(self.update_view)
        self.update_view()

    def press(self) -> None:
        run = self.wizard.stage_run(self.stage)
        if run.active:
            self.wizard.cancel(self.stage)
        elif self.stage == "train":
            self.wizard.train_starter()
        else:
            self.wizard.start(self.stage)

    def _changed(self, stage: str) -> None:
        if stage == self.stage or self.wizard.running_stage() in (None, stage):
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
        self.progress.setMaximum(max(run.steps, 1))
        self.progress.setValue(min(run.step, max(run.steps, 1)) if run.steps else 0)
        self.progress.setFormat(f"{run.step} / {run.steps}" if run.steps else "")
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
