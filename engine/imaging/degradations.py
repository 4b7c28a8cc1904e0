"""Synthetic real-world degradations for training: HQ crop in, LQ image and labels out.

`degrade` is the Real-ESRGAN second-order model with the settings DreamClear trained with
(`SEESR_SETTINGS`, reference/dreamclear.md "Published training setup"):

1. first stage: blur -> random resize (up / down / keep) -> noise (gaussian or poisson,
   maybe gray) -> JPEG;
2. second stage: blur (with a probability) -> random resize relative to the LQ size -> noise;
3. final: [resize to LQ size + sinc, JPEG] or [JPEG, resize to LQ size + sinc], 50/50;
4. round to 8 bits.

The GT side (USM sharpening, cropping) is the trainer's business, not this module's.

`degrade_spatially_varying` / `degrade_with_masks` make LQ images whose blur, noise, JPEG and
scale strengths change across the picture, with per-token strength maps as labels.

Every run is reproducible from an int seed (local numpy and torch generators, never global
RNG), and records what it did (`DegradationParams`). `strengths()` squeezes the record into four
numbers in [0, 1], the same units as the spatial maps:

- blur:  extra blur in LQ pixels over `BLUR_SIGMA_MAX`; each kernel's `excess_sigma`
  (blur_kernels) is converted to LQ pixels and the stages add in quadrature.
- noise: std of the added noise in 8-bit units, as it reaches the LQ grid, over
  `NOISE_SIGMA_MAX`; first-stage noise is attenuated by later downscaling (factor
  new_size / old_size when below 1, as averaging would), JPEG's denoising is ignored.
- jpeg:  (95 - q) / (95 - 30) for the lowest quality q applied, 0 without JPEG.
- scale: log(d) / log(`DOWNSCALE_MAX`), d = HQ size / smallest size the image went through
  (so at least the output scale: 0.5 for a plain x4).

Tensors are (3, H, W) float in [0, 1]; any device works (JPEG and poisson noise run on the CPU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from engine.errors import BadInputError, BadSettingError
from engine.imaging import degradation_ops as ops
from engine.imaging.blur_kernels import excess_sigma, gaussian_family_kernel, sinc_kernel

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

KernelType = Literal[
    "iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"
]
KERNEL_TYPES: tuple[KernelType, ...] = (
    "iso",
    "aniso",
    "generalized_iso",
    "generalized_aniso",
    "plateau_iso",
    "plateau_aniso",
)


# ----------------------------------------------------------------------------- settings


def _check_probs(name: str, probs: tuple[float, ...], count: int) -> None:
    if len(probs) != count or min(probs) < 0 or not math.isclose(sum(probs), 1.0):
        raise BadSettingError(
            f"{name} must be {count} probabilities summing to 1, got {probs}",
            "fix the degradation settings",
        )


def _check_range(name: str, bounds: tuple[float, float], low: float, high: float) -> None:
    if not low <= bounds[0] <= bounds[1] <= high:
        raise BadSettingError(
            f"{name} must be an ordered pair within [{low}, {high}], got {bounds}",
            "fix the degradation settings",
        )


@dataclass(frozen=True)
class StageSettings:
    """Random choices of one degradation stage (Real-ESRGAN option names in brackets)."""

    blur_prob: float
    """Chance of blurring at all (1 in the first stage, [second_blur_prob] in the second)."""
    kernel_probs: tuple[float, ...]
    """Chances of each of `KERNEL_TYPES` [kernel_prob]."""
    blur_sigma: tuple[float, float]
    """Kernel std range in pixels of the image blurred [blur_sigma]."""
    betag_range: tuple[float, float]
    """Shape range of generalized gaussian kernels [betag_range]."""
    betap_range: tuple[float, float]
    """Shape range of plateau kernels [betap_range]."""
    sinc_prob: float
    """Chance that the blur is a sinc kernel instead [sinc_prob]."""
    resize_probs: tuple[float, float, float]
    """Chances of resizing up, down, or keeping the size [resize_prob]."""
    resize_range: tuple[float, float]
    """Smallest and largest resize factor [resize_range]."""
    noise_prob: float
    """Chance of adding noise at all (1 in the published model)."""
    gaussian_noise_prob: float
    """Chance that noise is gaussian rather than poisson [gaussian_noise_prob]."""
    noise_range: tuple[float, float]
    """Gaussian noise std range in 8-bit units [noise_range]."""
    poisson_scale_range: tuple[float, float]
    """Poisson noise scale range [poisson_scale_range]."""
    gray_noise_prob: float
    """Chance that noise is the same in all channels [gray_noise_prob]."""
    jpeg_prob: float
    """Chance of JPEG compression at all (1 in the published model)."""
    jpeg_range: tuple[int, int]
    """JPEG quality range [jpeg_range]."""

    def __post_init__(self) -> None:
        for name in (
            "blur_prob",
            "sinc_prob",
            "noise_prob",
            "gaussian_noise_prob",
            "gray_noise_prob",
            "jpeg_prob",
        ):
            _check_range(name, (getattr(self, name),) * 2, 0.0, 1.0)
        _check_probs("kernel_probs", self.kernel_probs, len(KERNEL_TYPES))
        _check_probs("resize_probs", self.resize_probs, 3)
        _check_range("blur_sigma", self.blur_sigma, 1e-3, 100.0)
        _check_range("betag_range", self.betag_range, 1e-3, 100.0)
        _check_range("betap_range", self.betap_range, 1e-3, 100.0)
        _check_range("resize_range", self.resize_range, 1e-2, 1.0e2)
        if not self.resize_range[0] <= 1.0 <= self.resize_range[1]:
            raise BadSettingError(
                f"resize_range must contain 1, got {self.resize_range}",
                "use (smallest down factor, largest up factor)",
            )
        _check_range("noise_range", self.noise_range, 0.0, 255.0)
        _check_range("poisson_scale_range", self.poisson_scale_range, 0.0, 100.0)
        _check_range("jpeg_range", self.jpeg_range, 1, 95)


@dataclass(frozen=True)
class DegradationSettings:
    """The whole second-order model; `dataclasses.replace` it to switch stages on or off."""

    first: StageSettings
    second: StageSettings
    final_sinc_prob: float
    """Chance of the sinc filter applied with the final resize [final_sinc_prob]."""
    kernel_sizes: tuple[int, ...] = (7, 9, 11, 13, 15, 17, 19, 21)
    """Odd kernel sizes to draw from (Real-ESRGAN's hard-coded 7..21)."""

    def __post_init__(self) -> None:
        _check_range("final_sinc_prob", (self.final_sinc_prob,) * 2, 0.0, 1.0)
        if not self.kernel_sizes or any(k < 1 or k % 2 == 0 for k in self.kernel_sizes):
            raise BadSettingError(
                f"kernel_sizes must be odd and positive, got {self.kernel_sizes}",
                "use sizes such as 7, 9, ..., 21",
            )


SEESR_SETTINGS = DegradationSettings(
    first=StageSettings(
        blur_prob=1.0,
        kernel_probs=(0.45, 0.25, 0.12, 0.03, 0.12, 0.03),
        blur_sigma=(0.2, 3.0),
        betag_range=(0.5, 4.0),
        betap_range=(1.0, 2.0),
        sinc_prob=0.1,
        resize_probs=(0.2, 0.7, 0.1),
        resize_range=(0.15, 1.5),
        noise_prob=1.0,
        gaussian_noise_prob=0.5,
        noise_range=(1.0, 30.0),
        poisson_scale_range=(0.05, 3.0),
        gray_noise_prob=0.4,
        jpeg_prob=1.0,
        jpeg_range=(30, 95),
    ),
    second=StageSettings(
        blur_prob=0.8,
        kernel_probs=(0.45, 0.25, 0.12, 0.03, 0.12, 0.03),
        blur_sigma=(0.2, 1.5),
        betag_range=(0.5, 4.0),
        betap_range=(1.0, 2.0),
        sinc_prob=0.1,
        resize_probs=(0.3, 0.4, 0.3),
        resize_range=(0.3, 1.2),
        noise_prob=1.0,
        gaussian_noise_prob=0.5,
        noise_range=(1.0, 25.0),
        poisson_scale_range=(0.05, 2.5),
        gray_noise_prob=0.4,
        jpeg_prob=1.0,
        jpeg_range=(30, 95),
    ),
    final_sinc_prob=0.8,
)
"""Real-ESRGAN second-order settings as used by SeeSR and DreamClear (scale 4)."""


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True)
class BlurParams:
    """One kernel applied; lengths in pixels of the image it was applied to."""

    kind: KernelType | Literal["sinc"]
    size: int
    excess_sigma: float
    """How much it blurs (blur_kernels.excess_sigma)."""
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
            "blur": _unit(blur / BLUR_SIGMA_MAX),
            "noise": _unit(noise / NOISE_SIGMA_MAX),
            "jpeg": _unit(_jpeg_strength(min(qualities))) if qualities else 0.0,
            "scale": _unit(math.log(downscale) / math.log(DOWNSCALE_MAX)),
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


