"""Run an image-to-image function on overlapping tiles and blend the results.

Used by the tiled VAE (encode: pixels -> latents, decode: latents -> pixels) and the tiled
degradation remover (pixels -> pixels). The grid is laid out in a coarse unit common to input
and output (a latent cell for the VAE, a pixel for the remover), so every input tile maps to
an exact output box; results are blended with the gaussian weights of `tile_grid`.
Peak memory is that of one tile plus the output-sized accumulators.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from engine.imaging.tile_grid import TileBox, gaussian_weights, tile_grid

TileFn = Callable[[torch.Tensor], torch.Tensor]
OnTile = Callable[[int, int], None]
OnGrid = Callable[[list[TileBox]], None]
Partial = Callable[[torch.Tensor], torch.Tensor]
"""`partial(fill)`: the blended result so far, `fill` (the output's shape) where no tile is."""
OnPartial = Callable[[Partial], None]


def apply_tiled(
    fn: TileFn,
    x: torch.Tensor,
    *,
    tile: int | tuple[int, int],
    overlap: int,
    in_unit: int = 1,
    out_unit: int = 1,
    out_channels: int | None = None,
    on_tile: OnTile | None = None,
    on_grid: OnGrid | None = None,
    on_partial: OnPartial | None = None,
) -> torch.Tensor:
    """Blend `fn` applied to overlapping tiles of `x` (B, C, H, W).

    Args:
        fn: maps a (B, C, h, w) tile to (B, C', h * out_unit / in_unit, w * out_unit / in_unit).
        tile, overlap: tile size (a side, or (height, width)) and minimum overlap in coarse
            units.
        in_unit, out_unit: size of one coarse unit in input and output cells; the input
            sides must be multiples of `in_unit`.
        out_channels: C' (defaults to C).
        on_tile: called with (tile index starting at 1, number of tiles) after each tile.
        on_grid: called once, before the first tile, with the tiles in coarse units (a single
            box covering `x` when it fits one tile).
        on_partial: called after each tile (before `on_tile`) with a `Partial`, for previews;
            computing it costs one output-sized division, so call it only when needed.
    Returns:
        (B, C', H * out_unit / in_unit, W * out_unit / in_unit) float32.
    """
    batch, channels, height, width = x.shape
    if height % in_unit or width % in_unit:
        raise ValueError(f"input size {height}x{width} is not a multiple of {in_unit}")
    grid_h, grid_w = height // in_unit, width // in_unit
    boxes = tile_grid(grid_h, grid_w, tile, overlap)
    if on_grid is not None:
        on_grid(boxes)
    out_c = channels if out_channels is None else out_channels
    out_shape = (batch, out_c, grid_h * out_unit, grid_w * out_unit)

    if len(boxes) == 1:
        result = fn(x).to(device=x.device, dtype=torch.float32)
        if on_partial is not None:
            on_partial(lambda fill: result)
        if on_tile is not None:
            on_tile(1, 1)
        return result

    accum = torch.zeros(out_shape, dtype=torch.float32, device=x.device)
    total = torch.zeros(out_shape[-2:], dtype=torch.float32, device=x.device)
    weight_cache: dict[tuple[int, int], torch.Tensor] = {}
    for index, box in enumerate(boxes, start=1):
        rows_in, cols_in = box.scaled(in_unit).slices
        out_box: TileBox = box.scaled(out_unit)
        rows_out, cols_out = out_box.slices
        size = (out_box.height, out_box.width)
        if size not in weight_cache:
            weight_cache[size] = torch.from_numpy(gaussian_weights(*size)).float().to(x.device)
        weight = weight_cache[size]
        out = fn(x[..., rows_in, cols_in]).to(device=x.device, dtype=torch.float32)
        accum[..., rows_out, cols_out] += out * weight
        total[rows_out, cols_out] += weight
        if on_partial is not None:
            on_partial(lambda fill: torch.where(total > 0, accum / total.clamp(min=1e-30), fill))
        if on_tile is not None:
            on_tile(index, len(boxes))
    return accum / total
