"""How far each GenIR stage is, read from the run folder's files alone (never written).

Each check returns a `StageState`: "todo" (nothing there), "partial", "done", or "stale" (done
once, but from inputs that changed since: an export made before an override). Where a stage
keeps a journal, its throughput is the median time between its last items' outputs (their
files' modification times, or a "seconds" field of the items' metadata where a stage records
one): a median, so a pause between two sessions does not count as slowness. The ETA is the
items left times that.
"""

from __future__ import annotations

import itertools
import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from engine.genir import export_stage, pairs_stage, prompts_stage
from engine.genir.config import GenIRConfig
from engine.genir.journal_files import JournalRecord, read_journal, read_journals
from engine.genir.prompt_overrides import overrides_sha256, written_with

State = Literal["todo", "partial", "done", "stale"]
RATE_WINDOW = 50
"""Items whose spacing gives the throughput: recent enough to follow a change of machine."""


@dataclass
class StageState:
    name: str
    state: State = "todo"
    done: int | None = None
    """Items done (prompts accepted, pairs, images...), where the stage counts items."""
    total: int | None = None
    """Items the stage will have when done, where known."""
    unit: str = ""
    """What `done` counts, for people ("images")."""
    per_hour: float | None = None
    """Items an hour, from the journal's latest items; None where there is no journal."""
    eta_s: float | None = None
    """Seconds to finish at `per_hour`; None when done or unknown."""
    counts: dict[str, int] = field(default_factory=dict)
    """Other counts (accepted, rejected, overridden ...)."""
    note: str = ""
    """Why the state is what it is, where that is not obvious ("decisions changed since")."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "done": self.done,
            "total": self.total,
            "unit": self.unit,
            "per_hour": None if self.per_hour is None else round(self.per_hour, 2),
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
            "counts": dict(self.counts),
            "note": self.note,
        }


def _progress(state: StageState, done: int, total: int | None, *, started: bool) -> StageState:
    state.done, state.total = done, total
    if total is not None and done >= total and started:
        state.state = "done"
    elif started or done:
        state.state = "partial"
    return state


def _timing(state: StageState, records: list[JournalRecord], per_item: float = 1.0) -> None:
    """Throughput and ETA from journal items, each worth `per_item` of the stage's unit."""
    seconds = _seconds_per_item(records)
    if seconds is None or seconds <= 0:
        return
    state.per_hour = 3600.0 * per_item / seconds
    left = (state.total or 0) - (state.done or 0)
    if state.state != "done" and left > 0:
        state.eta_s = left / per_item * seconds


def _seconds_per_item(records: list[JournalRecord]) -> float | None:
    recent = records[-RATE_WINDOW:]
    given = [
        r.metadata["seconds"] for r in recent if isinstance(r.metadata.get("seconds"), int | float)
    ]
    if given:
        return float(statistics.median(given))
    times = sorted(t for t in (_mtime(r) for r in recent) if t is not None)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    return float(statistics.median(gaps)) if gaps else None


def _mtime(record: JournalRecord) -> float | None:
    try:
        return record.outputs[-1].stat().st_mtime if record.outputs else None
    except OSError:
        return None


def _lines(path: Path) -> int:
    if not path.is_file():
        return 0
    with open(path, "rb") as file:
        return sum(1 for line in file if line.endswith(b"\n"))


# ----------------------------------------------------------------------------- stages


def prompts_state(run: Path, config: GenIRConfig) -> StageState:
    folder = prompts_stage.stage_folder(run)
    state = StageState("prompts", unit="prompts")
    journal = read_journal(folder / prompts_stage.JOURNAL)
    chunks = list(journal.items.values()) if journal else []
    final = _lines(folder / prompts_stage.ACCEPTED)
    accepted = final or sum(int(r.metadata.get("accepted", 0)) for r in chunks)
    _progress(state, accepted, config.prompts.count, started=bool(final or chunks))
    if final < config.prompts.count and state.state == "done":
        state.state = "partial"  # enough chunks, prompts.jsonl not written yet
    if state.state == "done" and overrides_sha256(run) != written_with(run):
        state.state = "partial"  # the user overrode a verdict since: write the files again
    if chunks:
        _timing(state, chunks, per_item=max(accepted / len(chunks), 1.0))
    return state


