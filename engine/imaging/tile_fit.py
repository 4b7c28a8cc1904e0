"""Choosing tile sizes that cover an image with little overlap: small tiles (so a job can stop
between them) without paying for them twice.

A grid of `tile_grid` repeats the cells where tiles overlap, and its last tile is moved back
flush with the edge, which can repeat most of a tile. `fit_tiles` picks the tile height and
width separately: for each axis it tries every side from the largest allowed down and keeps
the one that repeats least (ties: the larger side, fewer tiles). Pure maths, like `tile_grid`.
"""

from __future__ import annotations

from engine.imaging.tile_grid import tile_starts

OVERHEAD_RESOLUTION = 0.01
"""Overheads closer than this count as equal, so a larger tile wins over a tiny saving."""


def axis_overhead(length: int, tile: int, overlap: int) -> float:
    """Cells computed along one axis relative to `length` (>= 1)."""
    tile = min(tile, length)
    return len(tile_starts(length, tile, min(overlap, tile - 1))) * tile / length


def tiles_overhead(height: int, width: int, tile: tuple[int, int], overlap: int) -> float:
    """The work of a tiled run relative to one pass: sum of tile areas / image area (>= 1)."""
    return axis_overhead(height, tile[0], overlap) * axis_overhead(width, tile[1], overlap)


def fit_side(length: int, *, max_tile: int, min_tile: int, overlap: int, multiple: int) -> int:
    """The side in [min_tile, max_tile], a multiple of `multiple`, that repeats least of
    `length`; `max_tile` when the length fits one tile."""
    if length <= max_tile:
        return max_tile
    top = max_tile - max_tile % multiple
    candidates = range(top, max(min_tile, overlap + multiple) - 1, -multiple)

    def cost(tile: int) -> tuple[int, int]:
        return (round(axis_overhead(length, tile, overlap) / OVERHEAD_RESOLUTION), -tile)

    return min(candidates, key=cost)


def fit_tiles(
    height: int, width: int, *, max_tile: int, min_tile: int, overlap: int, multiple: int = 1
) -> tuple[int, int]:
    """(tile height, tile width) for a (height, width) grid; see the module docstring."""
    fit = {"max_tile": max_tile, "min_tile": min_tile, "overlap": overlap, "multiple": multiple}
    return fit_side(height, **fit), fit_side(width, **fit)