def _unit(value: float) -> float:
    return float(min(max(value, 0.0), 1.0))


def _jpeg_strength(quality: float) -> float:
    low, high = JPEG_QUALITY_RANGE
    return (high - quality) / (high - low)


# ----------------------------------------------------------------------------- validation


def _check_image(hq: torch.Tensor, scale: int) -> None:
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


# ----------------------------------------------------------------------------- degrade


def _random_kernel(
    stage: StageSettings, sizes: tuple[int, ...], rng: np.random.Generator
) -> tuple[torch.Tensor, BlurParams]:
    size = int(rng.choice(sizes))
    if rng.random() < stage.sinc_prob:
        # Real-ESRGAN lets small kernels cut off less, so the truncation stays harmless.
        cutoff = float(rng.uniform(math.pi / 3 if size < 13 else math.pi / 5, math.pi))
        kernel = sinc_kernel(size, cutoff)
        return kernel, BlurParams("sinc", size, excess_sigma(kernel), cutoff=cutoff)
    kind: KernelType = KERNEL_TYPES[int(rng.choice(len(KERNEL_TYPES), p=stage.kernel_probs))]
    family, _, shape = kind.rpartition("_") if "_" in kind else ("gaussian", "", kind)
    sigma_x = float(rng.uniform(*stage.blur_sigma))
    sigma_y, theta = sigma_x, 0.0
    if shape == "aniso":
        sigma_y = float(rng.uniform(*stage.blur_sigma))
        theta = float(rng.uniform(-math.pi, math.pi))
    beta = 1.0
    if family != "gaussian":
        low, high = stage.betag_range if family == "generalized" else stage.betap_range
        # Half the draws below 1 and half above, as Real-ESRGAN does.
        beta = float(rng.uniform(low, 1.0) if rng.random() < 0.5 else rng.uniform(1.0, high))
    kernel = gaussian_family_kernel(size, sigma_x, sigma_y, theta, family=family, beta=beta)
    record = BlurParams(kind, size, excess_sigma(kernel), sigma_x, sigma_y, theta, beta)
    return kernel, record


