"""The degradation map's colours: the viridis scale for one value, a colour per expert or
channel for the mixed views, and the values marked along a scale."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor

EXPERT_COLOURS = (QColor(230, 40, 40), QColor(40, 200, 60), QColor(50, 90, 240))
"""MoAM expert 1-3 as red, green and blue (their router weights sum to 1: an RGB mix)."""

CHANNEL_COLOURS = (
    QColor(0, 114, 178),
    QColor(213, 94, 0),
    QColor(0, 158, 115),
    QColor(204, 121, 167),
    QColor(240, 228, 66),
    QColor(86, 180, 233),
    QColor(230, 159, 0),
)
"""The starter's channels (blur, noise, jpeg, scale, ...) in the mixed view: the Okabe-Ito
palette, told apart by colour-blind eyes too."""

# Matplotlib's viridis at 9 evenly spaced points: perceptually uniform and colour-blind safe.
_VIRIDIS_ANCHORS = np.array(
    [
        (68, 1, 84),
        (71, 44, 122),
        (59, 81, 139),
        (44, 113, 142),
        (33, 144, 141),
        (39, 173, 129),
        (92, 200, 99),
        (170, 220, 50),
        (253, 231, 37),
    ],
    dtype=np.float32,
)
VIRIDIS = np.stack(
    [
        np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(_VIRIDIS_ANCHORS)), channel)
        for channel in _VIRIDIS_ANCHORS.T
    ],
    axis=1,
).astype(np.uint8)
"""(256, 3) uint8 colour lookup table for one-channel views."""


def colormap_colour(fraction: float) -> QColor:
    """The colormap's colour at `fraction` in [0, 1]."""
    r, g, b = VIRIDIS[round(float(np.clip(fraction, 0, 1)) * 255)]
    return QColor(int(r), int(g), int(b))


def channel_colour(index: int) -> QColor:
    return CHANNEL_COLOURS[index % len(CHANNEL_COLOURS)]


def scale_ticks(low: float, high: float, count: int = 5) -> tuple[tuple[float, str], ...]:
    """`count` evenly spaced values from `low` to `high`: (fraction along the scale, label)."""
    return tuple(
        (fraction, f"{low + fraction * (high - low):.3g}")
        for fraction in np.linspace(0, 1, count).tolist()
    )
