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
class PromptsPosition:
    stage: str
    step: int
    steps: int
    tile: int = 1
    tiles: int = 1


class GenirPromptsJobs:
    """The `JobKind` of `genir_prompts` requests (see the module docstring)."""

    request_type: ClassVar[type[p.Request]] = p.GenirPrompts

    def plan(self, request: p.GenirPrompts, paths: PathPolicy) -> list[PlannedJob[Path]]:
        from engine.genir.run_folder import load_run

        if not request.run:
            raise BadSettingError("genir_prompts needs a run folder", hint="name one in `run`")
        run = paths.check(request.run, "the run folder")
        config = load_run(run)
        paths.check(str(config.images), "the run's images folder")
        paths.check(str(config.base_model), "the run's base model")
        return [PlannedJob(label=str(run), spec=run)]

    def run(self, spec: Path, context: JobContext) -> p.Result:
        from engine.genir.prompts_stage import run_prompts_stage
        from engine.genir.run_folder import load_run

        started = time.perf_counter()
        context.stage("prompts")
        outcome = run_prompts_stage(
            spec,
            load_run(spec),
            check_cancelled=lambda: context.cancel.raise_if_cancelled("GenIR prompts interrupted"),
            report=lambda done, total: context.report(PromptsPosition("prompts", done, total)),
        )
        context.progress.flush()
        return p.Result(
            request_id=context.request_id,
            job_id=context.job_id,
            input=str(spec),
            output=str(outcome.path),
            seconds=round(time.perf_counter() - started, 4),
        )
