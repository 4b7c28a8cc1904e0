"""`JobsModel`: the app's queue, one `JobView` row per image, as the queue panel shows it.

It is the desktop's one queue (the AppController owns it and is its only writer besides a
waiting job's settings): the order jobs run in, what waits, what ran and how it ended. A row's
id is the job's one id (`EngineClient.new_job_id`), the one its events carry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QImage

from engine.protocol import RestoreOptionsMessage

JobState = Literal["waiting", "submitted", "running", "done", "failed", "cancelled"]
ACTIVE: frozenset[str] = frozenset({"submitted", "running"})
"""Handed to the engine and not finished."""
FINISHED: frozenset[str] = frozenset({"done", "failed", "cancelled"})
EDITABLE: frozenset[str] = frozenset({"waiting", "failed", "cancelled"})
"""Not with the engine and without a result: its settings may still change."""


@dataclass
class JobView:
    """One image of the queue. `waiting` rows are the app's own (reorderable, not yet sent to the
    engine); `submitted` and `running` ones are the engine's."""

    id: str
    """The job's one id: the client's, carried by every event of each try of it."""
    input: str
    options: RestoreOptionsMessage
    output_dir: str
    state: JobState = "waiting"
    output: str | None = None
    map_path: str | None = None
    preview_path: str | None = None
    stage: str = ""
    step: int = 0
    steps: int = 0
    tile: int = 0
    tiles: int = 0
    eta_s: float | None = None
    progress: float | None = None
    """The engine's `fraction` of the whole job (0..1, never going back); None while unknown."""
    label: str = ""
    """The engine's position in words ("Denoising 12/50")."""
    preview_path: str | None = None
    """The latest preview of the running job (a PNG of the result so far, on the engine's
    machine); kept after the job ends until it runs again."""
    input_size: tuple[int, int] | None = None
    """The photo's width and height, once read (with its thumbnail)."""
    start: bool = False
    """Asked to run (Start, Retry or "Start automatically"): a waiting job without it waits
    for the user."""
    rerun_of: str | None = None
    """The finished job this one runs again with other settings (its result is kept)."""
    error: str = ""
    hint: str = ""
    warnings: list[str] = field(default_factory=list)
    tile_grid: list[tuple[int, int, int, int]] = field(default_factory=list)
    seconds: float | None = None
    skipped: bool = False
    """Done without restoring: its result was there already ("Skip photos already restored")."""
    thumbnail: QImage | None = None

    @property
    def name(self) -> str:
        return Path(self.input).name

    @property
    def fraction(self) -> float:
        """Progress of the job in [0, 1]: the engine's `fraction`, else denoise steps x tiles
        (the bulk of the time) from an engine that does not send it."""
        if self.state == "done":
            return 1.0
        if self.state != "running":
            return 0.0
        if self.progress is not None:
            return min(max(self.progress, 0.0), 1.0)
        if not self.steps:
            return 0.0
        tiles = max(self.tiles, 1)
        done = (self.step - 1) * tiles + max(self.tile, 1) if self.tiles else self.step
        return min(max(done / (self.steps * tiles), 0.0), 1.0)

    @property
    def status_text(self) -> str:
        """One line: what the job is doing or how it ended."""
        if self.state == "running":
            parts = [self.label or self._position()]
            if self.progress is not None:
                parts.append(f"{self.fraction:.0%}")
            if self.eta_s is not None:
                parts.append(f"{duration_text(self.eta_s)} left")
            return " · ".join(parts)
        if self.state == "failed":
            return f"failed: {self.error}"
        if self.state == "done" and self.skipped:
            return "already restored: skipped"
        if self.state == "done":
            return f"done in {self.seconds:.1f} s" if self.seconds is not None else "done"
        if self.state == "waiting" and not self.start:
            return "ready: press Restore to start"
        return {"waiting": "waiting", "submitted": "queued", "cancelled": "cancelled"}[self.state]

    def _position(self) -> str:
        """Where the job is, from an engine that sends no `label`."""
        parts = [self.stage or "starting"]
        if self.steps:
            parts.append(f"step {self.step}/{self.steps}")
        if self.tiles > 1:
            parts.append(f"tile {self.tile}/{self.tiles}")
        return " ".join(parts)

    def settings_text(self, runs_starter: bool = False) -> str:
        """One line of the settings the job's model uses (the starter ignores the diffusion
        ones, so its jobs do not show them)."""
        o = self.options
        strength = f" · strength {o.strength:.0%}" if o.strength != 1 else ""
        if runs_starter:
            return f"x{o.upscale} · starter · colour fix {o.color_fix}{strength}"
        steps = f"{o.steps} steps · {o.sampler} · CFG {o.cfg:g} · seed {o.seed}"
        return f"x{o.upscale} · {steps}{strength}"