def _random_resize(
    image: torch.Tensor, stage: StageSettings, base: tuple[int, int], rng: np.random.Generator
) -> tuple[torch.Tensor, ResizeParams]:
    kind = ("up", "down", "keep")[int(rng.choice(3, p=stage.resize_probs))]
    factor = {
        "up": lambda: float(rng.uniform(1.0, stage.resize_range[1])),
        "down": lambda: float(rng.uniform(stage.resize_range[0], 1.0)),
        "keep": lambda: 1.0,
    }[kind]()
    mode = ops.RESIZE_MODES[int(rng.integers(len(ops.RESIZE_MODES)))]
    size = (max(1, int(base[0] * factor)), max(1, int(base[1] * factor)))
    return ops.resize(image, size, mode), ResizeParams(kind, factor, mode, size)


def _random_noise(
    image: torch.Tensor,
    stage: StageSettings,
    rng: np.random.Generator,
    generator: torch.Generator,
) -> tuple[torch.Tensor, NoiseParams | None]:
    if rng.random() >= stage.noise_prob:
        return image, None
    gaussian = rng.random() < stage.gaussian_noise_prob
    gray = bool(rng.random() < stage.gray_noise_prob)
    if gaussian:
        level = float(rng.uniform(*stage.noise_range))
        noise = ops.gaussian_noise(image, level, gray=gray, generator=generator)
    else:
        level = float(rng.uniform(*stage.poisson_scale_range))
        noise = ops.poisson_noise(image, level, gray=gray, generator=generator)
    std = float(noise.float().std()) * 255.0
    kind: Literal["gaussian", "poisson"] = "gaussian" if gaussian else "poisson"
    return torch.clamp(image + noise, 0, 1), NoiseParams(kind, level, gray, std)


