"""What a task gives the generic loop: models, data, a loss, validation and an export."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from trainer.config import TrainConfig
from trainer.data import collate_crops


class Task(ABC):
    """One kind of training run. The loop calls `build` once (after seeding), then the rest."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config

    @abstractmethod
    def build(self, device: torch.device) -> list[nn.Module]:
        """Create every model; frozen ones go to `device` here. Returns the modules that train,
        in a fixed order (accelerate saves them as model.safetensors, model_1.safetensors...)."""

    def parameter_groups(self, models: list[nn.Module]) -> list[dict]:
        """The optimiser's parameter groups: by default one, every trainable parameter at the
        config's learning rate. A group may set its own "lr"."""
        return [{"params": [p for model in models for p in model.parameters() if p.requires_grad]}]

    def after_optimizer_step(self, models: list[nn.Module], step: int) -> None:
        """Called after every optimiser step, `step` being the number of steps done before it
        (e.g. to update weight averages); nothing by default."""
        return None

    @abstractmethod
    def train_dataset(self) -> Dataset:
        """The training data (its `set_epoch` is called by the loop)."""

    def collate(self, samples: list[dict]) -> dict[str, torch.Tensor]:
        """A batch of samples: by default, crops cut to the batch's smallest (trainer.data)."""
        return collate_crops(samples, scale=self.config.data.scale)

    @abstractmethod
    def loss(
        self, models: list[nn.Module], batch: dict[str, torch.Tensor], generator: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The scalar loss of a batch (on the models as prepared) and numbers to log. All
        randomness comes from `generator`, so a resumed run draws the same numbers."""

    @abstractmethod
    def validate(self, models: list[nn.Module], folder: Path) -> dict[str, float]:
        """Metrics on the held-out photos (models unwrapped, in eval mode, no grad); sample
        images go into `folder`."""

    @abstractmethod
    def export(self, output_dir: Path, target: Path) -> Path:
        """Write the final weights of the run in `output_dir` to `target`, in a loadable layout."""
