"""Training tasks: each builds its models, data, loss, validation and export for `trainer.loop`."""

from __future__ import annotations

from trainer.config import TrainConfig
from trainer.tasks.base import Task


def build_task(config: TrainConfig) -> Task:
    # Imported here: the dreamclear task pulls in diffusers' transformer stack.
    if config.task == "starter":
        from trainer.tasks.starter import StarterTask

        return StarterTask(config)
    if config.task == "starter-gate":
        from trainer.tasks.starter_gate import StarterGateTask

        return StarterGateTask(config)
    if config.task == "genir-prompts":
        from trainer.tasks.genir_prompts import GenIRPromptsTask

        return GenIRPromptsTask(config)
    if config.task == "quality-classifier":
        from trainer.tasks.quality_classifier import QualityClassifierTask

        return QualityClassifierTask(config)
    from trainer.tasks.dreamclear import DreamClearTask

    return DreamClearTask(config)
