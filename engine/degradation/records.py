"""What a degradation made and did, and the units its strengths are measured in.

Every run records what it did (`DegradationParams`, `SpatialParams`). `strengths()` squeezes
the record into four numbers in [0, 1], the same units as the spatial maps:

- blur:  extra blur in LQ pixels over `BLUR_SIGMA_MAX`; each kernel's `excess_sigma`
  (kernels.py) is converted to LQ pixels and the stages add in quadrature.
- noise: std of the added noise in 8-bit units, as it reaches the LQ grid, over
  `NOISE_SIGMA_MAX`; first-stage noise is attenuated by later downscaling (factor
  new_size / old_size when below 1, as averaging would), JPEG's denoising is ignored.
- jpeg:  (95 - q) / (95 - 30) for the lowest quality q applied, 0 without JPEG.
- scale: log(d) / log(`DOWNSCALE_MAX`), d = HQ size / smallest size the image went through
  (so at least the output scale: 0.5 for a plain x4).

`check_image` is the input every degradation takes: (3, H, W) float in [0, 1], H and W
multiples of the scale; any device works (JPEG and poisson noise run on the CPU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch

from engine.degradation import ops
from engine.degradation.settings import KernelType
from engine.errors import BadInputError, BadSettingError

STRENGTH_CHANNELS = ("blur", "noise", "jpeg", "scale")
"""Order of the strengths in `strengths()` and of the spatial strength maps."""

BLUR_SIGMA_MAX = 2.0
"""Extra blur (LQ pixels, gaussian-equivalent std) that counts as blur strength 1."""

NOISE_SIGMA_MAX = 30.0
"""Noise std (8-bit units) that counts as noise strength 1."""

JPEG_QUALITY_RANGE = (30, 95)
"""JPEG quality of jpeg strength 1 and 0."""

DOWNSCALE_MAX = 16.0
"""Overall downscale factor that counts as scale strength 1 (factor 1 is strength 0)."""


@dataclass(frozen=True)
class BlurParams:
    """One kernel applied; lengths in pixels of the image it was applied to."""

    kind: KernelType | Literal["sinc"]
    size: int
    excess_sigma: float
    """How much it blurs (kernels.excess_sigma)."""
    sigma_x: float | None = None
    sigma_y: float | None = None
    theta: float | None = None
    beta: float | None = None
    cutoff: float | None = None
    """Sinc cutoff in radians per pixel (pi = Nyquist)."""


@dataclass(frozen=True)
class ResizeParams:
    kind: Literal["up", "down", "keep"]
    factor: float
    """Relative to the stage's base size (HQ size, then LQ size in the second stage)."""
    mode: ops.ResizeMode
    size: tuple[int, int]
    """(height, width) after resizing."""


@dataclass(frozen=True)
class NoiseParams:
    kind: Literal["gaussian", "poisson"]
    level: float
    """Gaussian std in 8-bit units, or the poisson scale."""
    gray: bool
    std: float
    """Measured std of the noise added, in 8-bit units (comparable across kinds)."""


@dataclass(frozen=True)
class StageParams:
    blur: BlurParams | None
    resize: ResizeParams
    noise: NoiseParams | None
    jpeg_quality: int | None
    """The first stage's JPEG, or the final JPEG for the second stage."""


