"""How well the starter's degradation estimator reads per-token degradation strengths.

Each photo's centre crop is degraded with `degrade_spatially_varying` (a fixed seed per photo),
which knows the strength it applied to every 16 px token; the estimator sees the bicubic
upscale of the result (the restorer's input) and predicts the same four maps. Reported per
channel: Spearman's rank correlation over all tokens of all photos, and the mean absolute error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.bench.quality import bicubic_upscale, centre_crop
from engine.imaging.degradations import degrade_spatially_varying
from engine.imaging.io import load_image
from engine.metrics.rank_correlation import spearman


@dataclass
class EstimatorReport:
    channels: tuple[str, ...]
    spearman: dict[str, float]
    mean_abs_error: dict[str, float]
    tokens: int
    photos: int
    crop: int


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
    predicted_all, applied_all = np.concatenate(predicted, 1), np.concatenate(applied, 1)
    return EstimatorReport(
        channels=channels,
        spearman={c: spearman(predicted_all[i], applied_all[i]) for i, c in enumerate(channels)},
        mean_abs_error={
            c: float(np.abs(predicted_all[i] - applied_all[i]).mean())
            for i, c in enumerate(channels)
        },
        tokens=predicted_all.shape[1],
        photos=len(photos),
        crop=crop,
    )


def format_table(report: EstimatorReport) -> str:
    lines = [
        f"Degradation estimator: {report.photos} photos, centre crop {report.crop} px, "
        f"{report.tokens} tokens of 16 px",
        "",
        "| channel | Spearman | mean abs error |",
        "|---|---|---|",
    ]
    for channel in report.channels:
        lines.append(
            f"| {channel} | {report.spearman[channel]:.3f} | {report.mean_abs_error[channel]:.3f} |"
        )
    return "\n".join(lines)