def pairs_state(run: Path, config: GenIRConfig) -> StageState:
    from engine.genir.positives import find_positives

    state = StageState("pairs", unit="pairs")
    journal = read_journal(pairs_stage.stage_folder(run) / pairs_stage.JOURNAL)
    records = list(journal.items.values()) if journal else []
    positives, skipped = find_positives(config.images, min_side=config.pairs.min_side)
    state.counts = {"positives": len(positives), "skipped images": len(skipped)}
    _progress(state, len(records), len(positives), started=journal is not None)
    _timing(state, records)
    return state


def finetune_state(run: Path, config: GenIRConfig) -> StageState:
    folder = Path(run) / "finetune"
    state = StageState("finetune", unit="steps", total=config.finetune.steps)
    state.done = checkpointed_steps(folder / "train")
    if (folder / "learned_prompts.json").is_file() and (
        folder / "learned_tokens.safetensors"
    ).is_file():
        state.state = "done"
    elif folder.is_dir() and any(folder.iterdir()):
        state.state = "partial"
    return state


def generate_state(run: Path, config: GenIRConfig) -> StageState:
    folder = Path(run) / "generate"
    state = StageState("generate", unit="images")
    wanted = _lines(Path(run) / "prompts" / prompts_stage.ACCEPTED) or config.prompts.count
    journals = read_journals(folder)
    records = sorted(
        (r for j in journals for r in j.items.values()), key=lambda r: _mtime(r) or 0.0
    )
    done = len({r.key for r in records}) if journals else _count_images(folder)
    _progress(state, done, wanted, started=bool(journals) or done > 0)
    _timing(state, records)
    return state


def _count_images(folder: Path) -> int:
    images = folder / "images"
    return sum(1 for _ in images.glob("*.png")) if images.is_dir() else 0


def classifier_state(run: Path, config: GenIRConfig) -> StageState:
    folder = Path(run) / "classifier"
    state = StageState("classifier")
    names = ("quality_classifier.safetensors", "quality_classifier.json")
    if all((folder / name).is_file() for name in names):
        state.state = "done"
    elif folder.is_dir() and any(folder.iterdir()):
        state.state = "partial"
    return state


def filter_state(run: Path, config: GenIRConfig) -> StageState:
    state = StageState("filter", unit="images")
    generated = generate_state(run, config)
    if not (Path(run) / export_stage.VERDICTS).is_file():
        return _progress(state, 0, generated.done, started=False)
    decisions = export_stage.read_decisions(run)
    accepted = sum(1 for d in decisions if d["accepted"])
    state.counts = {
        "accepted": accepted,
        "rejected": len(decisions) - accepted,
        "overridden": sum(1 for d in decisions if d["override"] is not None),
    }
    _progress(state, len(decisions), generated.done, started=True)
    if state.state == "done" and generated.state != "done":
        state.state = "partial"
        state.note = "more images are still to be generated"
    return state


def export_state(run: Path, config: GenIRConfig) -> StageState:
    folder = export_stage.stage_folder(run)
    state = StageState("export", unit="images")
    journal = read_journal(folder / export_stage.JOURNAL)
    records = list(journal.items.values()) if journal else []
    summary_path = folder / export_stage.SUMMARY
    summary = json.loads(summary_path.read_text("utf-8")) if summary_path.is_file() else None
    filtered = (Path(run) / export_stage.VERDICTS).is_file()
    decisions = export_stage.read_decisions(run) if filtered else []
    accepted = {d["key"] for d in decisions if d["accepted"]}
    exported = sum(1 for r in records if r.key in accepted)
    _progress(state, exported, len(accepted) if filtered else None, started=journal is not None)
    if summary is not None:
        state.counts = {"exported": summary["images"], "rejected": summary["rejected"]}
        if summary.get("decisions_sha256") != export_stage.decisions_digest(run):
            state.state, state.note = "stale", "the filter's decisions changed since"
        elif summary.get("settings", {}).get("export") != _export_settings(config):
            state.state, state.note = "stale", "the export settings changed since"
    elif state.state == "done":
        state.state = "partial"  # every image exported, the manifest not written yet
    _timing(state, records)
    return state


def _export_settings(config: GenIRConfig) -> dict[str, Any]:
    return asdict(config.export)


def checkpointed_steps(output_dir: Path) -> int:
    """Optimiser steps of the newest complete checkpoint of a trainer run in `output_dir`
    (trainer/checkpoints.py: checkpoints/checkpoint_N, complete once its trainer-state.json is
    written); 0 when none."""
    steps = []
    for marker in (output_dir / "checkpoints").glob("checkpoint_*/trainer-state.json"):
        try:
            steps.append(int(json.loads(marker.read_text(encoding="utf-8"))["step"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written, or damaged: not a complete checkpoint
    return max(steps, default=0)
