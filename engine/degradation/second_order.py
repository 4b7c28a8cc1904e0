"""The Real-ESRGAN second-order degradation (`degrade`), and its undamaged counterpart
(`downscale_clean`): the two ways the restorer's training and the quality bench make LQ images.

`degrade` runs the stages with random choices drawn from `DegradationSettings` (default: the
published `SEESR_SETTINGS`):

1. first stage: blur -> random resize (up / down / keep) -> noise (gaussian or poisson,
   maybe gray) -> JPEG;
2. second stage: blur (with a probability) -> random resize relative to the LQ size -> noise;
3. final: [resize to LQ size + sinc, JPEG] or [JPEG, resize to LQ size + sinc], 50/50;
4. round to 8 bits.

The GT side (USM sharpening, cropping) is the trainer's business, not this module's. Every run
is reproducible from an int seed (local numpy and torch generators, never global RNG) and
records what it did (`DegradationParams`; its strengths: records.py).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch

from engine.degradation import ops
from engine.degradation.kernels import excess_sigma, gaussian_family_kernel, sinc_kernel
from engine.degradation.records import (
    BlurParams,
    DegradationParams,
    Degraded,
    NoiseParams,
    ResizeParams,
    StageParams,
    check_image,
)
from engine.degradation.settings import (
    KERNEL_TYPES,
    SEESR_SETTINGS,
    DegradationSettings,
    KernelType,
    StageSettings,
)


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
    check_image(hq, scale)
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


def downscale_clean(hq: torch.Tensor, scale: int, mode: ops.ResizeMode = "area") -> torch.Tensor:
    """An undamaged photo made small: (3, H, W) -> a downscale by `scale` on the 8-bit grid
    (a box filter by default; `mode` one of `ops.RESIZE_MODES`), with no blur, noise or JPEG."""
    check_image(hq, scale)
    size = (hq.shape[-2] // scale, hq.shape[-1] // scale)
    return ops.quantise(ops.resize(hq, size, mode))
