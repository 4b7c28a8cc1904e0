"""Run the degradation remover (SwinIR) on overlapping pixel tiles.

The remover maps (B, 3, H, W) in [0, 1] to the same size. Tiles of `tile_size` pixels with
`tile_overlap` pixels of overlap are blended with gaussian weights; an image that fits one
tile runs untiled (the published path). Each tile is reflect-padded to a multiple of
`size_multiple` (SwinIR with an 8x pixel-unshuffle and window 8 wants multiples of 64) and
cropped back. The result is clamped to [0, 1], as published.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.devices import execution_device
from engine.pipelines.tiled_apply import OnGrid, OnPartial, OnTile, apply_tiled

DEFAULT_REMOVER_TILE = 1024
REMOVER_SIZE_MULTIPLE = 64


def default_remover_overlap(tile_size: int) -> int:
    return tile_size // 8


@torch.no_grad()
def remove_degradation_tiled(
    remover: nn.Module,
    image: torch.Tensor,
    tile_size: int | tuple[int, int] = DEFAULT_REMOVER_TILE,
    tile_overlap: int | None = None,
    size_multiple: int = REMOVER_SIZE_MULTIPLE,
    on_tile: OnTile | None = None,
    on_grid: OnGrid | None = None,
    on_partial: OnPartial | None = None,
) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> (B, 3, H, W) float32 in [0, 1].

    `on_tile`, `on_grid` and `on_partial` are passed to `apply_tiled`; the grid is in pixels.
    """
    if tile_overlap is None:
        tile_overlap = default_remover_overlap(
            tile_size if isinstance(tile_size, int) else min(tile_size)
        )
    # The dtype of the weights, the device they compute on (offloaded weights sit elsewhere).
    device, dtype = execution_device(remover), next(remover.parameters()).dtype

    def run(pixels: torch.Tensor) -> torch.Tensor:
        height, width = pixels.shape[-2:]
        pad_h, pad_w = (-height) % size_multiple, (-width) % size_multiple
        pixels = pixels.to(device=device, dtype=dtype)
        if pad_h or pad_w:
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            pixels = F.pad(pixels, (0, pad_w, 0, pad_h), mode=mode)
        return remover(pixels)[..., :height, :width]

    out = apply_tiled(
        run,
        image,
        tile=tile_size,
        overlap=tile_overlap,
        on_tile=on_tile,
        on_grid=on_grid,
        on_partial=on_partial,
    )
    return out.clamp_(0.0, 1.0)
