"""How well the starter's degradation estimator reads per-token degradation strengths.

Each photo's centre crop is degraded with `degrade_spatially_varying` (seed = photo index, plus
`DRAW_SEED_STEP` per further draw of masks),
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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.bench.estimator_oracle import ORACLE_CHANNELS, WINDOW, oracle_strengths
from engine.bench.quality import bicubic_upscale, centre_crop
from engine.degradation.ops import resize
from engine.degradation.spatial import degrade_spatially_varying
from engine.imaging.io import load_image
from engine.metrics.rank_correlation import spearman

DRAW_SEED_STEP = 1000
"""Draw d of photo i uses seed i + d * DRAW_SEED_STEP (draw 0: the photo index)."""

DETAIL_LEVELS = 4.0
"""RMS gradient (8-bit levels per LQ pixel) from which a token counts as having detail."""


ORACLE_NOTE = (
    "Oracle: knows the ground truth and, per token, picks the blur and scale whose "
    f"re-degradation of it best matches the LQ image (error pooled over {WINDOW}x{WINDOW} "
    "tokens; noise and "
    "JPEG left in the residual). A reference for what the LQ image shows of each strength."
)


@dataclass
class EstimatorReport:
    channels: tuple[str, ...]
    spearman: dict[str, float]
    """Mean over the draws of Spearman over all tokens of a draw."""
    spearman_detail: dict[str, float]
    """The same over the tokens with detail only."""
    spearman_sd: dict[str, float]
    """Standard deviation over the draws (0 for one draw)."""
    spearman_detail_sd: dict[str, float]
    mean_abs_error: dict[str, float]
    tokens: int
    """Tokens of one draw."""
    detail_tokens: int
    photos: int
    crop: int
    draws: int = 1
    oracle_spearman: dict[str, float] = field(default_factory=dict)
    """`estimator_oracle` (it knows the ground truth), blur and scale only; empty if not run."""
    oracle_spearman_detail: dict[str, float] = field(default_factory=dict)

    def validation_record(self, photos: list[str], command: str) -> dict:
        """What a model's estimator/validation.json keeps (engine.weights.starter_io)."""
        import datetime

        def rounded(values: dict[str, float]) -> dict[str, float]:
            return {name: round(float(value), 3) for name, value in values.items()}

        return {
            "format": 1,
            "command": f"dreamclear {command}",
            "photos": photos,
            "crop": self.crop,
            "tokens": self.tokens,
            "detail_tokens": self.detail_tokens,
            "draws": self.draws,
            "measured": datetime.date.today().isoformat(),
            "spearman_detail": rounded(self.spearman_detail),
            "spearman_detail_sd": rounded(self.spearman_detail_sd),
            "spearman_all": rounded(self.spearman),
        }


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
    draws: int = 1,
    oracle: bool = False,
    on_photo: Callable[[int, int, str], None] | None = None,
) -> EstimatorReport:
    """`pipeline` is a StarterRestorePipeline (it must have an estimator). With several
    `draws`, every photo is degraded again with other masks and the correlations are averaged:
    one draw is only a few dozen independent mask values per channel. With `oracle`, the
    same LQ images are also read by `estimator_oracle` as a reference."""
    if getattr(pipeline, "estimator", None) is None:
        raise ValueError("this model has no degradation estimator (use --model starter)")
    channels = pipeline.channels
    crops = [centre_crop(load_image(path).rgb, crop) for path in photos]
    detailed = np.concatenate([token_detail(hq, scale).numpy().reshape(-1) for hq in crops])
    detailed = detailed >= DETAIL_LEVELS
    oracle_index = [channels.index(c) for c in ORACLE_CHANNELS]
    rho, rho_detail, errors, oracle_rho, oracle_rho_detail = [], [], [], [], []
    for draw in range(draws):
        predicted, applied, read_by_oracle = [], [], []
        for index, hq in enumerate(crops):
            if on_photo is not None:
                on_photo(draw * len(crops) + index, draws * len(crops), photos[index].name)
            seed = index + draw * DRAW_SEED_STEP
            degraded = degrade_spatially_varying(hq, scale=scale, seed=seed)
            with torch.no_grad():
                strengths = pipeline.estimate(bicubic_upscale(degraded.lq, scale)[None])
            predicted.append(strengths.cpu().numpy().reshape(len(channels), -1))
            applied.append(degraded.strength_maps.cpu().numpy().reshape(len(channels), -1))
            if oracle:
                read = oracle_strengths(hq, degraded.lq, scale=scale)
                read_by_oracle.append(read.numpy().reshape(len(ORACLE_CHANNELS), -1))
        p, a = np.concatenate(predicted, 1), np.concatenate(applied, 1)
        rho.append([spearman(p[i], a[i]) for i in range(len(channels))])
        rho_detail.append([spearman(p[i][detailed], a[i][detailed]) for i in range(len(channels))])
        errors.append(np.abs(p - a).mean(1))
        if oracle:
            o, a_o = np.concatenate(read_by_oracle, 1), a[oracle_index]
            oracle_rho.append([spearman(o[i], a_o[i]) for i in range(len(ORACLE_CHANNELS))])
            oracle_rho_detail.append(
                [spearman(o[i][detailed], a_o[i][detailed]) for i in range(len(ORACLE_CHANNELS))]
            )
    rho_all, rho_detail_all, errors_all = np.array(rho), np.array(rho_detail), np.array(errors)

    def per_channel(values: np.ndarray) -> dict[str, float]:
        return {c: float(values[i]) for i, c in enumerate(channels)}

    def oracle_means(per_draw: list[list[float]]) -> dict[str, float]:
        means = np.mean(per_draw, 0) if per_draw else []
        return {c: float(v) for c, v in zip(ORACLE_CHANNELS, means, strict=False)}

    return EstimatorReport(
        channels=channels,
        spearman=per_channel(rho_all.mean(0)),
        spearman_detail=per_channel(rho_detail_all.mean(0)),
        spearman_sd=per_channel(rho_all.std(0)),
        spearman_detail_sd=per_channel(rho_detail_all.std(0)),
        mean_abs_error=per_channel(errors_all.mean(0)),
        tokens=int(detailed.size),
        detail_tokens=int(detailed.sum()),
        photos=len(photos),
        crop=crop,
        draws=draws,
        oracle_spearman=oracle_means(oracle_rho),
        oracle_spearman_detail=oracle_means(oracle_rho_detail),
    )


