"""The per-token degradation map beside a result (`<result>.map.npz`), as colours and values.

Two kinds of map come out of the engine (engine/restore_files.py `save_degradation_map`):
- "dreamclear": `router` (blocks, th, tw, 3) MoAM router weights over 3 experts (they sum to 1)
  and `magnitude` (blocks, th, tw) degradation-feature magnitude, per MoAM block.
- "starter": `strengths` (C, th, tw) in [0, 1] with `channels` names (blur, noise, jpeg, scale),
  and, when the model's estimator was measured, `spearman` (C,) and `min_spearman`: a channel
  read worse than that is not offered (its map would be noise), and the legend says why.

The tokens cover the whole result: the map is made on the working image, which the engine
resizes to exactly the output size, so token (row, col) spans output pixels
[row * H / th, (row + 1) * H / th) x [col * W / tw, (col + 1) * W / tw).

Read with numpy only (no pickles): the desktop never imports the engine's internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtGui import QColor, QImage

from desktop.ui.map_colours import (
    EXPERT_COLOURS,
    VIRIDIS,
    channel_colour,
    colormap_colour,
    scale_ticks,
)

AVERAGE = "average"
"""`block` value for the mean over all MoAM blocks."""

ROUTER, MAGNITUDE, MIX = "router", "magnitude", "mix"
"""Layers: DreamClear maps show `ROUTER` (RGB) or `MAGNITUDE`; starter maps `MIX` (each token
in the colour of its strongest channel, as solid as that channel is strong) or one channel."""


@dataclass(frozen=True)
class Legend:
    """What the heatmap's colours mean: `entries` [(colour, meaning)].

    `colormap`: the colours are one value on the viridis scale; entries run from its low to its
    high end and `ticks` [(fraction along the scale, value)] mark values along it.
    `ramp_from`: each entry's colour is a channel's, blended from this colour (value 0) to the
    entry's own (value 1); None: plain swatches."""

    title: str
    entries: list[tuple[QColor, str]]
    colormap: bool
    ticks: tuple[tuple[float, str], ...] = ()
    ramp_from: QColor | None = None
    note: str = ""
    """What the map leaves out and why (the legend's tooltip); empty when nothing is."""


