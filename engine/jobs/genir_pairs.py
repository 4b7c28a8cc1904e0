"""The job kind of GenIR's "pairs" stage: one run folder, one job (engine.genir.pairs_stage).

`plan` is the prompts stage's (engine.jobs.genir_prompts.plan_run); `run` makes and journals
the pairs, reporting stage "pairs" (step: pairs done, steps: positives) and stopping between
pairs when interrupted; sent again, the job resumes from the journal.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import ClassVar

from engine import protocol as p
from engine.jobs.base import JobContext, PlannedJob
from engine.jobs.genir_prompts import StagePosition, plan_run
from engine.path_policy import PathPolicy


class GenirPairsJobs:
    """The `JobKind` of `genir_pairs` requests (see the module docstring)."""

    request_type: ClassVar[type[p.Request]] = p.GenirPairs

    def plan(self, request: p.GenirPairs, paths: PathPolicy) -> list[PlannedJob[Path]]:
        return plan_run(request.TYPE, request.run, paths)

    def run(self, spec: Path, context: JobContext) -> p.Result:
        from engine.genir.pairs_stage import run_pairs_stage
        from engine.genir.run_folder import load_run

        started = time.perf_counter()
        context.stage("pairs")
        outcome = run_pairs_stage(
            spec,
            load_run(spec),
            check_cancelled=lambda: context.cancel.raise_if_cancelled("GenIR pairs interrupted"),
            report=lambda done, total: context.report(StagePosition("pairs", done, total)),
        )
        context.progress.flush()
        return p.Result(
            request_id=context.request_id,
            job_id=context.job_id,
            input=str(spec),
            output=str(outcome.folder),
            seconds=round(time.perf_counter() - started, 4),
        )
