"""The quality-classifier task: GenIR's binary classifier, positives (1) vs SDEdit negatives (0).

Run as `dreamclear train RUN/genir.toml --task quality-classifier`: `genir_train_config` turns
the run's config (its `filter.classifier_*` settings) into a training config whose checkpoints
go to RUN/classifier/train. The pairs of RUN/pairs are split once, by a seeded draw: a share
(`filter.classifier_holdout`, at least one pair) is held out, both images of each, and the
validation accuracy is measured on them the way the filter scores images (the mean over the
grid of crops). The export writes RUN/classifier/quality_classifier.safetensors and its JSON,
which records that accuracy (engine.genir.quality_classifier).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import Dataset

from engine.genir import pairs_stage
from engine.genir.config import GenIRConfig
from engine.genir.config import load_config as load_genir_config
from engine.genir.quality_classifier import (
    ClassifierShape,
    QualityClassifier,
    classifier_folder,
    image_pixels,
    predict,
    random_crops,
    save_classifier,
    to_batch,
)
from trainer import checkpoints
from trainer.config import (
    CheckpointConfig,
    ConfigError,
    DataConfig,
    OptimisationConfig,
    QualityClassifierConfig,
    TrainConfig,
    ValidationConfig,
    apply_overrides,
)
from trainer.tasks.base import Task

logger = logging.getLogger(__name__)

TASK = "quality-classifier"
CROPS_PER_IMAGE = 4
"""Random crops taken from each decoded training image (decoding a 1024 px PNG costs more
than the crops' forward pass). Our choice."""
SPLIT_SEED = 0x9E17
"""Mixed into the run seed for the held-out draw, so it differs from every other draw."""


def genir_train_config(path: Path | str, **overrides: Any) -> TrainConfig:
    """The training config of a GenIR run's classifier from its genir.toml at `path`;
    `overrides` as in `trainer.config.load_config` (max_steps, "checkpointing.output_dir")."""
    genir = load_genir_config(path)
    run = Path(path).parent
    pairs = pair_names(run)
    if len(pairs) < 2:
        raise ConfigError(
            f"{run} has {len(pairs)} complete pairs; the quality classifier needs at least 2 "
            "(one is held out to measure its accuracy)",
            hint=f"make them first: dreamclear genir pairs {run}",
        )
    settings = genir.filter
    config = TrainConfig(
        task=TASK,
        max_steps=settings.classifier_steps,
        seed=genir.seed,
        data=DataConfig(
            photos=pairs_stage.stage_folder(run) / "positive",
            batch_size=settings.classifier_batch_size,
            samples_per_epoch=settings.classifier_batch_size,
        ),
        optimisation=OptimisationConfig(
            optimizer="adamw", learning_rate=settings.classifier_learning_rate, weight_decay=1e-4
        ),
        checkpointing=CheckpointConfig(
            output_dir=classifier_folder(run) / "train",
            checkpoint_every=500,
            keep_last=1,
            export_dir=classifier_folder(run),
        ),
        validation=ValidationConfig(every=0),
        quality_classifier=QualityClassifierConfig(run=run),
    )
    return apply_overrides(config, **overrides)


def pair_names(run: Path) -> list[str]:
    """Names of the pairs whose positive and negative images are both in RUN/pairs, sorted."""
    folder = pairs_stage.stage_folder(run)
    if not (folder / "positive").is_dir():
        return []
    return sorted(
        path.stem
        for path in (folder / "positive").glob("*.png")
        if (folder / "negative" / path.name).is_file()
    )


def split_pairs(names: list[str], share: float, seed: int) -> tuple[list[str], list[str]]:
    """(training, held-out) pair names: a seeded draw of round(share * n) pairs, at least
    one, held out; at least one left to train on."""
    count = min(len(names) - 1, max(1, round(share * len(names))))
    order = np.random.default_rng([seed, SPLIT_SEED]).permutation(len(names))
    held = {names[i] for i in order[:count]}
    return [n for n in names if n not in held], [n for n in names if n in held]


class PairImages(Dataset):
    """Samples {"images" (K, 3, S, S) in [0, 1], "labels" (K,)}: K random crops of one pair
    image, labelled 1 for a positive and 0 for a negative. Each epoch visits every image once
    in a seeded order (the length is rounded up to whole batches); every sample is a function
    of (seed, epoch, index), so a resumed run sees the same data."""

    def __init__(
        self, images: list[tuple[Path, int]], *, crop: int, seed: int, batch_size: int
    ) -> None:
        self.images = images
        self.crop = crop
        self.seed = seed
        self.length = math.ceil(len(images) / batch_size) * batch_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.images))
        path, label = self.images[int(order[index % len(self.images)])]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        with Image.open(path) as image:
            pixels = image_pixels(image, self.crop)
        crops = random_crops(pixels, self.crop, CROPS_PER_IMAGE, rng)
        return {"images": to_batch(crops), "labels": torch.full((len(crops),), float(label))}