def format_table(report: EstimatorReport) -> str:
    def value(mean: float, sd: float) -> str:
        return f"{mean:.3f}" if report.draws == 1 else f"{mean:.3f} ± {sd:.3f}"

    draws = f", mean of {report.draws} mask draws" if report.draws > 1 else ""
    lines = [
        f"Degradation estimator: {report.photos} photos, centre crop {report.crop} px, "
        f"{report.tokens} tokens of 16 px ({report.detail_tokens} with detail){draws}",
        "",
        "| channel | Spearman, all tokens | Spearman, tokens with detail | mean abs error |"
        + (" oracle, all / with detail |" if report.oracle_spearman else ""),
        "|---|---|---|---|" + ("---|" if report.oracle_spearman else ""),
    ]
    for c in report.channels:
        row = (
            f"| {c} | {value(report.spearman[c], report.spearman_sd[c])} "
            f"| {value(report.spearman_detail[c], report.spearman_detail_sd[c])} "
            f"| {report.mean_abs_error[c]:.3f} |"
        )
        if report.oracle_spearman:
            read = c in report.oracle_spearman
            row += (
                f" {report.oracle_spearman[c]:.3f} / {report.oracle_spearman_detail[c]:.3f} |"
                if read
                else " (not read) |"
            )
        lines.append(row)
    if report.oracle_spearman:
        lines += ["", ORACLE_NOTE]
    return "\n".join(lines)
