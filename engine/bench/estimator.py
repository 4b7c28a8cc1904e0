"""How well the starter's degradation estimator reads per-token degradation strengths.

Each photo's centre crop is degraded with `degrade_spatially_varying` (a fixed seed per photo),
which knows the strength it applied to every 16 px token; the estimator sees the bicubic
upscale of the result (the restorer's input) and predicts the same four maps. Reported per
channel: Spearman's rank correlation over all tokens of all photos, the same over the tokens
with detail, and the mean absolute error.

Tokens with detail: on a flat token (sky, water, a smooth background) blur and a lower
resolution change nothing, so no estimator can read their strength there, only guess it from
neighbours. A token has detail when the RMS luminance gradient of its ground truth, at the LQ
scale, is at least `DETAIL_LEVELS` 8-bit levels per pixel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.bench.quality import bicubic_upscale, centre_crop
from engine.imaging.degradation_ops import resize
from engine.imaging.degradations import degrade_spatially_varying
from engine.imaging.io import load_image
from engine.metrics.rank_correlation import spearman

DETAIL_LEVELS = 4.0
"""RMS gradient (8-bit levels per LQ pixel) from which a token counts as having detail."""


@dataclass
class EstimatorReport:
    channels: tuple[str, ...]
    spearman: dict[str, float]
    spearman_detail: dict[str, float]
    """Spearman over the tokens with detail only."""
    mean_abs_error: dict[str, float]
    tokens: int
    detail_tokens: int
    photos: int
    crop: int


def token_detail(hq: torch.Tensor, scale: int, token_px: int = 16) -> torch.Tensor:
    """(3,H,W) ground truth -> (H/token_px, W/token_px) RMS luminance gradient in 8-bit levels
    per pixel, measured at the LQ scale."""
    lq = resize(hq, (hq.shape[-2] // scale, hq.shape[-1] // scale), "area").mean(0)
    dx = F.pad((lq[:, 1:] - lq[:, :-1]) ** 2, (0, 1))
    dy = F.pad((lq[1:, :] - lq[:-1, :]) ** 2, (0, 0, 0, 1))
    energy = F.avg_pool2d((dx + dy)[None, None], token_px // scale)[0, 0]
    return energy.sqrt() * 255.0


def run(
    photos: list[Path],
    *,
    pipeline,
    scale: int = 4,
    crop: int = 256,
    on_photo: Callable[[int, int, str], None] | None = None,
) -> EstimatorReport:
    """`pipeline` is a StarterRestorePipeline (it must have an estimator)."""
    if getattr(pipeline, "estimator", None) is None:
        raise ValueError("this model has no degradation estimator (use --model starter)")
    channels = pipeline.channels
    predicted: list[np.ndarray] = []
    applied: list[np.ndarray] = []
    detail: list[np.ndarray] = []
    for index, path in enumerate(photos):
        if on_photo is not None:
            on_photo(index, len(photos), path.name)
        hq = centre_crop(load_image(path).rgb, crop)
        degraded = degrade_spatially_varying(hq, scale=scale, seed=index)
        upscaled = bicubic_upscale(degraded.lq, scale)
        with torch.no_grad():
            strengths = pipeline.estimate(upscaled[None])
        predicted.append(strengths.cpu().numpy().reshape(len(channels), -1))
        applied.append(degraded.strength_maps.cpu().numpy().reshape(len(channels), -1))
        detail.append(token_detail(hq, scale).cpu().numpy().reshape(-1))
    predicted_all, applied_all = np.concatenate(predicted, 1), np.concatenate(applied, 1)
    detailed = np.concatenate(detail) >= DETAIL_LEVELS
    return EstimatorReport(
        channels=channels,
        spearman={c: spearman(predicted_all[i], applied_all[i]) for i, c in enumerate(channels)},
        spearman_detail={
            c: spearman(predicted_all[i][detailed], applied_all[i][detailed])
            for i, c in enumerate(channels)
        },
        mean_abs_error={
            c: float(np.abs(predicted_all[i] - applied_all[i]).mean())
            for i, c in enumerate(channels)
        },
        tokens=predicted_all.shape[1],
        detail_tokens=int(detailed.sum()),
        photos=len(photos),
        crop=crop,
    )


def format_table(report: EstimatorReport) -> str:
    lines = [
        f"Degradation estimator: {report.photos} photos, centre crop {report.crop} px, "
        f"{report.tokens} tokens of 16 px ({report.detail_tokens} with detail)",
        "",
        "| channel | Spearman, all tokens | Spearman, tokens with detail | mean abs error |",
        "|---|---|---|---|",
    ]
    for channel in report.channels:
        lines.append(
            f"| {channel} | {report.spearman[channel]:.3f} "
            f"| {report.spearman_detail[channel]:.3f} | {report.mean_abs_error[channel]:.3f} |"
        )
    return "\n".join(lines)
