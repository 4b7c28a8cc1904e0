"""The job kind of GenIR's "prompts" stage: one run folder, one job (engine.genir.prompts_stage).

`plan` reads and checks the run's config (torch-free, on the server's thread) and every path
it names against the client's allowed folders; `run` draws, screens and journals prompts,
reporting stage "prompts" (step: accepted so far, steps: wanted) and stopping between chunks
when interrupted; sent again, the job resumes from the journal.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from engine import protocol as p
from engine.errors import BadSettingError
from engine.jobs.base import JobContext, PlannedJob
from engine.path_policy import PathPolicy


@dataclass(frozen=True)
class StagePosition:
    """Where a GenIR stage job is: `step` items of `steps` done."""

    stage: str
    step: int
    steps: int
    tile: int = 1
    tiles: int = 1


def plan_run(request_type: str, run_folder: str, paths: PathPolicy) -> list[PlannedJob[Path]]:
    """One job for the run folder `run_folder`, its config read and checked and every path
    it names allowed (the `plan` of every GenIR stage's job kind)."""
    from engine.genir.run_folder import load_run

    if not run_folder:
        raise BadSettingError(f"{request_type} needs a run folder", hint="name one in `run`")
    run = paths.check(run_folder, "the run folder")
    config = load_run(run)
    paths.check(str(config.images), "the run's images folder")
    paths.check(str(config.base_model), "the run's base model")
    return [PlannedJob(label=str(run), spec=run)]


class GenirPromptsJobs:
    """The `JobKind` of `genir_prompts` requests (see the module docstring)."""

    request_type: ClassVar[type[p.Request]] = p.GenirPrompts

    def plan(self, request: p.GenirPrompts, paths: PathPolicy) -> list[PlannedJob[Path]]:
        return plan_run(request.TYPE, request.run, paths)

    def run(self, spec: Path, context: JobContext) -> p.Result:
        from engine.genir.prompts_stage import run_prompts_stage
        from engine.genir.run_folder import load_run

        started = time.perf_counter()
        context.stage("prompts")
        outcome = run_prompts_stage(
            spec,
            load_run(spec),
            check_cancelled=lambda: context.cancel.raise_if_cancelled("GenIR prompts interrupted"),
            report=lambda done, total: context.report(StagePosition("prompts", done, total)),
        )
        context.progress.flush()
        return p.Result(
            request_id=context.request_id,
            job_id=context.job_id,
            input=str(spec),
            output=str(outcome.path),
            seconds=round(time.perf_counter() - started, 4),
        )