def _random_quality(stage: StageSettings, rng: np.random.Generator) -> int | None:
    if rng.random() >= stage.jpeg_prob:
        return None
    return int(rng.integers(stage.jpeg_range[0], stage.jpeg_range[1] + 1))


def _jpeg(image: torch.Tensor, quality: int | None) -> torch.Tensor:
    return image if quality is None else ops.jpeg(image, quality)


def degrade(
    hq: torch.Tensor,
    *,
    scale: int = 4,
    seed: int,
    settings: DegradationSettings = SEESR_SETTINGS,
) -> Degraded:
    """Degrade one HQ image (3, H, W) in [0, 1] into an LQ image (3, H/scale, W/scale).

    The same seed and settings give the same LQ image and params (CPU; on GPU up to float
    rounding in the convolutions).
    """
    _check_image(hq, scale)
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    height, width = hq.shape[-2:]
    lq_size = (height // scale, width // scale)
    stages = []
    out = hq
    # 1. first stage (blur, resize, noise, JPEG); 2. second stage (blur, resize, noise)
    for stage, base in ((settings.first, (height, width)), (settings.second, lq_size)):
        blur = None
        if rng.random() < stage.blur_prob:
            kernel, blur = _random_kernel(stage, settings.kernel_sizes, rng)
            out = ops.filter2d(out, kernel)
        out, resize = _random_resize(out, stage, base, rng)
        out, noise = _random_noise(out, stage, rng, generator)
        quality = _random_quality(stage, rng)
        if stage is settings.first:
            out = _jpeg(out, quality)
        stages.append(StageParams(blur, resize, noise, quality))

    # 3. final resize to the LQ size with an optional sinc, before or after the last JPEG
    final_sinc = None
    sinc = None
    if rng.random() < settings.final_sinc_prob:
        size = int(rng.choice(settings.kernel_sizes))
        cutoff = float(rng.uniform(math.pi / 3, math.pi))
        sinc = sinc_kernel(size, cutoff)
        final_sinc = BlurParams("sinc", size, excess_sigma(sinc), cutoff=cutoff)
    mode = ops.RESIZE_MODES[int(rng.integers(len(ops.RESIZE_MODES)))]
    jpeg_first = bool(rng.random() < 0.5)
    last_quality = stages[1].jpeg_quality
    if jpeg_first:
        out = _jpeg(torch.clamp(out, 0, 1), last_quality)
    out = ops.resize(out, lq_size, mode)
    if sinc is not None:
        out = ops.filter2d(out, sinc)
    if not jpeg_first:
        out = _jpeg(torch.clamp(out, 0, 1), last_quality)

    # 4. round to 8 bits
    params = DegradationParams(
        scale=scale,
        first=stages[0],
        second=stages[1],
        final_sinc=final_sinc,
        final_resize_mode=mode,
        final_order="jpeg_then_resize" if jpeg_first else "resize_then_jpeg",
    )
    return Degraded(ops.quantise(out), params)


# ----------------------------------------------------------------------------- spatial

_BLUR_LEVELS = 5
_SCALE_LEVELS = 4
_JPEG_QUALITY_STEP = 5
_JPEG_BLOCK = 8
_GRAY_NOISE_PROB = 0.4


def min_scale_strength(scale: int) -> float:
    """The scale strength of a plain downscale by `scale` (no image can be below it)."""
    return _unit(math.log(scale) / math.log(DOWNSCALE_MAX))


def _blend(levels: list[torch.Tensor], position: torch.Tensor) -> torch.Tensor:
    """Per-pixel linear blend of `levels` at fractional index `position` (H, W)."""
    out = torch.zeros_like(levels[0])
    for index, level in enumerate(levels):
        weight = torch.clamp(1.0 - (position - index).abs(), min=0.0)
        out = out + weight * level
    return out


def coarse_pixel_grid(image: torch.Tensor, extra_downscale: float) -> torch.Tensor:
    """The scale stage of `degrade_with_masks` at one level: `image` (3, h, w) box-downscaled by
    `extra_downscale` more, then enlarged back to (h, w) pixel by pixel (nearest)."""
    if extra_downscale <= 1:
        return image
    size = image.shape[-2:]
    small = (max(1, round(size[0] / extra_downscale)), max(1, round(size[1] / extra_downscale)))
    return ops.resize(ops.resize(image, small, "area"), tuple(size), "nearest-exact")


def _check_masks(masks: torch.Tensor, hq: torch.Tensor, token_px: int) -> None:
    height, width = hq.shape[-2:]
    if not isinstance(token_px, int) or token_px < 1 or height % token_px or width % token_px:
        raise BadSettingError(
            f"token_px {token_px!r} does not divide the image size {height}x{width}",
            "crop the image to a multiple of the token size (16 px for the estimator)",
        )
    if tuple(masks.shape) != (4, height, width):
        raise BadInputError(
            f"strength masks must have shape (4, {height}, {width}), got {tuple(masks.shape)}",
            "give one mask per channel blur, noise, jpeg, scale at the HQ size",
        )
    if not bool(torch.isfinite(masks).all()) or masks.min() < 0 or masks.max() > 1:
        raise BadInputError("strength masks must be within [0, 1]", "clamp the masks")


def degrade_with_masks(
    hq: torch.Tensor, masks: torch.Tensor, *, scale: int = 4, seed: int, token_px: int = 16
) -> Degraded:
    """Degrade with per-pixel target strengths `masks` (4, H, W) in [0, 1] (blur, noise, jpeg,
    scale, in `strengths()` units); scale strengths below `min_scale_strength(scale)` are raised
    to it. Each stage blends a few fixed levels per pixel, so the LQ image matches the masks.
    The stages run in Real-ESRGAN's order:

    1. box downscale to the LQ size; 2. blur: gaussian up to `BLUR_SIGMA_MAX` LQ pixels;
    3. scale: a further box downscale (down to 1/`DOWNSCALE_MAX` of the HQ size) enlarged back
       to the LQ size pixel by pixel (nearest), so a region keeps the coarse pixel grid of the
       resolution it went through; 4. gaussian noise up to `NOISE_SIGMA_MAX` (gray with a
       chance of 0.4); 5. JPEG down to quality 30, one quality (in steps of 5) per 8x8 LQ
       block, the nearest to the block's mean mask; 6. 8 bits.

    Why the scale stage enlarges without smoothing: a region enlarged smoothly (bicubic) from
    a lower resolution is the same picture as a blurred one (the blur-kernel / scale ambiguity
    of blind super-resolution), so no estimator could tell the two channels apart per token.
    The pixel grid is what tells a low resolution from a blur; smooth enlargement counts as
    blur here.

    `strength_maps` are the masks averaged over each token_px x token_px token (for JPEG, the
    strengths of the qualities the blocks got).
    """
    _check_image(hq, scale)
    _check_masks(masks, hq, token_px)
    rng = np.random.default_rng((seed, 1))
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    height, width = hq.shape[-2:]
    lq_size = (height // scale, width // scale)
    low = min_scale_strength(scale)
    masks = masks.to(hq)
    masks = torch.cat([masks[:3], masks[3:].clamp(min=low)])
    lq_masks = F.avg_pool2d(masks[None], scale)[0] if scale > 1 else masks

    # 1. the plain downscale to the LQ size, then 2. blur
    out = ops.resize(hq, lq_size, "area")
    sigmas = tuple(BLUR_SIGMA_MAX * k / (_BLUR_LEVELS - 1) for k in range(_BLUR_LEVELS))
    levels = [ops.gaussian_blur(out, sigma) for sigma in sigmas]
    out = _blend(levels, lq_masks[0] * (_BLUR_LEVELS - 1))

    # 3. scale: levels evenly spaced in log(downscale), which is linear in strength
    downscales = tuple(
        float(DOWNSCALE_MAX ** (low + (1.0 - low) * k / (_SCALE_LEVELS - 1)))
        for k in range(_SCALE_LEVELS)
    )
    levels = [out] + [coarse_pixel_grid(out, factor / scale) for factor in downscales[1:]]
    span = max(1.0 - low, 1e-6)
    out = _blend(levels, (lq_masks[3] - low) / span * (_SCALE_LEVELS - 1))

    # 4. noise
    gray = bool(rng.random() < _GRAY_NOISE_PROB)
    noise = ops.gaussian_noise(out, NOISE_SIGMA_MAX, gray=gray, generator=generator)
    out = torch.clamp(out + noise * lq_masks[1], 0, 1)

    # 5. JPEG: one quality per 8x8 block (a blend of two JPEGs is less damaged than either).
    # Only the qualities some block uses are encoded: a smooth mask spans a few of them.
    low_q, high_q = JPEG_QUALITY_RANGE
    qualities = tuple(range(high_q, low_q - 1, -_JPEG_QUALITY_STEP))
    block_mean = F.avg_pool2d(lq_masks[2][None, None], _JPEG_BLOCK, ceil_mode=True)[0, 0]
    block_level = torch.round(block_mean * (len(qualities) - 1)).long()
    pixel_level = block_level.repeat_interleave(_JPEG_BLOCK, 0).repeat_interleave(_JPEG_BLOCK, 1)
    pixel_level = pixel_level[: lq_size[0], : lq_size[1]]
    used = torch.unique(pixel_level)
    encoded = torch.stack([ops.jpeg(out, qualities[int(level)]) for level in used])
    slot_of_level = torch.zeros(len(qualities), dtype=torch.long)
    slot_of_level[used] = torch.arange(len(used))
    slot = slot_of_level[pixel_level]  # where each pixel's quality sits in `encoded`
    out = torch.gather(encoded, 0, slot.expand(1, 3, -1, -1).to(out.device))[0]
    # The label is the strength of the quality each pixel really got.
    applied = [_jpeg_strength(q) for q in qualities]
    jpeg_strength = torch.tensor(applied, dtype=masks.dtype, device=masks.device)[pixel_level]
    masks[2] = jpeg_strength.repeat_interleave(scale, 0).repeat_interleave(scale, 1)

    # 6. 8 bits, and the labels
    maps = F.avg_pool2d(masks[None], token_px)[0].clamp(0, 1)
    params = SpatialParams(
        scale=scale,
        token_px=token_px,
        downscales=downscales,
        blur_sigmas=sigmas,
        jpeg_qualities=qualities,
        noise_gray=gray,
        mean_strengths={name: float(maps[i].mean()) for i, name in enumerate(STRENGTH_CHANNELS)},
    )
    return Degraded(ops.quantise(out), params, maps)


def downscale_clean(hq: torch.Tensor, scale: int) -> torch.Tensor:
    """An undamaged photo made small: (3, H, W) -> a box downscale by `scale` on the 8-bit
    grid, with no blur, noise or JPEG."""
    _check_image(hq, scale)
    size = (hq.shape[-2] // scale, hq.shape[-1] // scale)
    return ops.quantise(ops.resize(hq, size, "area"))


def random_strength_masks(height: int, width: int, *, scale: int, seed: int) -> torch.Tensor:
    """Smooth random masks (4, H, W) in [0, 1]: a bicubic surface through a random 2x2 to 5x5
    grid of uniform values per channel; the scale channel spans [min_scale_strength, 1]."""
    rng = np.random.default_rng((seed, 0))
    masks = []
    for _ in STRENGTH_CHANNELS:
        grid = int(rng.integers(2, 6))
        control = torch.from_numpy(rng.random((1, 1, grid, grid))).float()
        surface = F.interpolate(control, size=(height, width), mode="bicubic", align_corners=True)
        masks.append(surface[0, 0].clamp(0, 1))
    low = min_scale_strength(scale)
    masks[3] = low + (1.0 - low) * masks[3]
    return torch.stack(masks)


def degrade_spatially_varying(
    hq: torch.Tensor, *, scale: int = 4, seed: int, token_px: int = 16
) -> Degraded:
    """Degrade with smooth random strength masks (`random_strength_masks`, `degrade_with_masks`).

    Returns the LQ image (3, H/scale, W/scale) and `strength_maps` (4, H/token_px, W/token_px).
    """
    _check_image(hq, scale)
    height, width = hq.shape[-2:]
    masks = random_strength_masks(height, width, scale=scale, seed=seed).to(hq.device)
    return degrade_with_masks(hq, masks, scale=scale, seed=seed, token_px=token_px)
