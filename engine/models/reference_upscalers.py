"""Published upscaler architectures as spandrel builds them, with random weights.

For the speed reference (`dreamclear bench speed`: the size of the network, not its weights,
sets its speed) and for tests of bring-your-own upscalers (tiny sizes, saved as a user's
file would be). Defaults are the published sizes:

- Compact: Real-ESRGAN's SRVGGNetCompact as in realesr-general-x4v3 (64 features, 32 convs);
- RRDBNet: Real-ESRGAN's RealESRGAN_x4plus (64 features, 23 RRDB blocks);
- SwinIR: a small SwinIR (the lightweight SR layout, pixel-shuffle upsampler).
"""

from __future__ import annotations

from pathlib import Path

import torch
from spandrel.architectures.Compact import Compact
from spandrel.architectures.ESRGAN import ESRGAN
from spandrel.architectures.SwinIR import SwinIR
from torch import nn

ARCHITECTURES = ("compact", "rrdbnet", "swinir")


def build_compact(num_feat: int = 64, num_conv: int = 32, scale: int = 4) -> nn.Module:
    return Compact(num_feat=num_feat, num_conv=num_conv, upscale=scale).eval()


def build_rrdbnet(num_feat: int = 64, num_block: int = 23, scale: int = 4) -> nn.Module:
    return ESRGAN(num_filters=num_feat, num_blocks=num_block, scale=scale).eval()


def build_swinir(
    embed_dim: int = 60, depth: int = 6, stages: int = 4, window_size: int = 8, scale: int = 4
) -> nn.Module:
    return SwinIR(
        img_size=64,
        embed_dim=embed_dim,
        depths=[depth] * stages,
        num_heads=[max(1, embed_dim // 30)] * stages,
        window_size=window_size,
        mlp_ratio=2.0,
        upscale=scale,
        upsampler="pixelshuffledirect",
    ).eval()


def save_upscaler(model: nn.Module, path: Path) -> Path:
    """Write `model`'s state dict as a user's file would be: .safetensors or a .pth pickle of
    plain tensors (under "params_ema", as Real-ESRGAN's releases do)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, path)
    else:
        torch.save({"params_ema": state}, path)
    return path


TINY_UPSCALERS = {
    "compact-x4": (lambda: build_compact(num_feat=8, num_conv=2, scale=4), 4),
    "rrdbnet-x2": (lambda: build_rrdbnet(num_feat=8, num_block=1, scale=2), 2),
    "swinir-x2": (lambda: build_swinir(embed_dim=12, depth=1, stages=1, window_size=4, scale=2), 2),
}
"""Tiny random upscalers for tests: name -> (builder, native scale)."""


def tiny_upscaler(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return TINY_UPSCALERS[name][0]()