@dataclass(frozen=True)
class DegradationParams:
    """Everything `degrade` chose, in the order it was applied."""

    scale: int
    first: StageParams
    second: StageParams
    final_sinc: BlurParams | None
    """Sinc kernel applied at LQ size with the final resize (None: none)."""
    final_resize_mode: ops.ResizeMode
    final_order: Literal["resize_then_jpeg", "jpeg_then_resize"]

    def strengths(self) -> dict[str, float]:
        """Blur, noise, jpeg and scale strengths in [0, 1] (normalisation: module doc)."""
        s1, s2 = self.first.resize.factor, self.second.resize.factor
        # Pixels of each blur, converted to LQ pixels.
        blur_lq = [
            (self.first.blur, 1.0 / self.scale),
            (self.second.blur, 1.0 / (s1 * self.scale)),
            (self.final_sinc, 1.0),
        ]
        blur = math.sqrt(sum((b.excess_sigma * k) ** 2 for b, k in blur_lq if b is not None))
        # Noise std as it reaches the LQ grid: downscaling averages it away, upscaling does not.
        after_first = min(1.0, s2 / (self.scale * s1)) * min(1.0, 1.0 / s2)
        noise_lq = [(self.first.noise, after_first), (self.second.noise, min(1.0, 1.0 / s2))]
        noise = math.sqrt(sum((n.std * k) ** 2 for n, k in noise_lq if n is not None))
        qualities = [
            q for q in (self.first.jpeg_quality, self.second.jpeg_quality) if q is not None
        ]
        downscale = 1.0 / min(1.0, s1, s2 / self.scale, 1.0 / self.scale)
        return {
            "blur": clamp_unit(blur / BLUR_SIGMA_MAX),
            "noise": clamp_unit(noise / NOISE_SIGMA_MAX),
            "jpeg": clamp_unit(jpeg_quality_strength(min(qualities))) if qualities else 0.0,
            "scale": clamp_unit(math.log(downscale) / math.log(DOWNSCALE_MAX)),
        }


@dataclass(frozen=True)
class SpatialParams:
    """What `degrade_with_masks` applied: per-pixel blends between fixed levels."""

    scale: int
    token_px: int
    downscales: tuple[float, ...]
    """Overall downscale factor of each scale level."""
    blur_sigmas: tuple[float, ...]
    """Gaussian std (LQ pixels) of each blur level."""
    jpeg_qualities: tuple[int, ...]
    """Quality of each JPEG level."""
    noise_gray: bool
    mean_strengths: dict[str, float] = field(default_factory=dict)

    def strengths(self) -> dict[str, float]:
        """The image-wide mean of each strength map."""
        return dict(self.mean_strengths)


@dataclass(frozen=True)
class Degraded:
    lq: torch.Tensor
    """(3, H / scale, W / scale) float in [0, 1], on the 8-bit grid."""
    params: DegradationParams | SpatialParams
    strength_maps: torch.Tensor | None = None
    """(4, H / token_px, W / token_px) in [0, 1], channels `STRENGTH_CHANNELS` (spatial only)."""


def clamp_unit(value: float) -> float:
    return float(min(max(value, 0.0), 1.0))


def jpeg_quality_strength(quality: float) -> float:
    low, high = JPEG_QUALITY_RANGE
    return (high - quality) / (high - low)


def min_scale_strength(scale: int) -> float:
    """The scale strength of a plain downscale by `scale` (no image can be below it)."""
    return clamp_unit(math.log(scale) / math.log(DOWNSCALE_MAX))


def check_image(hq: torch.Tensor, scale: int) -> None:
    if not isinstance(scale, int) or scale < 1:
        raise BadSettingError(f"scale must be a positive int, got {scale!r}", "use 1, 2 or 4")
    if not isinstance(hq, torch.Tensor) or hq.ndim != 3 or hq.shape[0] != 3:
        shape = tuple(hq.shape) if isinstance(hq, torch.Tensor) else type(hq).__name__
        raise BadInputError(
            f"expected an RGB image tensor of shape (3, H, W), got {shape}",
            "pass one image at a time, channels first (batch items one by one)",
        )
    if not hq.is_floating_point():
        raise BadInputError(
            f"expected a float image, got {hq.dtype}", "convert with image.float() / 255"
        )
    height, width = hq.shape[-2:]
    if height % scale or width % scale or height == 0 or width == 0:
        raise BadInputError(
            f"image size {height}x{width} is not a multiple of the scale {scale}",
            f"crop the image to a multiple of {scale} pixels",
        )
    if not bool(torch.isfinite(hq).all()) or hq.min() < 0 or hq.max() > 1:
        raise BadInputError(
            "image values must be finite and within [0, 1]",
            "divide 8-bit pixels by 255 and clamp before degrading",
        )
