"""`dreamclear train RUN/genir.toml`: a GenIR run's fine-tuning as a training config.

A GenIR run config (engine.genir.config) is recognised by its name or by its `images` and
`base_model` fields. Its `finetune` section becomes a TrainConfig of task genir-prompts:
checkpoints in RUN/finetune/train (so `--resume latest` works as for any run), the export in
RUN/finetune/ (the files generation reads).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from engine.genir.config import load_config as load_genir_config
from engine.genir.finetune_output import output_folder
from engine.typed_config import read_toml
from trainer import checkpoints
from trainer.config import (
    CheckpointConfig,
    ConfigError,
    DataConfig,
    GenIRPromptsConfig,
    OptimisationConfig,
    TrainConfig,
    ValidationConfig,
    apply_overrides,
    load_config,
)

GENIR_CONFIG_NAME = "genir.toml"
TRAIN_FOLDER = "train"


def is_genir_run_config(path: Path) -> bool:
    """Whether `path` is a GenIR run's config rather than a training config."""
    path = Path(path)
    if path.name == GENIR_CONFIG_NAME:
        return True
    if not path.is_file():
        return False
    raw = read_toml(path, "config", hint="check the path")
    return "images" in raw and "base_model" in raw and "task" not in raw


def train_config_for_run(path: Path, **overrides: Any) -> TrainConfig:
    """The genir-prompts TrainConfig of the run whose config is `path`; `overrides` as in
    trainer.config.load_config ("checkpointing.output_dir", "max_steps", ...)."""
    path = Path(path)
    genir = load_genir_config(path)
    run = path.parent.resolve()
    finetune = genir.finetune
    section = GenIRPromptsConfig(
        **{f.name: getattr(finetune, f.name) for f in dataclasses.fields(finetune)},
        run=run,
        base_model=Path(genir.base_model).resolve(),
    )
    config = TrainConfig(
        task="genir-prompts",
        max_steps=finetune.steps,
        seed=genir.seed,
        mixed_precision=finetune.mixed_precision,
        gradient_accumulation_steps=finetune.gradient_accumulation,
        data=DataConfig(batch_size=finetune.batch_size, samples_per_epoch=finetune.batch_size),
        optimisation=OptimisationConfig(learning_rate=finetune.cross_attention_learning_rate),
        checkpointing=CheckpointConfig(
            output_dir=output_folder(run) / TRAIN_FOLDER,
            checkpoint_every=finetune.checkpoint_every,
            export_dir=output_folder(run),
        ),
        validation=ValidationConfig(every=0),
        genir_prompts=section,
    )
    return apply_overrides(config, **overrides)


RESUMABLE_CHANGES = ("steps", "checkpoint_every", "sample_images", "run")
"""Fine-tuning settings a resumed run may change (training longer, saving more often, other
sample images) and the run folder's path (it may have been moved)."""


def check_resume_settings(config: TrainConfig, resume: str) -> None:
    """Refuse to resume (`resume`: "latest" or a checkpoint folder) from a checkpoint made
    under other fine-tuning settings, naming the first that differs (its weights would not
    fit, or would mean something else)."""
    folder = checkpoints.resolve_checkpoint(config.checkpointing.output_dir, resume)
    if folder is None:
        return
    saved = load_config(folder / checkpoints.CONFIG_FILE).genir_prompts
    current = config.genir_prompts
    for f in dataclasses.fields(current):
        if f.name in RESUMABLE_CHANGES:
            continue
        if getattr(saved, f.name) != getattr(current, f.name):
            raise ConfigError(
                f"finetune.{f.name} is {getattr(current, f.name)!r}, but the run in "
                f"{config.checkpointing.output_dir} was trained with "
                f"{getattr(saved, f.name)!r}.",
                hint=f"set it back to continue, or delete {config.checkpointing.output_dir} "
                "to start over",
            )
