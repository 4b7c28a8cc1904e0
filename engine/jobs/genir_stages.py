"""The job kinds of GenIR's stages: one run folder, one job, planned and run alike.

`plan` reads and checks the run's config (torch-free, on the server's thread) and every path
it names against the client's allowed folders. `run` imports the stage's function (lazily: the
server's thread stays torch-free) and runs it with `check_cancelled` (called between items,
raising when interrupted) and `report(done, total)`, reported as the stage's step and steps;
its result's output is the stage's outcome `path`. Sent again, a job resumes from the stage's
journal.

- `genir_prompts` (engine.genir.prompts_stage): stage "prompts", step = prompts accepted so
  far of steps = wanted, stopping between chunks; output prompts.jsonl.
- `genir_pairs` (engine.genir.pairs_stage): stage "pairs", step = pairs done of steps =
  positives, stopping between pairs; output the run's pairs folder.
- `genir_filter` (engine.genir.filter_stage): first, when the run has no quality classifier,
  its training in a child process (stage "train"); then stage "filter", step = images scored of
  steps = generated images, stopping between images; output filter/verdicts.jsonl.
- `genir_finetune` (engine.genir.training_stages): the trainer in a child process, stage
  "finetune", step = optimiser steps of steps, the loss in the label; output RUN/finetune.
- `genir_export` (engine.genir.export_stage): stage "export", step = images exported of
  steps = images accepted, stopping between images; output the run's export folder.
- `genir_generate` (engine.genir.generate_stage): stage "generate", step = images done of
  steps = prompts, stopping between batches; output the run's generate folder.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

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


class GenirStageJobs:
    """A GenIR stage's `JobKind` (see the module docstring); subclasses name the stage."""

    request_type: ClassVar[type[p.Request]]
    stage: ClassVar[p.Stage]
    work: ClassVar[str]
    """The stage's function, "module:function"."""

    def plan(self, request: Any, paths: PathPolicy) -> list[PlannedJob[Path]]:
        from engine.genir.run_folder import load_run

        if not request.run:
            raise BadSettingError(f"{request.TYPE} needs a run folder", hint="name one in `run`")
        run = paths.check(request.run, "the run folder")
        config = load_run(run)
        paths.check(str(config.images), "the run's images folder")
        paths.check(str(config.base_model), "the run's base model")
        for model in (config.pairs.captioner, config.prompts.llm_model):
            if model:
                paths.check(model, "a model the run's config names")
        return [PlannedJob(label=str(run), spec=run)]

    def run(self, spec: Path, context: JobContext) -> p.Result:
        from engine.genir.run_folder import load_run

        module, name = self.work.split(":")
        work = getattr(importlib.import_module(module), name)
        started = time.perf_counter()
        context.stage(self.stage)
        outcome = work(
            spec,
            load_run(spec),
            check_cancelled=lambda: context.cancel.raise_if_cancelled(
                f"GenIR {self.stage} interrupted"
            ),
            report=lambda done, total: context.report(StagePosition(self.stage, done, total)),
        )
        context.progress.flush()
        return _result(spec, context, outcome.path, started)


class GenirPromptsJobs(GenirStageJobs):
    request_type = p.GenirPrompts
    stage = "prompts"
    work = "engine.genir.prompts_stage:run_prompts_stage"


class GenirPairsJobs(GenirStageJobs):
    request_type = p.GenirPairs
    stage = "pairs"
    work = "engine.genir.pairs_stage:run_pairs_stage"


class GenirFilterJobs(GenirStageJobs):
    """The filter, after training its quality classifier (trainer task `quality-classifier`,
    in a child process, reported as stage "train") when the run has none yet: one request
    takes a run from its generated images to verdicts, as `genir run` does."""

    request_type = p.GenirFilter
    stage = "filter"
    work = "engine.genir.filter_stage:run_filter_stage"

    def run(self, spec: Path, context: JobContext) -> p.Result:
        from engine.genir.run_folder import CONFIG_NAME, load_run
        from engine.genir.stage_checks import classifier_state
        from engine.genir.training_stages import CLASSIFIER_TASK
        from engine.jobs.trainer_child import run_trainer_child, trainer_command

        if classifier_state(spec, load_run(spec)).state != "done":
            argv = trainer_command(spec / CONFIG_NAME, task=CLASSIFIER_TASK, resume=True)
            run_trainer_child(argv, context, "train")
        return super().run(spec, context)


class GenirFinetuneJobs(GenirStageJobs):
    """The trainer in a child process (engine.genir.training_stages), its steps relayed with
    the loss in the label, as the `train` job does."""

    request_type = p.GenirFinetune
    stage = "finetune"
    work = "engine.genir.training_stages:run_finetune_stage"

    def run(self, spec: Path, context: JobContext) -> p.Result:
        from engine.genir.run_folder import CONFIG_NAME
        from engine.genir.training_stages import FINETUNE_TASK
        from engine.jobs.trainer_child import run_trainer_child, trainer_command

        started = time.perf_counter()
        argv = trainer_command(spec / CONFIG_NAME, task=FINETUNE_TASK, resume=True)
        exported = run_trainer_child(argv, context, self.stage)
        return _result(spec, context, exported, started)


class GenirExportJobs(GenirStageJobs):
    request_type = p.GenirExport
    stage = "export"
    work = "engine.genir.export_stage:run_export_stage"


class GenirGenerateJobs(GenirStageJobs):
    request_type = p.GenirGenerate
    stage = "generate"
    work = "engine.genir.generate_stage:run_generate_stage"


def _result(run: Path, context: JobContext, output: Path, started: float) -> p.Result:
    """A stage job's `result`: its input the run folder, its output the stage's outcome."""
    return p.Result(
        request_id=context.request_id,
        job_id=context.job_id,
        input=str(run),
        output=str(output),
        seconds=round(time.perf_counter() - started, 4),
    )
