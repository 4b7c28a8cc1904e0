"""One-stage degradations: blur, downscale, noise, JPEG, once, as a photo meets them day to day.

The published second-order pipeline (`second_order.degrade`) models heavy, compounded damage.
Most photos a user brings have less: a phone's soft lens, a downscale, sensor noise and one
JPEG save. A restorer that learns only the heavy case smooths every input as if it were
heavily damaged, so the starter also learns from this single stage, drawn from ranges that
run from barely visible to moderate (`MILD_TO_MODERATE`).

`single_stage` applies fixed parameters (`bench quality`'s mild and moderate levels use it);
`random_single_stage` draws them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.degradation import ops
from engine.degradation.second_order import check_image


@dataclass(frozen=True)
class SingleStageParams:
    blur_sigma: float
    """Isotropic gaussian blur in HQ pixels (0: none)."""
    resize_mode: ops.ResizeMode
    noise_sigma: float
    """Gaussian noise in 8-bit levels (0: none)."""
    gray_noise: bool
    jpeg_quality: int | None
    """None: no JPEG save."""


def single_stage(
    hq: torch.Tensor, params: SingleStageParams, *, scale: int, generator: torch.Generator
) -> torch.Tensor:
    """(3, H, W) in [0, 1] -> (3, H/scale, W/scale) on the 8-bit grid: blur, resize, noise,
    JPEG, in that order (a camera's optics, the downscale, the sensor, the save)."""
    check_image(hq, scale)
    image = ops.gaussian_blur(hq, params.blur_sigma)
    size = (hq.shape[-2] // scale, hq.shape[-1] // scale)
    image = ops.resize(image, size, params.resize_mode).clamp(0, 1)
    if params.noise_sigma > 0:
        noise = ops.gaussian_noise(
            image, params.noise_sigma, gray=params.gray_noise, generator=generator
        )
        image = (image + noise).clamp(0, 1)
    if params.jpeg_quality is not None:
        image = ops.jpeg(image, params.jpeg_quality)
    return ops.quantise(image)


@dataclass(frozen=True)
class SingleStageRanges:
    """Where `random_single_stage` draws its parameters from (uniform within each range)."""

    blur_prob: float = 0.8
    blur_sigma: tuple[float, float] = (0.3, 1.6)
    noise_prob: float = 0.8
    noise_sigma: tuple[float, float] = (0.5, 8.0)
    gray_noise_prob: float = 0.4
    jpeg_prob: float = 0.85
    jpeg_quality: tuple[int, int] = (55, 95)


MILD_TO_MODERATE = SingleStageRanges()
"""From barely visible to a phone photo shared twice; `bench quality`'s mild (blur 0.8, noise
2, JPEG 90) and moderate (blur 1.2, noise 5, JPEG 70) levels lie inside, so do milder and
stronger ones (the bench's fixed levels are not what the ranges were tuned on)."""


def draw_single_stage(
    rng: np.random.Generator, ranges: SingleStageRanges = MILD_TO_MODERATE
) -> SingleStageParams:
    blur = float(rng.uniform(*ranges.blur_sigma)) if rng.random() < ranges.blur_prob else 0.0
    mode = ops.RESIZE_MODES[int(rng.integers(len(ops.RESIZE_MODES)))]
    noise = float(rng.uniform(*ranges.noise_sigma)) if rng.random() < ranges.noise_prob else 0.0
    gray = bool(rng.random() < ranges.gray_noise_prob)
    quality = None
    if rng.random() < ranges.jpeg_prob:
        quality = int(rng.integers(ranges.jpeg_quality[0], ranges.jpeg_quality[1] + 1))
    return SingleStageParams(blur, mode, noise, gray, quality)


def random_single_stage(
    hq: torch.Tensor, *, scale: int, seed: int, ranges: SingleStageRanges = MILD_TO_MODERATE
) -> torch.Tensor:
    """`single_stage` with parameters drawn from `ranges`; the same seed gives the same image."""
    rng = np.random.default_rng(seed)
    params = draw_single_stage(rng, ranges)
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    return single_stage(hq, params, scale=scale, generator=generator)
