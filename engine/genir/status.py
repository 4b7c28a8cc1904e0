"""`genir status`: every stage's state, counts, throughput and ETA, as text or JSON.

Read from the run folder alone (engine.genir.run_folder's counts, then each stage's check in
engine.genir.stages), so it is safe while a stage runs, and the desktop's wizard gets the same
through the engine's `genir_status` request.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.genir.run_folder import RunStatus, load_run, run_status
from engine.genir.stage_checks import StageState
from engine.genir.stages import STAGES

FORMAT = 1
"""Version of `to_json`'s shape; bumped when a field changes meaning or goes."""


@dataclass
class GenirStatus:
    folder: RunStatus
    """The stage reached and the folder's counts."""
    stages: list[StageState]
    """Every stage, in the order a run goes through them."""

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "run": str(self.folder.run),
            "stage_reached": self.folder.stage,
            "counts": dict(self.folder.counts),
            "stages": [stage.to_json() for stage in self.stages],
            "next": next((s.name for s in self.stages if s.state != "done"), None),
        }

    def describe(self) -> str:
        rows = [("stage", "state", "progress", "per hour", "ETA")]
        for stage in self.stages:
            rows.append(
                (
                    stage.name,
                    stage.state + (f" ({stage.note})" if stage.note else ""),
                    _progress_text(stage),
                    "-" if stage.per_hour is None else _rate_text(stage.per_hour),
                    "-" if stage.eta_s is None else duration_text(stage.eta_s),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        table = [
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
        ]
        return self.folder.describe() + "\n".join(table) + "\n"


def _progress_text(stage: StageState) -> str:
    parts = []
    if stage.done is not None:
        total = "" if stage.total is None else f"/{stage.total}"
        parts.append(f"{stage.done}{total} {stage.unit}".rstrip())
    parts += [f"{name} {count}" for name, count in stage.counts.items()]
    return ", ".join(parts) or "-"


def _rate_text(per_hour: float) -> str:
    """180312.4 -> "180,312", 2.345 -> "2.35"."""
    return f"{per_hour:,.0f}" if per_hour >= 100 else f"{per_hour:.3g}"


def duration_text(seconds: float) -> str:
    """3725 -> "1h 02m", 200 -> "3m 20s", 7.4 -> "7s"."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def genir_status(run: Path) -> GenirStatus:
    """The status of the run folder `run` (a clear error when it is not one)."""
    config = load_run(run)
    folder = run_status(run)
    stages = [entry.check(Path(run), config) for entry in STAGES]
    folder.stage = stage_reached(stages, folder.stage)
    return GenirStatus(folder, stages)


def stage_reached(stages: list[StageState], fallback: str) -> str:
    """The last stage in the table with anything done ("filter", "generate (partial)"), so the
    summary follows every stage (the folder's own counts stop at generation); `fallback` (the
    folder's "initialised") when none has."""
    started = [stage for stage in stages if stage.state != "todo"]
    if not started:
        return fallback
    last = started[-1]
    return last.name if last.state == "done" else f"{last.name} ({last.state})"