def duration_text(seconds: float) -> str:
    """ "45 s", "3 min", "1 h 20 min": a time as a person reads it."""
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


class JobsModel(QAbstractListModel):
    """Rows are `JobView`s in queue order. `JobRole` gives the `JobView` itself."""

    JobRole = Qt.ItemDataRole.UserRole + 1
    jobChanged = Signal(str)
    """A row's fields changed (its id)."""

    def __init__(
        self,
        parent: QObject | None = None,
        runs_starter: Callable[[str], bool] = lambda model: model == "starter",
    ) -> None:
        super().__init__(parent)
        self._jobs: list[JobView] = []
        self.runs_starter = runs_starter
        """Whether a `model` setting runs the starter (the controller's `EngineModels`)."""

    def settings_text(self, job: JobView) -> str:
        return job.settings_text(self.runs_starter(job.options.model))

    def refresh_all(self) -> None:
        """Every row may read differently (e.g. the engine's models changed)."""
        if self._jobs:
            self.dataChanged.emit(self.index(0), self.index(len(self._jobs) - 1))

    # --- Qt model ---------------------------------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._jobs)

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._jobs):
            return None
        job = self._jobs[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return job.name
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = f"{job.input}\n{self.settings_text(job)}\n{job.status_text}"
            return f"{tip}\n{job.hint}" if job.hint else tip
        if role == Qt.ItemDataRole.DecorationRole:
            return job.thumbnail
        if role == self.JobRole:
            return job
        return None

    # --- rows -------------------------------------------------------------------------------

    @property
    def jobs(self) -> list[JobView]:
        return list(self._jobs)

    def job(self, job_id: str) -> JobView | None:
        return next((job for job in self._jobs if job.id == job_id), None)

    def row_of(self, job_id: str) -> int:
        return next((row for row, job in enumerate(self._jobs) if job.id == job_id), -1)

    def add(self, job: JobView, after: str | None = None) -> None:
        """Append `job`, or put it just below the row of job `after`."""
        above = self.row_of(after) if after is not None else -1
        row = above + 1 if above >= 0 else len(self._jobs)
        self.beginInsertRows(QModelIndex(), row, row)
        self._jobs.insert(row, job)
        self.endInsertRows()

    def update(self, job_id: str, **changes: Any) -> JobView | None:
        row = self.row_of(job_id)
        if row < 0:
            return None
        # In place, so references held by views stay current.
        for name, value in changes.items():
            setattr(self._jobs[row], name, value)
        job = self._jobs[row]
        index = self.index(row)
        self.dataChanged.emit(index, index)
        self.jobChanged.emit(job_id)
        return job

    def remove(self, job_id: str) -> None:
        row = self.row_of(job_id)
        if row >= 0:
            self.beginRemoveRows(QModelIndex(), row, row)
            del self._jobs[row]
            self.endRemoveRows()

    def move(self, job_id: str, delta: int) -> bool:
        """Move a waiting job `delta` places among the waiting jobs; False if it cannot move."""
        row = self.row_of(job_id)
        if row < 0 or self._jobs[row].state != "waiting":
            return False
        waiting = [r for r, job in enumerate(self._jobs) if job.state == "waiting"]
        place = waiting.index(row) + delta
        if not 0 <= place < len(waiting) or delta == 0:
            return False
        target = waiting[place]
        # Qt's destination is the row the item goes before, in the model before the move.
        destination = target + 1 if target > row else target
        self.beginMoveRows(QModelIndex(), row, row, QModelIndex(), destination)
        self._jobs.insert(target, self._jobs.pop(row))
        self.endMoveRows()
        return True

    def next_waiting(self) -> JobView | None:
        """The first waiting job the user asked to run."""
        return next((job for job in self._jobs if job.state == "waiting" and job.start), None)
