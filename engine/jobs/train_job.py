"""The `train` job kind: `dreamclear train` as a child process (engine.jobs.trainer_child).

`plan` (the server's thread, torch-free) checks the config and every folder it names against
the client's allowed folders: a GenIR run's genir.toml by its run folder, images and base
model (as the GenIR stages do); a trainer config by its data, output and init folders, read
as plain TOML (the engine may not import the trainer; the child checks every field again).
`run` starts the child and relays its steps; the result's output is the exported folder.
"""

from __future__ import annotations

import os
import re
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from engine import protocol as p
from engine.errors import BadSettingError
from engine.jobs.base import JobContext, PlannedJob
from engine.jobs.trainer_child import run_trainer_child, trainer_command
from engine.path_policy import PathPolicy

TASK_NAME = re.compile(r"[a-z][a-z0-9-]{0,63}")
"""What a `--task` looks like; anything else (an option, a path) is refused at once."""
TRAINER_PATHS = (
    ("data", "photos", "the training photos"),
    ("checkpointing", "output_dir", "the training output folder"),
    ("starter", "init_from", "the starter to start from"),
    ("starter_gate", "experts_from", "the starter whose restorers the gate blends"),
    ("dreamclear", "caption_features", "the caption features"),
)
"""The trainer config's fields that name folders (trainer/config.py)."""
MODEL_NAMES = ("tiny", "dreamclear")
"""`dreamclear.model` values that are names, not paths."""


@dataclass(frozen=True)
class TrainSpec:
    config: Path
    task: str
    resume: bool
    max_steps: int


class TrainJobs:
    """The `JobKind` of `train` requests (see the module docstring)."""

    request_type: ClassVar[type[p.Request]] = p.Train

    def plan(self, request: p.Train, paths: PathPolicy) -> list[PlannedJob[TrainSpec]]:
        if not request.config:
            raise BadSettingError("train needs a config", hint="name a training TOML in `config`")
        config = paths.check(request.config, "the training config")
        if not config.is_file():
            raise BadSettingError(
                f"the training config {config} is not a file",
                hint="name a training TOML (see resources/configs/) or a GenIR run's genir.toml",
            )
        if request.task and not TASK_NAME.fullmatch(request.task):
            raise BadSettingError(
                f"{request.task!r} is not a training task name",
                hint='leave task empty, or name one such as "genir-prompts"',
            )
        if request.max_steps < 0:
            raise BadSettingError("max_steps must be 0 (the config's) or more")
        config = Path(os.path.abspath(config))
        for path, what in _named_paths(config):
            paths.check(str(path), what)
        spec = TrainSpec(config, request.task, request.resume, request.max_steps)
        return [PlannedJob(label=str(config), spec=spec)]

    def run(self, spec: TrainSpec, context: JobContext) -> p.Result:
        started = time.perf_counter()
        argv = trainer_command(
            spec.config, task=spec.task, resume=spec.resume, max_steps=spec.max_steps
        )
        exported = run_trainer_child(argv, context, "train")
        return p.Result(
            request_id=context.request_id,
            job_id=context.job_id,
            input=str(spec.config),
            output=str(exported),
            seconds=round(time.perf_counter() - started, 4),
        )


def _named_paths(config: Path) -> list[tuple[Path, str]]:
    """The folders a config makes the trainer read or write, with what each is."""
    if config.name == "genir.toml":
        from engine.genir.run_folder import load_run

        run = load_run(config.parent)
        return [
            (config.parent, "the run folder"),
            (Path(run.images), "the run's images folder"),
            (Path(run.base_model), "the run's base model"),
        ]
    try:
        raw = tomllib.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise BadSettingError(
            f"the training config {config} cannot be read: {error}",
            hint="check that it is a TOML file (see resources/configs/)",
        ) from None
    named: list[tuple[Path, str]] = []
    for table, key, what in TRAINER_PATHS:
        value = _field(raw, table, key)
        if isinstance(value, str):
            named.append((Path(value), what))
    model = _field(raw, "dreamclear", "model")
    if isinstance(model, str) and model not in MODEL_NAMES:
        named.append((Path(model), "the DreamClear model folder"))
    if _field(raw, "checkpointing", "output_dir") is None:  # the trainer's default
        named.append((Path("runs/train"), "the training output folder"))
    return named


def _field(raw: dict[str, Any], table: str, key: str) -> Any:
    section = raw.get(table)
    return section.get(key) if isinstance(section, dict) else None
