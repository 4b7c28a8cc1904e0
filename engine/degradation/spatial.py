"""Spatially varying degradations: LQ images whose blur, noise, JPEG and scale strengths change
across the picture, with per-token strength maps as labels (for the degradation estimator).

`degrade_spatially_varying` draws smooth random masks (`random_strength_masks`) and applies
them with `degrade_with_masks`; strengths are in the units of records.py.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from engine.degradation import ops
from engine.degradation.records import (
    BLUR_SIGMA_MAX,
    DOWNSCALE_MAX,
    JPEG_QUALITY_RANGE,
    NOISE_SIGMA_MAX,
    STRENGTH_CHANNELS,
    Degraded,
    SpatialParams,
    check_image,
    jpeg_quality_strength,
    min_scale_strength,
)
from engine.errors import BadInputError, BadSettingError

_BLUR_LEVELS = 5
_SCALE_LEVELS = 4
_JPEG_QUALITY_STEP = 5
_JPEG_BLOCK = 8
_GRAY_NOISE_PROB = 0.4


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
    check_image(hq, scale)
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
    applied = [jpeg_quality_strength(q) for q in qualities]
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
    check_image(hq, scale)
    height, width = hq.shape[-2:]
    masks = random_strength_masks(height, width, scale=scale, seed=seed).to(hq.device)
    return degrade_with_masks(hq, masks, scale=scale, seed=seed, token_px=token_px)
