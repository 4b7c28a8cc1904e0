"""`dreamclear restore` on several processes: `accelerate launch -m dreamclear.cli restore ...`
or `torchrun --nproc-per-node N -m dreamclear.cli restore ...` (docs/multi-gpu.md).

Both launchers start N copies of the command with RANK, WORLD_SIZE and LOCAL_RANK set. Each
copy takes its share of the inputs (`shard`), runs on GPU LOCAL_RANK when CUDA is there
(`rank_device`), loads the model once and restores its share. The results meet in files: each
rank keeps `OUTDIR/.dreamclear-ranks/rank-R.json` up to date (written atomically after every
photo, touched while one runs), and rank 0, once its own share is done, waits for every other
rank's file to say "finished", then prints one summary over all the inputs and writes it to
`OUTDIR/.dreamclear-ranks/summary.json`.

Files rather than torch.distributed: nothing to rendezvous or time out while the ranks do
unequal work (a gloo gather waits at most its timeout for the slowest rank, then fails them
all), a crashed rank leaves what it finished on disk, and it runs the same on a CPU. A rank
that stops reporting (no change to its file for `gather_timeout_s`) is given up on and its
inputs are named as not reported; `--skip-existing` on a re-run restores what is missing.
Several machines need OUTDIR on a file system they share (where the results must meet anyway).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.cli.restore_progress import FileOutcome
from engine.imaging.atomic import atomic_write

RANKS_FOLDER = ".dreamclear-ranks"
SUMMARY_FILE = "summary.json"
HEARTBEAT_S = 20.0
"""A running rank touches its file at most this often while a photo restores."""
STARTED_SLACK_S = 120.0
"""A rank file from a run that started this much before rank 0 is a stale one: ignored."""


@dataclass(frozen=True)
class Ranks:
    """Where this process stands among those a launcher started."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Ranks:
        """From the launchers' RANK / WORLD_SIZE / LOCAL_RANK; one process when unset."""
        env = os.environ if environ is None else environ
        try:
            world = int(env.get("WORLD_SIZE", "1"))
            rank = int(env.get("RANK", "0"))
            local = int(env.get("LOCAL_RANK", str(rank)))
        except ValueError:
            return cls()
        if world < 2 or not 0 <= rank < world:
            return cls()
        return cls(rank, world, local)

    @property
    def several(self) -> bool:
        return self.world_size > 1

    @property
    def label(self) -> str:
        return f"rank {self.rank}/{self.world_size}"


def shard(inputs: Sequence[Path], rank: int, world_size: int) -> list[Path]:
    """This rank's inputs: every `world_size`-th name, counted in the inputs' (sorted) order.

    Inputs are grouped by name (stem, any case): photo.png and photo.bmp would both become
    photo_x4.png, and one process picks a free second name where two would race for it.
    """
    names: dict[str, int] = {}
    for path in inputs:
        names.setdefault(path.stem.lower(), len(names))
    return [path for path in inputs if names[path.stem.lower()] % world_size == rank]


def rank_device(requested: str, local_rank: int) -> str:
    """GPU `local_rank` when `requested` is auto or cuda (no index) and CUDA is there (more
    ranks than GPUs share them round robin); anything else as asked (cpu, cuda:N)."""
    if requested not in ("auto", "cuda"):
        return requested
    import torch

    if not torch.cuda.is_available():
        return requested
    return f"cuda:{local_rank % torch.cuda.device_count()}"


