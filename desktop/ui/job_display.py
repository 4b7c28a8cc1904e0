"""What the compare view shows for a job: its result, else its latest preview, else its photo.

A job is shown the moment it is added or chosen, whatever its state: the photo against itself
until a result exists, so the view is never empty while there is a photo to look at.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from desktop.state.jobs_model import JobView

LABELS = {
    "waiting": "Not restored yet",
    "submitted": "Not restored yet",
    "running": "Restoring…",
    "failed": "Failed: not restored",
    "cancelled": "Cancelled: not restored",
    "done": "Result not found",
}


@dataclass(frozen=True)
class JobDisplay:
    """The files the compare view shows for a job, and what its "after" side is called.
    Equal displays look the same: `stamp` (the after file's modification time) tells a
    preview rewritten in place from the one shown."""

    before: str
    after: str
    after_label: str
    stamp: int
    result: bool
    """The job's result (it has a tile grid and maybe a map), not a stand-in."""


def job_display(job: JobView) -> JobDisplay:
    if job.state == "done" and job.output and (stamp := _stamp(job.output)) is not None:
        return JobDisplay(job.input, job.output, "After", stamp, result=True)
    if job.state == "running" and job.preview_path:
        stamp = _stamp(job.preview_path)
        if stamp is not None:
            return JobDisplay(job.input, job.preview_path, "Preview", stamp, result=False)
    label = LABELS.get(job.state, "Not restored")
    return JobDisplay(job.input, job.input, label, _stamp(job.input) or 0, result=False)


def _stamp(path: str) -> int | None:
    """The file's modification time in ns; None when it is not there."""
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None
