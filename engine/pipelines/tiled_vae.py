"""Tiled VAE encode and decode, so peak memory stays nearly flat as images grow.

Encode: image (B, 3, H, W) in [0, 1] -> latent (B, 4, H/8, W/8) = posterior mode x the VAE's
scaling factor (0.18215 for SD's VAE), as published. Decode: the inverse, to [0, 1]
unclamped. Tiles are `tile_size` pixels with `tile_overlap` pixels of overlap (both
multiples of 8), blended with gaussian weights; an image that fits one tile takes the
untiled path and gives exactly the untiled result. GroupNorm statistics are per tile, so a
tiled result differs slightly from the untiled one. The VAE runs in its own dtype (keep it
fp32); inputs are cast to it and results come back as float32.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL

from engine.devices import execution_device
from engine.pipelines.tiled_apply import OnPartial, OnTile, apply_tiled

VAE_DOWNSAMPLE = 8
DEFAULT_VAE_TILE = 1024
"""Pixels; the published 1024 x 1024 working size is decoded in one piece, like the paper."""


def default_vae_overlap(tile_size: int) -> int:
    """A quarter of the tile, rounded down to a multiple of 8."""
    return (tile_size // 4) // VAE_DOWNSAMPLE * VAE_DOWNSAMPLE


def _check_tiling(tile_size: int, tile_overlap: int) -> None:
    if tile_size % VAE_DOWNSAMPLE or tile_overlap % VAE_DOWNSAMPLE:
        raise ValueError(
            f"VAE tile size and overlap must be multiples of {VAE_DOWNSAMPLE} pixels, "
            f"got {tile_size} and {tile_overlap}"
        )


def _scaling_factor(vae: AutoencoderKL) -> float:
    return float(vae.config.scaling_factor)


@torch.no_grad()
def encode_tiled(
    vae: AutoencoderKL,
    image: torch.Tensor,
    tile_size: int = DEFAULT_VAE_TILE,
    tile_overlap: int | None = None,
    on_tile: OnTile | None = None,
) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> (B, 4, H/8, W/8) float32 scaled latent (posterior mode)."""
    tile_overlap = default_vae_overlap(tile_size) if tile_overlap is None else tile_overlap
    _check_tiling(tile_size, tile_overlap)
    scale = _scaling_factor(vae)
    # The dtype of the weights, the device they compute on (offloaded weights sit elsewhere).
    device, dtype = execution_device(vae), next(vae.parameters()).dtype

    def encode(pixels: torch.Tensor) -> torch.Tensor:
        pixels = (2.0 * pixels - 1.0).to(device=device, dtype=dtype)
        return vae.encode(pixels).latent_dist.mode() * scale

    return apply_tiled(
        encode,
        image,
        tile=tile_size // VAE_DOWNSAMPLE,
        overlap=tile_overlap // VAE_DOWNSAMPLE,
        in_unit=VAE_DOWNSAMPLE,
        out_unit=1,
        out_channels=vae.config.latent_channels,
        on_tile=on_tile,
    )


@torch.no_grad()
def decode_tiled(
    vae: AutoencoderKL,
    latent: torch.Tensor,
    tile_size: int = DEFAULT_VAE_TILE,
    tile_overlap: int | None = None,
    on_tile: OnTile | None = None,
    on_partial: OnPartial | None = None,
) -> torch.Tensor:
    """(B, 4, h, w) scaled latent -> (B, 3, 8h, 8w) float32 image in about [0, 1].

    `on_partial` (for previews) is passed to `apply_tiled`."""
    tile_overlap = default_vae_overlap(tile_size) if tile_overlap is None else tile_overlap
    _check_tiling(tile_size, tile_overlap)
    scale = _scaling_factor(vae)
    device, dtype = execution_device(vae), next(vae.parameters()).dtype

    def decode(z: torch.Tensor) -> torch.Tensor:
        z = (z / scale).to(device=device, dtype=dtype)
        return (vae.decode(z).sample.float() + 1.0) / 2.0

    return apply_tiled(
        decode,
        latent,
        tile=tile_size // VAE_DOWNSAMPLE,
        overlap=tile_overlap // VAE_DOWNSAMPLE,
        in_unit=1,
        out_unit=VAE_DOWNSAMPLE,
        out_channels=vae.config.out_channels,
        on_tile=on_tile,
        on_partial=on_partial,
    )
