"""What `dreamclear restore` shows, locally and against a remote engine alike: a bar per file
and the closing summary. Torch-free, so the remote client stays light."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from tqdm import tqdm

from engine import protocol as p
from engine.pipelines.stage_plan import STAGE_WORDS
from engine.progress import FractionEta


@dataclass
class FileOutcome:
    """How one input ended, as the summary reports it."""

    input: str
    output: str | None = None
    seconds: float = 0.0
    error: str | None = None
    skipped: bool = False
    """Its result was there already (--skip-existing); `output` names it."""


BAR_FORMAT = "{desc}{percentage:3.0f}%|{bar}| {elapsed}<{eta}"
"""tqdm adds the colon after the description itself."""


class _JobBar(tqdm):
    """A tqdm bar whose remaining time is the job's own ETA (`eta_text`), not tqdm's guess."""

    eta_text = "?"

    @property
    def format_dict(self):
        return {**super().format_dict, "eta": self.eta_text}


class StepProgress:
    """One bar per file over the whole job: its fraction, its position in words and the ETA,
    e.g. `bridge.jpg Removing degradations (tile 3/9):  35%|███▌      | 00:40<01:15`.

    Called with a pipeline's `ProgressInfo` (the local run: the ETA is computed here, as the
    engine does) or fed the engine's `progress` and `stage` events (`show_event`, `enter`)."""

    def __init__(self, name: str, stream: TextIO, clock: Callable[[], float] = time.monotonic):
        self.name = name
        self.clock = clock
        self.eta = FractionEta()
        self.bar = _JobBar(
            total=100,
            desc=name,
            file=stream,
            leave=False,
            dynamic_ncols=True,
            bar_format=BAR_FORMAT,
        )

    def __call__(self, info) -> None:
        self.show(info.fraction, info.label, self.eta(info.fraction, self.clock()))

    def show_event(self, event: p.Progress) -> None:
        self.show(
            event.fraction, event.label or STAGE_WORDS.get(event.stage, event.stage), event.eta_s
        )

    def enter(self, stage: str) -> None:
        """A stage without positions (loading, saving): only the words change."""
        self.bar.set_description(f"{self.name} {STAGE_WORDS.get(stage, stage)}")

    def show(self, fraction: float | None, label: str, eta_s: float | None) -> None:
        if fraction is not None:
            self.bar.n = round(100 * min(max(fraction, 0.0), 1.0), 1)
        self.bar.eta_text = tqdm.format_interval(eta_s) if eta_s is not None else "?"
        self.bar.set_description(f"{self.name} {label}", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def report_outcome(outcome: FileOutcome, stream: TextIO) -> None:
    """One line per finished file, printed above the bars."""
    if outcome.error:
        tqdm.write(f"failed: {outcome.error}", file=stream)
    elif outcome.skipped:
        tqdm.write(f"skipped {outcome.input}: {outcome.output} exists", file=stream)
    else:
        tqdm.write(f"wrote {outcome.output} ({outcome.seconds:.1f} s)", file=stream)


def summarise(outcomes: Sequence[FileOutcome], stream: TextIO) -> int:
    """The closing lines; the exit code (1 when any file failed)."""
    failed = [o for o in outcomes if o.error]
    skipped = sum(o.skipped for o in outcomes)
    done = len(outcomes) - len(failed) - skipped
    also = f", {skipped} skipped (already restored)" if skipped else ""
    stream.write(f"{done} restored, {len(failed)} failed{also}\n")
    for outcome in failed:
        stream.write(f"  {outcome.error}\n")
    return 1 if failed else 0
