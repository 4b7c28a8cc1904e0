"""GenIR's binary quality classifier: P(an image looks like a positive, not an SDEdit negative).

The paper keeps generated images by the probability a binary classifier, trained on stage 1's
positives and negatives, gives them; it describes no architecture. Ours is a small CNN trained
from scratch (no downloaded weights) on square crops at the image's own resolution, because
what separates a negative (blur, smearing, noise) lives at the pixel scale and would vanish if
the image were shrunk. An image's probability is the mean over a fixed grid of crops.

Files (RUN/classifier/, written by the trainer task `quality-classifier`):

    quality_classifier.safetensors   the weights (float32)
    quality_classifier.json          {"format", "kind", "width", "crop", "grid",
                                      "validation": {"accuracy", ...}, "settings": {...}}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from engine.errors import BadSettingError, CheckpointError
from engine.imaging.atomic import atomic_write

FOLDER = "classifier"
WEIGHTS = "quality_classifier.safetensors"
INFO = "quality_classifier.json"
FORMAT = 1
KIND = "genir.quality_classifier"
TRAIN_COMMAND = "dreamclear train {run}/genir.toml --task quality-classifier"


@dataclass(frozen=True)
class ClassifierShape:
    """What builds the model and prepares its input (stored in the JSON file)."""

    width: int = 32
    """Channels of the first stage (doubled at each stage, at most 8x)."""
    crop: int = 128
    """Side of the square crops the model sees, in image pixels."""
    grid: int = 3
    """Crops per side of the inference grid (grid x grid crops, probabilities averaged)."""


class QualityClassifier(nn.Module):
    """Four strided conv stages, global average pooling, one logit."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        channels = [width * min(2**i, 8) for i in range(4)]
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.SiLU()]
        previous = width
        for out in channels:
            layers += [
                nn.Conv2d(previous, out, 3, stride=2, padding=1),
                nn.GroupNorm(min(8, out), out),
                nn.SiLU(),
                nn.Conv2d(out, out, 3, padding=1),
                nn.GroupNorm(min(8, out), out),
                nn.SiLU(),
            ]
            previous = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(previous, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, 3, S, S) in [0, 1] -> logits (B,) of "positive"."""
        # 1. features at 1/16 of the crop
        features = self.features(images * 2 - 1)
        # 2. pooled, one logit
        return self.head(features.mean(dim=(2, 3))).squeeze(1)


# ----------------------------------------------------------------------------- input


def image_pixels(image: Image.Image, crop: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB of `image`, enlarged (bicubic) when its shorter side is below
    `crop`, so every crop fits; training and filtering prepare images alike."""
    image = image.convert("RGB")
    short = min(image.size)
    if short < crop:
        size = (
            max(crop, round(image.width * crop / short)),
            max(crop, round(image.height * crop / short)),
        )
        image = image.resize(size, Image.Resampling.BICUBIC)
    return np.asarray(image)


def to_batch(crops: list[np.ndarray]) -> torch.Tensor:
    """(N, 3, S, S) float32 in [0, 1] from N (S, S, 3) uint8 crops."""
    stacked = np.ascontiguousarray(np.stack(crops))
    return torch.from_numpy(stacked).permute(0, 3, 1, 2).float() / 255.0


def grid_crops(pixels: np.ndarray, crop: int, grid: int) -> list[np.ndarray]:
    """grid x grid crops of side `crop`, corners included, spread evenly over the image."""
    height, width = pixels.shape[:2]
    tops = np.linspace(0, height - crop, grid).round().astype(int)
    lefts = np.linspace(0, width - crop, grid).round().astype(int)
    return [pixels[t : t + crop, s : s + crop] for t in tops for s in lefts]


def random_crops(
    pixels: np.ndarray, crop: int, count: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """`count` random crops of side `crop`, each flipped left-right with probability 1/2."""
    height, width = pixels.shape[:2]
    crops = []
    for _ in range(count):
        top, left = int(rng.integers(height - crop + 1)), int(rng.integers(width - crop + 1))
        piece = pixels[top : top + crop, left : left + crop]
        crops.append(piece[:, ::-1] if rng.random() < 0.5 else piece)
    return crops


@torch.no_grad()
def predict(model: QualityClassifier, shape: ClassifierShape, image: Image.Image) -> float:
    """P(positive) of `image`: the mean of its grid crops' probabilities."""
    pixels = image_pixels(image, shape.crop)
    device = next(model.parameters()).device
    batch = to_batch(grid_crops(pixels, shape.crop, shape.grid)).to(device)
    return float(torch.sigmoid(model(batch)).mean())


# ----------------------------------------------------------------------------- files


def classifier_folder(run: Path) -> Path:
    return Path(run) / FOLDER


def save_classifier(
    folder: Path,
    model: QualityClassifier,
    shape: ClassifierShape,
    *,
    validation: Mapping[str, float],
    settings: Mapping[str, Any],
) -> Path:
    """Write the weights, then the JSON (which marks the pair complete); returns the weights."""
    from safetensors.torch import save

    folder.mkdir(parents=True, exist_ok=True)
    state = {name: t.detach().float().cpu().contiguous() for name, t in model.state_dict().items()}
    weights = folder / WEIGHTS
    data = save(state)
    atomic_write(weights, lambda file: file.write(data), overwrite=True)
    info = {
        "format": FORMAT,
        "kind": KIND,
        **asdict(shape),
        "validation": dict(validation),
        "settings": dict(settings),
        "weights_sha256": hashlib.sha256(data).hexdigest(),
    }
    text = json.dumps(info, indent=2) + "\n"
    atomic_write(folder / INFO, lambda file: file.write(text.encode()), overwrite=True)
    return weights


@dataclass(frozen=True)
class LoadedClassifier:
    model: QualityClassifier
    shape: ClassifierShape
    info: dict[str, Any]
    """The JSON file's contents (validation accuracy, training settings, weights' sha256)."""

    def probability(self, image: Image.Image) -> float:
        return predict(self.model, self.shape, image)

    def settings(self) -> dict[str, int]:
        """What its probabilities depend on besides the weights."""
        return asdict(self.shape)


def load_classifier(run: Path, device: torch.device | str = "cpu") -> LoadedClassifier:
    """The run's trained classifier, in eval mode; a clear error naming the train command when
    there is none."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = classifier_folder(run)
    info_path, weights = folder / INFO, folder / WEIGHTS
    if not (info_path.is_file() and weights.is_file()):
        raise BadSettingError(
            f"{run} has no trained quality classifier ({folder / WEIGHTS} and {INFO})",
            hint=f"train it first: {TRAIN_COMMAND.format(run=run)}",
        )
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        if info.get("kind") != KIND or info.get("format") != FORMAT:
            raise ValueError(f"kind {info.get('kind')!r}, format {info.get('format')!r}")
        shape = ClassifierShape(int(info["width"]), int(info["crop"]), int(info["grid"]))
        model = QualityClassifier(shape.width)
        model.load_state_dict(load_file(weights))
    except (ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as error:
        raise CheckpointError(
            f"{folder} does not hold a quality classifier this version reads ({error})",
            hint=f"train it again: {TRAIN_COMMAND.format(run=run)}",
        ) from None
    return LoadedClassifier(model.to(device).eval(), shape, info)


def weights_sha256(run: Path) -> str:
    """The sha256 of the run's classifier weights (what the filter's scores depend on)."""
    with open(classifier_folder(run) / WEIGHTS, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()
