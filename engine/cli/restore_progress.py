"""What `dreamclear restore` shows, locally and against a remote engine alike: a bar per file
and the closing summary. Torch-free, so the remote client stays light."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from tqdm import tqdm


@dataclass
class FileOutcome:
    """How one input ended, as the summary reports it."""

    input: str
    output: str | None = None
    seconds: float = 0.0
    error: str | None = None
    skipped: bool = False
    """Its result was there already (--skip-existing); `output` names it."""


class StepProgress:
    """A tqdm bar for one file's denoising steps, with stage and tile in its description."""

    def __init__(self, name: str, stream: TextIO) -> None:
        self.name = name
        self.bar = tqdm(
            total=1, desc=name, unit="step", file=stream, leave=False, dynamic_ncols=True
        )

    def __call__(self, info) -> None:
        if info.stage == "denoise":
            total = max(info.steps * max(info.tiles, 1), 1)
            if self.bar.total != total:
                self.bar.reset(total=total)
            # step and tile are 1-based.
            self.bar.n = (info.step - 1) * max(info.tiles, 1) + info.tile
            self.bar.set_description(f"{self.name} [denoise]", refresh=False)
            self.bar.refresh()
        else:
            self.bar.set_description(f"{self.name} [{info.stage}]")

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
