"""Stage 2's training data: the pairs of stage 1 under the dual prompts.

Each pair gives two samples: its positive image with "<pos tokens>, caption" and its negative
image with "<neg tokens>, caption", so the model learns that the positive tokens mean the
positive images and the negative tokens the negative ones. Each image is resized (shorter side)
to the training resolution and cropped at a random place, and SDXL's size conditioning says
so (original size, crop top-left, target size). Every sample is a pure function of (seed,
epoch, index), so a resumed run that skips the batches it saw continues at the same sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from engine.errors import BadSettingError
from engine.genir import pairs_stage
from engine.genir.dual_prompts import size_conditioning, tokenize


@dataclass(frozen=True)
class PairSample:
    image: Path
    caption: str
    prompt: str
    positive: bool


def dual_prompt(tokens: list[str], caption: str) -> str:
    """The contract's prompt: the tokens, then the scene (or caption) after a comma."""
    return " ".join(tokens) + ", " + caption


def pair_samples(
    run: Path, positive_tokens: list[str], negative_tokens: list[str]
) -> list[PairSample]:
    """Both samples of every complete pair in RUN/pairs, sorted by name."""
    folder = pairs_stage.stage_folder(run)
    captions = sorted((folder / "caption").glob("*.txt")) if folder.is_dir() else []
    samples = []
    for caption_file in captions:
        positive = folder / "positive" / f"{caption_file.stem}.png"
        negative = folder / "negative" / f"{caption_file.stem}.png"
        if not (positive.is_file() and negative.is_file()):
            continue
        caption = caption_file.read_text(encoding="utf-8").strip()
        samples.append(PairSample(positive, caption, dual_prompt(positive_tokens, caption), True))
        samples.append(PairSample(negative, caption, dual_prompt(negative_tokens, caption), False))
    if not samples:
        raise BadSettingError(
            f"{folder} holds no pairs to fine-tune on",
            hint="run `dreamclear genir pairs RUN` first",
        )
    return samples


class DualPromptPairs(Dataset):
    """Samples {"pixels" (3, R, R) in [-1, 1], "input_ids" and "input_ids_2" (77,),
    "time_ids" (6,), "positive" ()} in an order shuffled per epoch."""

    def __init__(
        self, samples: list[PairSample], tokenizers: tuple[Any, Any], resolution: int, seed: int
    ) -> None:
        self.samples = samples
        self.resolution = resolution
        self.seed = seed
        self.epoch = 0
        self.input_ids = tokenize(tokenizers[0], [s.prompt for s in samples])
        self.input_ids_2 = tokenize(tokenizers[1], [s.prompt for s in samples])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.samples))
        chosen = int(order[index])
        rng = np.random.default_rng([self.seed, self.epoch, index])
        sample = self.samples[chosen]
        with Image.open(sample.image) as image:
            image = image.convert("RGB")
            original = (image.height, image.width)
            pixels, top_left = resize_and_crop(image, self.resolution, rng)
        return {
            "pixels": pixels,
            "input_ids": self.input_ids[chosen],
            "input_ids_2": self.input_ids_2[chosen],
            "time_ids": size_conditioning(original, top_left, (self.resolution,) * 2),
            "positive": torch.tensor(sample.positive),
        }


def resize_and_crop(
    image: Image.Image, size: int, rng: np.random.Generator
) -> tuple[torch.Tensor, tuple[int, int]]:
    """The shorter side resized to `size` (bicubic), a random `size` square cut from it:
    (3, size, size) in [-1, 1] and the crop's top-left (y, x) in the resized image."""
    scale = size / min(image.size)
    width, height = max(size, round(image.width * scale)), max(size, round(image.height * scale))
    if (width, height) != image.size:
        image = image.resize((width, height), Image.Resampling.BICUBIC)
    top = int(rng.integers(0, height - size + 1))
    left = int(rng.integers(0, width - size + 1))
    array = np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.float32)
    pixels = torch.from_numpy(array).permute(2, 0, 1) / 127.5 - 1.0
    return pixels, (top, left)
