"""`dreamclear train --events PATH|-`: the run's progress as JSON lines, for programs.

The engine runs training as a child process (docs/decisions.md) and reads these lines from
the child's stdout (`-`); a script may name a file instead. One JSON object per line, flushed
at once, each with an `event` field:

    {"event": "started", "steps": 1000, "resume_step": 0, "output_dir": "..."}
    {"event": "step", "step": 12, "steps": 1000, "loss": 0.031, "seconds_per_step": 0.8,
     "eta_seconds": 790.4}
    {"event": "checkpoint", "step": 250, "path": ".../checkpoints/checkpoint_0"}
    {"event": "validation", "step": 250, "metrics": {"psnr": 24.1}}
    {"event": "exported", "path": ".../export"}
    {"event": "error", "kind": "bad_setting", "message": "...", "hint": "..."}

An interrupted run (SIGINT: trainer/interrupt.py) ends with a `checkpoint` event and an
`error` of kind "cancelled".

`steps` is the run's total as far as it is known (under `max_minutes`, the step the time
budget will reach at the pace so far); `seconds_per_step` is the average of this process's
steps. Only the main process of an accelerate run writes events.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any, TextIO


class TrainEvents:
    """Writes the events above to a stream; `TrainEvents(None)` writes nothing."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self._owned = False
        self._on_stdout = stream is sys.stdout

    @classmethod
    def open(cls, target: str | None) -> TrainEvents:
        """Events to `target`: "-" for stdout, a file path (appended to), or None for none.
        `accelerate launch` starts one process per device, each parsing the same arguments;
        all but the main one (RANK 0) get a writer that writes nothing."""
        if target is None or os.environ.get("RANK", "0") != "0":
            return cls(None)
        if target == "-":
            return cls(sys.stdout)
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        events = cls(path.open("a", encoding="utf-8"))
        events._owned = True
        return events

    @property
    def words(self) -> TextIO:
        """Where the command's words for people go: stdout, unless the events took it."""
        return sys.stderr if self._on_stdout else sys.stdout

    def emit(self, event: str, **fields: Any) -> None:
        if self.stream is None:
            return
        payload = {"event": event, **{name: _json_value(v) for name, v in fields.items()}}
        self.stream.write(json.dumps(payload, ensure_ascii=False) + "\n")
        self.stream.flush()

    def error(self, error: Exception) -> None:
        """The run failed: an `EngineError` with its kind and hint, or anything else (a bug,
        running out of memory) by its type."""
        kind = getattr(error, "kind", None)
        if kind is None:
            oom = type(error).__name__ == "OutOfMemoryError"  # torch's, without importing torch
            kind = "out_of_memory" if oom else "internal"
        message = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
        self.emit("error", kind=kind, message=message, hint=getattr(error, "hint", ""))

    def close(self) -> None:
        if self._owned and self.stream is not None:
            self.stream.close()
        self.stream = None


def _json_value(value: Any) -> Any:
    """Paths as text; a loss that is not finite as null (JSON has no NaN)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return value
