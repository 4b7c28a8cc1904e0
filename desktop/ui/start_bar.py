"""Under the queue: what the selected job will make and take, and the buttons that start work.

Added photos wait until the user presses Restore (or turns "Start automatically" on), so the
settings can be chosen first. The estimate is the selected job's: output size in pixels and
megabytes, and a time from this session's measured speed (estimates.py), with a warning
above `LARGE_OUTPUT_MP`. The second button fits the selected job: Retry a failed or
cancelled one (with the settings edited since), or run a finished one again as a new row.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from desktop.state import AppController
from desktop.state.estimates import LARGE_OUTPUT_MP, Estimate
from desktop.state.jobs_model import duration_text

WARNING_STYLE = "background: #fff1c2; color: #5c4400; border-radius: 4px; padding: 4px;"


def estimate_text(estimate: Estimate, restorer: str) -> str:
    source = "this session's speed" if estimate.measured else "a typical speed"
    return (
        f"Output {estimate.width} × {estimate.height} px "
        f"({estimate.megapixels:.1f} MP, about {size_text(estimate.megabytes)})\n"
        f"About {duration_text(estimate.seconds)} with {restorer} ({source})"
    )


def size_text(megabytes: float) -> str:
    return f"{megabytes:.1f} MB" if megabytes < 10 else f"{megabytes:.0f} MB"


def warning_text(estimate: Estimate) -> str:
    return (
        f"Large result: {estimate.megapixels:.0f} MP is over {LARGE_OUTPUT_MP:.0f} MP. It takes "
        "long and makes a big file; a smaller Upscale may be all you need."
    )


class StartBar(QWidget):
    """`selectJob(id)` asks the queue to select a row (the new one of "Run again")."""

    selectJob = Signal(str)

    def __init__(self, controller: AppController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.job_id = ""
        self.estimate = QLabel()
        self.estimate.setWordWrap(True)
        self.warning = QLabel()
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(WARNING_STYLE)
        self.start_button = QPushButton("Restore")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.again_button = QPushButton()
        self.again_button.clicked.connect(self.again)
        self.auto_start = QCheckBox("Start automatically")
        self.auto_start.setToolTip("Start restoring photos as soon as they are added")
        self.auto_start.setChecked(controller.settings.auto_start)
        self.auto_start.toggled.connect(controller.settings.set_auto_start)
        controller.settings.autoStartChanged.connect(self._auto_start_changed)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button, 1)
        buttons.addWidget(self.again_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 6)
        layout.addWidget(self.estimate)
        layout.addWidget(self.warning)
        layout.addLayout(buttons)
        layout.addWidget(self.auto_start)
        jobs = controller.jobs
        for signal in (jobs.rowsInserted, jobs.rowsRemoved, jobs.jobChanged):
            signal.connect(self.refresh)
        controller.speeds.changed.connect(self.refresh)
        controller.models.changed.connect(self.refresh)
        self.refresh()

    def show_job(self, job_id: str) -> None:
        self.job_id = job_id
        self.refresh()

    def start(self) -> None:
        """Start every waiting job (Restore)."""
        self.controller.start_waiting()

    def refresh(self, *_: object) -> None:
        c = self.controller
        ready = [j for j in c.jobs.jobs if j.state == "waiting" and not j.start]
        self.start_button.setEnabled(bool(ready))
        count = f" {len(ready)} photos" if len(ready) > 1 else ""
        self.start_button.setText(f"Restore{count}")
        job = c.jobs.job(self.job_id)
        estimate = c.estimate(self.job_id) if job is not None else None
        if job is None or estimate is None:
            self.estimate.setText("Select a photo to see the size and time of its result.")
        else:
            restorer = c.models.restorer(job.options.model)
            self.estimate.setText(estimate_text(estimate, restorer))
        self.warning.setVisible(estimate is not None and estimate.large)
        if estimate is not None:
            self.warning.setText(warning_text(estimate))
        if job is not None and job.state in ("failed", "cancelled"):
            self.again_button.setText("Retry")
            self.again_button.setToolTip("Run it again with its settings as edited")
        else:
            self.again_button.setText("Run again…")
            self.again_button.setToolTip(
                "A new job of this photo, to run with other settings; this result is kept"
            )
        self.again_button.setEnabled(
            job is not None and job.state in ("done", "failed", "cancelled")
        )

    def again(self) -> None:
        """Retry the selected failed or cancelled job, or run the selected result again."""
        job = self.controller.jobs.job(self.job_id)
        if job is None:
            return
        if job.state == "done":
            again = self.controller.run_again(job.id)
            if again is not None:
                self.selectJob.emit(again.id)
        else:
            self.controller.retry(job.id)

    def _auto_start_changed(self, on: bool) -> None:
        self.auto_start.blockSignals(True)
        self.auto_start.setChecked(on)
        self.auto_start.blockSignals(False)
