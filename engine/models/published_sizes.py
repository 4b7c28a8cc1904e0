"""The published DreamClear modules at their real sizes, randomly initialised.

No weights can be downloaded on a build machine, yet memory and speed at the published size
must be measured: these builders give the same architectures as the official files (see
docs/model-folder.md) with random weights, for benchmarks only.
"""

from __future__ import annotations

from diffusers import AutoencoderKL
from spandrel.architectures.SwinIR import SwinIR

from engine.models.dreamclear_transformer import DreamClearTransformer2DModel
from engine.models.presets import DREAMCLEAR_1024

__all__ = [
    "build_published_remover",
    "build_published_transformer",
    "build_published_vae",
    "diffbir_swinir",
    "sd_vae",
]


def build_published_transformer() -> DreamClearTransformer2DModel:
    """DreamClear-1024 (PixArt-alpha XL/2 base + ControlFormer + MoAM), about 2.21 B params."""
    return DreamClearTransformer2DModel(**DREAMCLEAR_1024)


def sd_vae(
    block_out_channels: tuple[int, ...], layers_per_block: int, norm_num_groups: int
) -> AutoencoderKL:
    """Stable Diffusion's VAE architecture: 4 latent channels, x8 down, scaling 0.18215."""
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * len(block_out_channels),
        up_block_types=("UpDecoderBlock2D",) * len(block_out_channels),
        block_out_channels=block_out_channels,
        layers_per_block=layers_per_block,
        latent_channels=4,
        norm_num_groups=norm_num_groups,
        sample_size=256,
        scaling_factor=0.18215,
    )


def build_published_vae() -> AutoencoderKL:
    """sd-vae-ft-ema's sizes (83.7 M parameters)."""
    return sd_vae((128, 256, 512, 512), layers_per_block=2, norm_num_groups=32)


def diffbir_swinir(embed_dim: int, depths: list[int], num_heads: list[int]) -> SwinIR:
    """DiffBIR v1's degradation-remover architecture: pixel-unshuffle by 8 in, nearest+conv x8
    out (a same-size restorer), window 8, MLP ratio 2, one-conv residual."""
    return SwinIR(
        img_size=64,
        patch_size=1,
        in_chans=3,
        embed_dim=embed_dim,
        depths=depths,
        num_heads=num_heads,
        window_size=8,
        mlp_ratio=2.0,
        drop_path_rate=0.0,
        upscale=8,
        img_range=1.0,
        upsampler="nearest+conv",
        resi_connection="1conv",
        start_unshuffle=8,
    )


def build_published_remover() -> SwinIR:
    """general_swinir_v1.ckpt's sizes (15.8 M parameters)."""
    return diffbir_swinir(embed_dim=180, depths=[6] * 8, num_heads=[6] * 8)