class DegradationMap:
    """One `.map.npz`: its values per token, and views of them as colours.

    `block` is "average" or a block index (DreamClear maps; starter maps have one "block").
    `layer` is "router" or "magnitude" (DreamClear), "mix" or a channel name (starter).
    """

    def __init__(self, arrays: dict[str, np.ndarray], source: str = ""):
        self.source = source
        if "router" in arrays and "magnitude" in arrays:
            self.kind = "dreamclear"
            self.router = np.asarray(arrays["router"], dtype=np.float32)
            self.magnitude = np.asarray(arrays["magnitude"], dtype=np.float32)
            if self.router.ndim != 4 or self.router.shape[-1] != 3:
                raise ValueError(f"{source}: router weights should be (blocks, th, tw, 3)")
            self.num_blocks = self.router.shape[0]
            self.grid_shape = tuple(self.router.shape[1:3])
            self.channels: tuple[str, ...] = ()
            self.shown: tuple[str, ...] = ()
            self.hidden: dict[str, str] = {}
            self.layers = (ROUTER, MAGNITUDE)
        elif "strengths" in arrays:
            self.kind = "starter"
            self.strengths = np.asarray(arrays["strengths"], dtype=np.float32)
            if self.strengths.ndim != 3:
                raise ValueError(f"{source}: strengths should be (channels, th, tw)")
            names = arrays.get("channels")
            count = self.strengths.shape[0]
            self.channels = (
                tuple(str(name) for name in names)
                if names is not None
                else tuple(f"channel {i + 1}" for i in range(count))
            )
            self.num_blocks = 1
            self.grid_shape = tuple(self.strengths.shape[1:3])
            self.hidden = _unreliable_channels(self.channels, arrays)
            self.shown = tuple(c for c in self.channels if c not in self.hidden)
            self.layers = (MIX, *self.shown) if len(self.shown) >= 2 else self.shown
        else:
            raise ValueError(
                f"{source or 'map'} is not a degradation map (it has {sorted(arrays)}); "
                "open the .map.npz written beside a result"
            )
        self.token_size_px = int(arrays.get("token_size_px", 0))

    @classmethod
    def load(cls, path: str | Path) -> DegradationMap:
        """Read a `.map.npz`; a missing, corrupt or foreign file raises ValueError that says so."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError) as error:
            raise ValueError(
                f"cannot read the degradation map {path}: {error}; restore the image again "
                "with maps turned on to rewrite it"
            ) from error
        return cls(arrays, str(path))

    @property
    def default_layer(self) -> str:
        return self.layers[0]

    def _check(self, block: str | int, layer: str) -> None:
        if layer not in self.layers:
            raise ValueError(f"layer {layer!r} is not one of {self.layers} for a {self.kind} map")
        if block != AVERAGE and not (isinstance(block, int) and 0 <= block < self.num_blocks):
            raise ValueError(
                f"block should be 'average' or 0..{self.num_blocks - 1}, not {block!r}"
            )

    def _router(self, block: str | int) -> np.ndarray:
        return self.router.mean(axis=0) if block == AVERAGE else self.router[block]

    def _magnitude(self, block: str | int) -> np.ndarray:
        return self.magnitude.mean(axis=0) if block == AVERAGE else self.magnitude[block]

    def _one_channel(self, block: str | int, layer: str) -> tuple[np.ndarray, float, float]:
        """A one-value view with the range its colours span (starter strengths are 0..1)."""
        if layer == MAGNITUDE:
            values = self._magnitude(block)
            low, high = float(values.min()), float(values.max())
            return values, low, high if high > low else low + 1.0
        return self.strengths[self.channels.index(layer)], 0.0, 1.0

    def rgba(self, block: str | int = AVERAGE, layer: str | None = None) -> np.ndarray:
        """(th, tw, 4) uint8 colours of one view (alpha 255; the view sets the opacity)."""
        layer = layer or self.default_layer
        self._check(block, layer)
        th, tw = self.grid_shape
        out = np.full((th, tw, 4), 255, dtype=np.uint8)
        if layer == ROUTER:
            out[..., :3] = np.round(np.clip(self._router(block), 0, 1) * 255).astype(np.uint8)
        elif layer == MIX:
            rows = self._shown_rows()
            strengths = self.strengths[rows]
            strongest = np.asarray(rows)[strengths.argmax(axis=0)]
            palette = np.array([channel_colour(i).getRgb()[:3] for i in range(len(self.channels))])
            out[..., :3] = palette[strongest]
            out[..., 3] = np.round(np.clip(strengths.max(axis=0), 0, 1) * 255)
        else:
            values, low, high = self._one_channel(block, layer)
            index = np.round(np.clip((values - low) / (high - low), 0, 1) * 255).astype(np.intp)
            out[..., :3] = VIRIDIS[index]
        return out

    def image(self, block: str | int = AVERAGE, layer: str | None = None) -> QImage:
        """The view as a th x tw QImage, one pixel per token."""
        rgba = np.ascontiguousarray(self.rgba(block, layer))
        th, tw = self.grid_shape
        return QImage(rgba.data, tw, th, 4 * tw, QImage.Format.Format_RGBA8888).copy()

    def values_at(self, row: int, col: int, block: str | int = AVERAGE) -> dict:
        """Everything stored for one token, as plain floats."""
        values: dict = {"row": row, "col": col}
        if self.kind == "dreamclear":
            values["block"] = block
            values["router"] = [float(v) for v in self._router(block)[row, col]]
            values["magnitude"] = float(self._magnitude(block)[row, col])
        else:
            for name, plane in zip(self.channels, self.strengths, strict=True):
                if name not in self.hidden:
                    values[name] = float(plane[row, col])
        return values

    def _shown_rows(self) -> list[int]:
        return [self.channels.index(name) for name in self.shown]

    @property
    def note(self) -> str:
        """Why channels are left out, one line each ("" when none is)."""
        return "\n".join(f"{name} not shown: {why}" for name, why in self.hidden.items())

    def legend(self, block: str | int = AVERAGE, layer: str | None = None) -> Legend:
        layer = layer or self.default_layer
        self._check(block, layer)
        where = "averaged over blocks" if block == AVERAGE else f"block {block}"
        if layer == ROUTER:
            entries = [(EXPERT_COLOURS[i], f"expert {i + 1} router weight") for i in range(3)]
            title = f"MoAM router weights (0 to 1, summing to 1), {where}"
            return Legend(title, entries, colormap=False, ramp_from=QColor(0, 0, 0))
        if layer == MIX:
            entries = [
                (channel_colour(i), f"{self.channels[i]}: {self._summary(self.strengths[i])}")
                for i in self._shown_rows()
            ]
            title = "Strongest degradation per token: its colour, clear (0) to solid (1)"
            return Legend(
                title, entries, colormap=False, ramp_from=QColor(0, 0, 0, 0), note=self.note
            )
        values, low, high = self._one_channel(block, layer)
        if layer == MAGNITUDE:
            title = f"Degradation magnitude, {where}"
            entries = [
                (colormap_colour(0), f"magnitude {low:.3g} (lowest here)"),
                (colormap_colour(1), f"magnitude {high:.3g} (highest here)"),
            ]
        else:
            title = f"Estimated {layer} strength ({self._summary(values)})"
            entries = [
                (colormap_colour(0), f"{layer} strength 0 (none)"),
                (colormap_colour(1), f"{layer} strength 1 (strongest)"),
            ]
        return Legend(title, entries, colormap=True, ticks=scale_ticks(low, high), note=self.note)

    @staticmethod
    def _summary(values: np.ndarray) -> str:
        return f"here {values.min():.2f} to {values.max():.2f}, mean {values.mean():.2f}"

    def describe(self, values: dict) -> str:
        """One line for the hover read-out."""
        head = f"token {values['row']}, {values['col']}"
        if self.kind == "dreamclear":
            router = " / ".join(f"{w:.2f}" for w in values["router"])
            return f"{head}: experts {router}, magnitude {values['magnitude']:.3g}"
        parts = ", ".join(f"{name} {values[name]:.2f}" for name in self.shown)
        return f"{head}: {parts}"


def _unreliable_channels(channels: tuple[str, ...], arrays: dict[str, np.ndarray]) -> dict:
    """Channel -> why it is not shown, from the map's `spearman` and `min_spearman` (written
    from the model's measured numbers); nothing is hidden in a map without them."""
    if "spearman" not in arrays or "min_spearman" not in arrays:
        return {}
    measured = np.asarray(arrays["spearman"], dtype=np.float64).reshape(-1)
    bar = float(np.asarray(arrays["min_spearman"]))
    if measured.shape[0] != len(channels):
        return {}
    hidden = {}
    for name, value in zip(channels, measured, strict=True):
        if not np.isfinite(value) or value < bar:
            read = "was not measured" if not np.isfinite(value) else f"scored {value:.2f}"
            hidden[name] = (
                f"the model's estimator reads it too poorly to map (Spearman rank "
                f"correlation with the true strength {read}, below {bar:g}; the map would be "
                "mostly noise)"
            )
    return hidden
