"""GenIR's stages in the order a run goes through them: the one table `genir run`, `genir
status` and the engine read.

Each entry names its work as "module:function", imported only when the stage runs (so reading
the table imports no torch), called as `work(run, config, *, check_cancelled, report)` like
every stage function; and its check (engine.genir.stage_checks), which says from the files
whether the stage is done. `run_remaining` runs, in order, each stage that is not done.

This table is the single place to add a stage or to point one at its code. A stage whose code
is not in this build has `work = None`: `run` stops there with a clear error (unless its
results are already in the folder, made by another build or by hand).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.errors import BadSettingError
from engine.genir import stage_checks
from engine.genir.config import GenIRConfig
from engine.genir.stage_checks import StageState


@dataclass(frozen=True)
class StageEntry:
    name: str
    work: str | None
    """"module:function" of the stage's work; None where this build does not have it."""
    check: Callable[[Path, GenIRConfig], StageState]
    """How far the stage is, from the run folder's files."""


STAGES: tuple[StageEntry, ...] = (
    StageEntry(
        "prompts", "engine.genir.prompts_stage:run_prompts_stage", stage_checks.prompts_state
    ),
    StageEntry("pairs", "engine.genir.pairs_stage:run_pairs_stage", stage_checks.pairs_state),
    # finetune and classifier are trainer tasks (`genir-prompts`, `quality-classifier`): their
    # functions run `dreamclear train` as a child process; the engine never imports the trainer.
    StageEntry(
        "finetune",
        "engine.genir.training_stages:run_finetune_stage",
        stage_checks.finetune_state,
    ),
    StageEntry(
        "generate", "engine.genir.generate_stage:run_generate_stage", stage_checks.generate_state
    ),
    StageEntry(
        "classifier",
        "engine.genir.training_stages:run_classifier_stage",
        stage_checks.classifier_state,
    ),
    StageEntry("filter", "engine.genir.filter_stage:run_filter_stage", stage_checks.filter_state),
    StageEntry("export", "engine.genir.export_stage:run_export_stage", stage_checks.export_state),
)


def stage_names() -> tuple[str, ...]:
    return tuple(entry.name for entry in STAGES)


def load_work(entry: StageEntry) -> Callable:
    """The stage's function, imported now."""
    if entry.work is None:
        raise BadSettingError(
            f"the GenIR stage {entry.name!r} is not part of this build",
            hint=f"make RUN/{entry.name}/ another way, or update DreamClear Studio",
        )
    module, name = entry.work.split(":")
    return getattr(importlib.import_module(module), name)


def run_remaining(
    run: Path,
    config: GenIRConfig,
    *,
    check_cancelled: Callable[[], None] = lambda: None,
    report: Callable[[str, int, int], None] = lambda stage, done, total: None,
    starting: Callable[[StageState], None] = lambda state: None,
) -> list[str]:
    """Run every stage not done yet, in order; return the names of those run. Each stage is
    checked just before its turn (an earlier stage may have changed what it sees);
    `starting(its state)` is called before it runs, `report(stage, done, total)` as it goes."""
    ran = []
    for entry in STAGES:
        state = entry.check(run, config)
        if state.state == "done":
            continue
        starting(state)
        work = load_work(entry)
        check_cancelled()
        work(
            run,
            config,
            check_cancelled=check_cancelled,
            report=lambda done, total, name=entry.name: report(name, done, total),
        )
        ran.append(entry.name)
    return ran
