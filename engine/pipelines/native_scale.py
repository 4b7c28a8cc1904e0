"""Run an upscaling network at its native scale in tiles of the input: the shared core of the
user's upscalers (`UpscalerRestorePipeline`) and the v2 starter (`StarterRestorePipeline`).

The grid is laid out in input pixels (every convolution of such a network runs on the small
input, so its cost follows the input's area); each output tile is blended as every tiled stage
(`apply_tiled`). Tiles are capped in output pixels, so a job stops soon after it is asked to
on a 2-core CPU, and the out-of-memory retry halves them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from engine.imaging.tile_fit import fit_tiles
from engine.imaging.tile_grid import TileBox
from engine.pipelines.strength import upscale_input
from engine.pipelines.tiled_apply import OnPartial, OnTile, TileFn, apply_tiled


def upscale_tiled(
    fn: TileFn,
    image: torch.Tensor,
    *,
    scale: int,
    max_tile: int,
    min_tile: int,
    overlap: int,
    grid_factor: float | None = None,
    on_tile: OnTile | None = None,
    on_grid: Callable[[list[TileBox]], None] | None = None,
    on_partial: OnPartial | None = None,
    out_channels: int | None = None,
) -> torch.Tensor:
    """`fn` (a tile (1, 3, h, w) -> (1, C, h * scale, w * scale)) over `image` in tiles.

    `max_tile`, `min_tile` and `overlap` are in output pixels; `on_grid` gets the tiles in the
    pixels of the final result (for the client's tile overlay): the input's times
    `grid_factor` (default `scale`; the asked upscale when the result is resampled to it).
    Returns (1, C, H * scale, W * scale); C is `out_channels`, or the input's (3).
    The same arguments give the same tiles, so two passes blend alike.
    """
    in_h, in_w = image.shape[-2:]
    max_in = max(8, max_tile // scale)
    overlap_in = max(1, min(overlap // scale, max_in // 8))
    tile = fit_tiles(
        in_h, in_w, max_tile=max_in, min_tile=min(max_in, min_tile // scale), overlap=overlap_in
    )
    return apply_tiled(
        fn,
        image,
        tile=tile,
        overlap=overlap_in,
        in_unit=1,
        out_unit=scale,
        on_tile=on_tile,
        on_grid=(
            (lambda boxes: on_grid([_scaled(box, grid_factor or scale) for box in boxes]))
            if on_grid
            else None
        ),
        on_partial=on_partial,
        out_channels=out_channels,
    )


def resized(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """`image` at exactly `size` (bicubic with antialias when it is not already)."""
    return image if tuple(image.shape[-2:]) == size else upscale_input(image, size)


def _scaled(box: TileBox, factor: float) -> TileBox:
    top, left = round(box.top * factor), round(box.left * factor)
    return TileBox(top, left, round(box.bottom * factor) - top, round(box.right * factor) - left)