class RankReport:
    """This rank's file in the output folder: its outcomes so far and whether it finished."""

    def __init__(self, output_folder: Path, ranks: Ranks, clock: Callable[[], float] = time.time):
        self.folder = output_folder / RANKS_FOLDER
        self.path = self.folder / f"rank-{ranks.rank}.json"
        self.ranks = ranks
        self.clock = clock
        self.started = clock()
        self._touched = self.started

    def write(
        self, outcomes: Sequence[FileOutcome], *, finished: bool = False, interrupted: bool = False
    ) -> None:
        self.folder.mkdir(exist_ok=True)
        record = {
            "rank": self.ranks.rank,
            "world_size": self.ranks.world_size,
            "pid": os.getpid(),
            "started": self.started,
            "finished": finished,
            "interrupted": interrupted,
            "outcomes": [dataclasses.asdict(outcome) for outcome in outcomes],
        }
        data = json.dumps(record, indent=1).encode()
        atomic_write(self.path, lambda f: f.write(data), overwrite=True)
        self._touched = self.clock()

    def heartbeat(self, *_: Any) -> None:
        """Say "still working" (from the progress callback), at most every HEARTBEAT_S."""
        now = self.clock()
        if now - self._touched >= HEARTBEAT_S:
            self._touched = now
            with contextlib.suppress(OSError):  # the next write says it again
                os.utime(self.path)


@dataclass
class Gathered:
    outcomes: list[FileOutcome]
    missing: list[str]
    """One line per rank that did not report in time (what it left unaccounted)."""


def gather(
    report: RankReport,
    shares: dict[int, list[Path]],
    timeout_s: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    poll_s: float = 1.0,
) -> Gathered:
    """Rank 0: every rank's outcomes, waiting for each rank file to say finished; a rank
    whose file has not changed for `timeout_s` (or never appeared) is given up on."""
    outcomes: list[FileOutcome] = []
    missing: list[str] = []
    waiting = set(range(1, report.ranks.world_size))
    last_change = {rank: report.clock() for rank in waiting}
    while waiting:
        for rank in sorted(waiting):
            path = report.folder / f"rank-{rank}.json"
            record, changed = _read_rank(path, report.started)
            if changed is not None:
                last_change[rank] = max(last_change[rank], changed)
            if record is not None and record["finished"]:
                waiting.discard(rank)
                outcomes.extend(FileOutcome(**o) for o in record["outcomes"])
                if record["interrupted"]:
                    left = len(shares.get(rank, [])) - len(record["outcomes"])
                    missing.append(f"rank {rank} stopped early with {left} input(s) left")
            elif report.clock() - last_change[rank] > timeout_s:
                waiting.discard(rank)
                done = len(record["outcomes"]) if record else 0
                if record:
                    outcomes.extend(FileOutcome(**o) for o in record["outcomes"])
                left = len(shares.get(rank, [])) - done
                missing.append(
                    f"rank {rank} did not report for {timeout_s:g} s: "
                    f"{left} of its {len(shares.get(rank, []))} input(s) unaccounted"
                )
        if waiting:
            sleep(poll_s)
    return Gathered(outcomes, missing)


def _read_rank(path: Path, started: float) -> tuple[dict[str, Any] | None, float | None]:
    """(its record, when the file last changed); (None, None) while absent, stale (from a
    run that started well before this one) or unreadable."""
    try:
        changed = path.stat().st_mtime
        record = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None, None
    if not isinstance(record, dict) or record.get("started", 0) < started - STARTED_SLACK_S:
        return None, None
    return record, changed


def write_summary(report: RankReport, gathered: Gathered, total_inputs: int) -> Path:
    """Rank 0: the whole batch's summary beside the rank files."""
    failed = [o for o in gathered.outcomes if o.error]
    skipped = [o for o in gathered.outcomes if o.skipped]
    summary = {
        "world_size": report.ranks.world_size,
        "inputs": total_inputs,
        "restored": len(gathered.outcomes) - len(failed) - len(skipped),
        "failed": len(failed),
        "skipped": len(skipped),
        "not_reported": gathered.missing,
        "outcomes": [dataclasses.asdict(o) for o in gathered.outcomes],
    }
    path = report.folder / SUMMARY_FILE
    data = json.dumps(summary, indent=1).encode()
    atomic_write(path, lambda f: f.write(data), overwrite=True)
    return path
