"""A reference for the estimator bench: how well blur and scale can be read knowing the photo.

The oracle sees what no estimator can: the ground truth. For every (blur, scale) pair of a grid
it runs the ground truth through the same stages as `degrade_with_masks` (the box downscale to
the LQ size, the gaussian blur, the coarse pixel grid) and, for each token, takes the pair whose
result's luma is closest to the LQ image's. The squared error is pooled over `WINDOW` x `WINDOW` tokens
before the choice, because the strength masks are smooth and the estimator reads its
neighbours too.

Noise and JPEG are left in the residual, not modelled; so it is a reference, not a proof of
what is possible. Where it reads a channel poorly, a photo's tokens do not carry that channel's
strength well enough for any estimator to read it from the LQ image alone: flat tokens hide
blur and resolution, and noise, JPEG and a coarse grid hide blur on the rest.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from engine.degradation import ops
from engine.degradation.records import BLUR_SIGMA_MAX, DOWNSCALE_MAX, min_scale_strength
from engine.degradation.spatial import coarse_pixel_grid

ORACLE_CHANNELS = ("blur", "scale")
"""The channels the oracle reads (noise and JPEG it leaves in the residual)."""

LUMA_WEIGHTS = (0.299, 0.587, 0.114)
"""BT.601 luma. The oracle compares luma only: JPEG's chroma subsampling (even at quality 95)
blurs the colours, which it would read as blur."""

WINDOW = 5
"""Tokens per side over which the oracle pools the error of each candidate."""

BLUR_STEPS = 9
SCALE_STEPS = 7
"""Candidate strengths per channel, evenly spaced over each channel's range."""


def oracle_strengths(
    hq: torch.Tensor, lq: torch.Tensor, *, scale: int, token_px: int = 16, window: int = WINDOW
) -> torch.Tensor:
    """Ground truth (3, H, W) and its spatially varying LQ (3, H/scale, W/scale) -> the blur and
    scale strengths (2, H/token_px, W/token_px) whose re-degradation of the ground truth best
    matches the LQ image around each token."""
    lq_size = (hq.shape[-2] // scale, hq.shape[-1] // scale)
    if tuple(lq.shape[-2:]) != lq_size:
        raise ValueError(f"lq must be {lq_size} for a x{scale} ground truth, got {lq.shape[-2:]}")
    lq_token = token_px // scale
    reference = ops.resize(hq, lq_size, "area")
    luma = torch.tensor(LUMA_WEIGHTS, dtype=lq.dtype).view(3, 1, 1)
    low = min_scale_strength(scale)
    candidates, errors = [], []
    for blur in np.linspace(0.0, 1.0, BLUR_STEPS):
        blurred = ops.gaussian_blur(reference, float(blur) * BLUR_SIGMA_MAX)
        for strength in np.linspace(low, 1.0, SCALE_STEPS):
            extra = float(DOWNSCALE_MAX**strength) / scale
            candidate = coarse_pixel_grid(blurred, extra)
            squared = ((candidate - lq) * luma).sum(0).pow(2)[None, None]
            per_token = F.avg_pool2d(squared, lq_token)
            pooled = F.avg_pool2d(
                per_token, window, stride=1, padding=window // 2, count_include_pad=False
            )
            candidates.append((float(blur), float(strength)))
            errors.append(pooled[0, 0])
    best = torch.stack(errors).argmin(0)
    table = torch.tensor(candidates, dtype=torch.float32)  # (candidates, 2)
    return table[best].permute(2, 0, 1)