def collate_pair_images(samples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {key: torch.cat([s[key] for s in samples]) for key in ("images", "labels")}


class QualityClassifierTask(Task):
    def __init__(self, config: TrainConfig) -> None:
        super().__init__(config)
        run = config.quality_classifier.run
        assert run is not None  # validate() checks it
        self.run = run
        self.genir: GenIRConfig = load_genir_config(run / "genir.toml")
        settings = self.genir.filter
        self.shape = ClassifierShape(
            settings.classifier_width, settings.classifier_crop, settings.classifier_grid
        )
        self.train_pairs, self.held_out = split_pairs(
            pair_names(run), settings.classifier_holdout, config.seed
        )
        self.validation: dict[str, float] | None = None

    def _images(self, names: list[str]) -> list[tuple[Path, int]]:
        folder = pairs_stage.stage_folder(self.run)
        return [(folder / "positive" / f"{n}.png", 1) for n in names] + [
            (folder / "negative" / f"{n}.png", 0) for n in names
        ]

    def build(self, device: torch.device) -> list[nn.Module]:
        return [QualityClassifier(self.shape.width)]

    def train_dataset(self) -> PairImages:
        return PairImages(
            self._images(self.train_pairs),
            crop=self.shape.crop,
            seed=self.config.seed,
            batch_size=self.config.data.batch_size,
        )

    def collate(self, samples: list[dict]) -> dict[str, torch.Tensor]:
        return collate_pair_images(samples)

    def loss(self, models, batch, generator):
        logits = models[0](batch["images"])
        labels = batch["labels"]
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        accuracy = float(((logits > 0).float() == labels).float().mean())
        return loss, {"accuracy": accuracy}

    def validate(self, models, folder: Path) -> dict[str, float]:
        """Accuracy (at probability 0.5) on the held-out pairs' images, scored like the filter
        scores a generated image, and the mean probability of each kind."""
        model = models[0]
        scores: dict[int, list[float]] = {0: [], 1: []}
        for path, label in self._images(self.held_out):
            with Image.open(path) as image:
                scores[label].append(predict(model, self.shape, image))
        correct = sum(p >= 0.5 for p in scores[1]) + sum(p < 0.5 for p in scores[0])
        self.validation = {
            "accuracy": correct / (len(scores[0]) + len(scores[1])),
            "positive_mean": float(np.mean(scores[1])),
            "negative_mean": float(np.mean(scores[0])),
            "held_out_pairs": float(len(self.held_out)),
        }
        return self.validation

    def export(self, output_dir: Path, target: Path) -> Path:
        """The last checkpoint's weights -> `target` (RUN/classifier, where the filter reads
        them: `checkpointing.export_dir`), with the validation numbers and training settings."""
        folder = checkpoints.export_source(Path(output_dir))
        model = QualityClassifier(self.shape.width)
        model.load_state_dict(checkpoints.unwrapped_state(load_file(folder / "model.safetensors")))
        model.eval()
        if self.validation is None:
            with torch.no_grad():
                self.validate([model], Path(output_dir))
        settings = self.genir.filter
        weights = save_classifier(
            Path(target),
            model,
            self.shape,
            validation=self.validation or {},
            settings={
                "steps": checkpoints.read_marker(folder)["step"],
                "batch_size": self.config.data.batch_size,
                "learning_rate": self.config.optimisation.learning_rate,
                "holdout": settings.classifier_holdout,
                "seed": self.config.seed,
                "train_pairs": len(self.train_pairs),
                "held_out": self.held_out,
                "crops_per_image": CROPS_PER_IMAGE,
            },
        )
        logger.info("Quality classifier written to %s (%s).", weights, self.validation)
        return weights.parent
