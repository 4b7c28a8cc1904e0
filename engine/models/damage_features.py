"""Fixed statistics of how damaged a low-quality input looks, what the starter's gate reads.

`damage_features(lq)` measures noise, detail, blur and JPEG blocking on the input itself, with no
learned part, so the gate (engine/models/expert_gate.py) that reads them is a handful of weights
and generalises from a few dozen training photos. Every statistic is a mean, median or ratio, so
it does not grow with the input's size: a gate fitted on 40-56 px training crops reads a 128 px
tile the same way.

The first eight (v2.1's and v2.2's gate) say how much noise and detail there is; the six added
for v2.3 say what kind of high frequencies they are, the question the first gate got wrong (a
grainy sky or wood grain read as added noise, the published damage's blur and blocking missed):
white noise is as strong one octave down as at the finest level and gaussian-tailed, a photo's
detail is weaker at the finest level and heavy-tailed (edges), and the flattest part of a crop
shows the noise floor whatever texture the rest has. JPEG's 8 px grid shows along rows and
columns, and in the chroma that the published damage's colour noise and compression leave.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["DAMAGE_FEATURES", "V2_FEATURE_COUNT", "damage_features"]

DAMAGE_FEATURES = (
    "noise",
    "detail",
    "coarse_detail",
    "diagonal_detail",
    "colour_noise",
    "blockiness",
    "diagonal_share",
    "fine_to_coarse",
    # v2.3: what kind of high frequencies
    "coarse_noise",
    "noise_fine_to_coarse",
    "noise_kurtosis",
    "noise_floor",
    "row_blockiness",
    "chroma_blockiness",
)
"""What `damage_features` measures, in its column order (all logarithms)."""
V2_FEATURE_COUNT = 8
"""The columns v2.1's and v2.2's gates read (a gate's `num_features` takes the first N)."""
_EPS = 1e-4
_FLOOR_BLOCK = 4
"""Side, in finest-level Haar coefficients (8 input px), of the blocks the noise floor ranks."""
_FLOOR_QUANTILE = 0.1


def _haar(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One level of the orthonormal Haar transform of (B,H,W), H and W even: LL, LH, HL, HH."""
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    return (a + b + c + d) / 2, (a - b + c - d) / 2, (a + b - c - d) / 2, (a - b - c + d) / 2


def _column_blockiness(image: torch.Tensor) -> torch.Tensor:
    """(B,H,W) -> (B,): the strongest of the 8 column phases of the horizontal differences
    against their mean (JPEG's 8 px blocks, wherever the grid starts)."""
    steps = (image[..., :, 1:] - image[..., :, :-1]).abs()
    columns = steps.shape[-1] // 8 * 8
    phases = steps[..., :columns].reshape(steps.shape[0], -1, columns // 8, 8).mean((1, 2))
    return phases.max(1).values / phases.mean(1).clamp_min(_EPS)


def damage_features(lq: torch.Tensor) -> torch.Tensor:
    """lq (B,3,h,w) in [0,1] -> (B, len(DAMAGE_FEATURES)) statistics of its damage.

    noise: Donoho's estimate (median |HH| / 0.6745 of the finest Haar level of the luma),
    robust to edges; detail and coarse_detail: mean |LH| + |HL| at the first two levels (blur
    lowers the first against the second: fine_to_coarse); diagonal_detail and diagonal_share:
    mean |HH| and its share of the detail (noise is as strong diagonally as along the axes,
    a photo's detail is not); colour_noise: median |HH| of both chroma differences (sensor and
    the published degradation's colour noise); blockiness: `_column_blockiness` of the luma.
    v2.3: coarse_noise, Donoho's estimate one level down (the orthonormal transform keeps white
    noise's level there), and noise_fine_to_coarse, the two's ratio; noise_kurtosis of the
    finest HH (3 for gaussian noise, more for edges and texture); noise_floor, the 10th
    percentile of the mean |HH| over 8 px blocks (the flattest blocks); row_blockiness, the
    same grid along rows; chroma_blockiness, along columns of blue minus luma.
    """
    # Even sides of at least 16 px: two Haar levels and the 8 JPEG phases need them.
    height, width = (
        max(16, lq.shape[-2] + lq.shape[-2] % 2),
        max(16, lq.shape[-1] + lq.shape[-1] % 2),
    )
    if (height, width) != tuple(lq.shape[-2:]):
        lq = F.pad(lq, (0, width - lq.shape[-1], 0, height - lq.shape[-2]), mode="replicate")
    red, green, blue = lq[:, 0], lq[:, 1], lq[:, 2]
    luma = 0.299 * red + 0.587 * green + 0.114 * blue
    low, lh, hl, hh = _haar(luma)
    _, lh2, hl2, hh2 = _haar(low[..., : low.shape[-2] // 2 * 2, : low.shape[-1] // 2 * 2])
    flat = lambda t: t.flatten(1)  # noqa: E731
    noise = flat(hh.abs()).median(1).values / 0.6745
    detail = flat(lh.abs() + hl.abs()).mean(1)
    coarse = flat(lh2.abs() + hl2.abs()).mean(1)
    diagonal = flat(hh.abs()).mean(1)
    colour = sum(
        flat(_haar(chroma)[3].abs()).median(1).values for chroma in (blue - luma, red - luma)
    )
    coarse_noise = flat(hh2.abs()).median(1).values / 0.6745
    kurtosis = flat(hh).pow(4).mean(1) / flat(hh).pow(2).mean(1).square().clamp_min(1e-12)
    rows, cols = (
        hh.shape[-2] // _FLOOR_BLOCK * _FLOOR_BLOCK,
        hh.shape[-1] // _FLOOR_BLOCK * _FLOOR_BLOCK,
    )
    blocks = F.avg_pool2d(hh[:, None, :rows, :cols].abs(), _FLOOR_BLOCK).flatten(1)
    floor = blocks.quantile(_FLOOR_QUANTILE, dim=1)
    features = [
        noise,
        detail,
        coarse,
        diagonal,
        colour,
        _column_blockiness(luma),
        diagonal / detail.clamp_min(_EPS),
        detail / coarse.clamp_min(_EPS),
        coarse_noise,
        noise / coarse_noise.clamp_min(_EPS),
        kurtosis,
        floor,
        _column_blockiness(luma.transpose(-1, -2)),
        _column_blockiness(blue - luma),
    ]
    return torch.stack([f.clamp_min(0) + _EPS for f in features], 1).log()
