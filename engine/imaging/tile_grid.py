"""Tile layouts and blending weights for running models on overlapping tiles.

Pure maths (numpy only), shared by the latent tiles of the denoiser, the VAE tiles and the
degradation-remover tiles. A layout covers a length with tiles of a fixed size: tiles start
every `tile - overlap` and the last one is moved back so that it ends flush with the edge
(as in the published DreamClear sampler). Results are blended with a separable gaussian
that is high in the middle of a tile and nearly zero at its border, so seams fade out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PUBLISHED_GAUSSIAN_VAR = 0.01
"""Variance of the published tile gaussian, in units of the tile size squared."""


@dataclass(frozen=True)
class TileBox:
    """One tile of a 2-D grid, in the units of the grid (latent cells or pixels)."""

    top: int
    left: int
    height: int
    width: int

    @property
    def bottom(self) -> int:
        return self.top + self.height

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def slices(self) -> tuple[slice, slice]:
        """(rows, columns) slices selecting this tile from a (..., H, W) array."""
        return slice(self.top, self.bottom), slice(self.left, self.right)

    def scaled(self, factor: int) -> TileBox:
        """The same tile in a grid `factor` times finer (e.g. latent -> pixels)."""
        return TileBox(
            self.top * factor, self.left * factor, self.height * factor, self.width * factor
        )


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size `tile` covering [0, length), ascending.

    Consecutive tiles overlap by at least `overlap`; the last tile ends exactly at `length`.
    When the length fits one tile the answer is [0] (the caller clips the tile to the length).
    """
    if length <= 0:
        raise ValueError(f"length must be positive, got {length}")
    if tile <= 0:
        raise ValueError(f"tile size must be positive, got {tile}")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile size), got {overlap} for tile {tile}")
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = [0]
    while starts[-1] + tile < length:
        starts.append(min(starts[-1] + stride, length - tile))
    return starts


def tile_grid(height: int, width: int, tile: int | tuple[int, int], overlap: int) -> list[TileBox]:
    """Row-major tiles covering a (height, width) grid.

    Each tile is `tile` x `tile` (or `tile` = (tile height, tile width)), clipped to the grid
    on an axis shorter than the tile.
    """
    tile_h, tile_w = (tile, tile) if isinstance(tile, int) else tile
    tile_h, tile_w = min(tile_h, height), min(tile_w, width)
    overlap_h, overlap_w = min(overlap, tile_h - 1), min(overlap, tile_w - 1)
    return [
        TileBox(top, left, tile_h, tile_w)
        for top in tile_starts(height, tile_h, overlap_h)
        for left in tile_starts(width, tile_w, overlap_w)
    ]


def gaussian_weights_1d(length: int, var: float = PUBLISHED_GAUSSIAN_VAR) -> np.ndarray:
    """Gaussian over `length` cells, centred, with variance `var` x length^2 (float64)."""
    mid = (length - 1) / 2
    x = (np.arange(length, dtype=np.float64) - mid) / length
    return np.exp(-(x * x) / (2 * var)) / math.sqrt(2 * math.pi * var)


def gaussian_weights(height: int, width: int, var: float = PUBLISHED_GAUSSIAN_VAR) -> np.ndarray:
    """(height, width) float64 blending weights: outer product of two 1-D gaussians.

    The published code centres the row gaussian at height/2 instead of (height-1)/2, half a
    cell off; we centre both axes so the weights are symmetric (the difference is below 1%).
    """
    return np.outer(gaussian_weights_1d(height, var), gaussian_weights_1d(width, var))
