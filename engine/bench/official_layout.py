"""Random checkpoints in the published DreamClear/PixArt key layout, of any size.

For tests (tiny) and the conversion benchmark (hundreds of MB): the official files cannot be
downloaded there. Key layout: shared/reference/dreamclear.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class OfficialLayout:
    hidden: int
    """Must match a preset's hidden size (48, 1152) or be a multiple of 72 (PixArt's head)."""
    layers: int
    experts: int = 3
    patch: int = 2
    caption_channels: int = 4096
    caption_length: int = 120
    base_size: int = 64
    """Tokens per side of the positional-embedding table (dropped by the conversion)."""


def _linear(shapes: dict, name: str, fan_in: int, fan_out: int) -> None:
    shapes[f"{name}.weight"] = (fan_out, fan_in)
    shapes[f"{name}.bias"] = (fan_out,)


def _pixart_block_shapes(shapes: dict, prefix: str, d: int) -> None:
    _linear(shapes, f"{prefix}attn.qkv", d, 3 * d)
    _linear(shapes, f"{prefix}attn.proj", d, d)
    _linear(shapes, f"{prefix}cross_attn.q_linear", d, d)
    _linear(shapes, f"{prefix}cross_attn.kv_linear", d, 2 * d)
    _linear(shapes, f"{prefix}cross_attn.proj", d, d)
    _linear(shapes, f"{prefix}mlp.fc1", d, 4 * d)
    _linear(shapes, f"{prefix}mlp.fc2", 4 * d, d)
    shapes[f"{prefix}scale_shift_table"] = (6, d)


def pixart_shapes(layout: OfficialLayout, prefix: str = "") -> dict[str, tuple[int, ...]]:
    d, p = layout.hidden, layout.patch
    shapes: dict[str, tuple[int, ...]] = {
        f"{prefix}x_embedder.proj.weight": (d, 4, p, p),
        f"{prefix}x_embedder.proj.bias": (d,),
        f"{prefix}y_embedder.y_embedding": (layout.caption_length, layout.caption_channels),
        f"{prefix}final_layer.scale_shift_table": (2, d),
        f"{prefix}pos_embed": (1, layout.base_size**2, d),
    }
    _linear(shapes, f"{prefix}t_embedder.mlp.0", 256, d)
    _linear(shapes, f"{prefix}t_embedder.mlp.2", d, d)
    _linear(shapes, f"{prefix}t_block.1", d, 6 * d)
    for name in ("csize_embedder", "ar_embedder"):
        _linear(shapes, f"{prefix}{name}.mlp.0", 256, d // 3)
        _linear(shapes, f"{prefix}{name}.mlp.2", d // 3, d // 3)
    _linear(shapes, f"{prefix}y_embedder.y_proj.fc1", layout.caption_channels, d)
    _linear(shapes, f"{prefix}y_embedder.y_proj.fc2", d, d)
    _linear(shapes, f"{prefix}final_layer.linear", d, p * p * 8)
    for i in range(layout.layers):
        _pixart_block_shapes(shapes, f"{prefix}blocks.{i}.", d)
    return shapes


def _modulator_shapes(shapes: dict, prefix: str, d: int) -> None:
    _linear(shapes, f"{prefix}shared_proj", d, d // 2)
    _linear(shapes, f"{prefix}proj_add", d // 2, d)
    _linear(shapes, f"{prefix}proj_mul", d // 2, d)


def dreamclear_shapes(layout: OfficialLayout) -> dict[str, tuple[int, ...]]:
    d, p, experts = layout.hidden, layout.patch, layout.experts
    shapes = pixart_shapes(layout, "base_model.")
    for branch in ("lq", "pre"):
        shapes[f"c_embedder_{branch}.proj.weight"] = (d, 4, p, p)
        shapes[f"c_embedder_{branch}.proj.bias"] = (d,)
        shapes[f"x_embedder_{branch}.proj.weight"] = (d, 4, p, p)
        shapes[f"x_embedder_{branch}.proj.bias"] = (d,)
        for i in range(layout.layers):
            _pixart_block_shapes(shapes, f"controlnet_{branch}.{i}.copied_block.", d)
    for i in range(layout.layers):
        for name, (fan_in, fan_out) in {
            "q_linear": (d, d),
            "kv_linear": (d, 2 * d),
            "proj": (d, d),
            "de_proj": (d, d),
        }.items():
            _linear(shapes, f"cross_de.{i}.{name}", fan_in, fan_out)
        for norm in ("norm1", "norm2"):
            shapes[f"cross_de.{i}.{norm}.weight"] = (d,)
            shapes[f"cross_de.{i}.{norm}.bias"] = (d,)
        _modulator_shapes(shapes, f"am_pre.{i}.", d)
        for expert in range(experts):
            _modulator_shapes(shapes, f"am_lq.{i}.experts.{expert}.", d)
        _linear(shapes, f"am_lq.{i}.gate.0", d, experts * 8)
        _linear(shapes, f"am_lq.{i}.gate.2", experts * 8, experts)
    return shapes


def randomize(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    """Random non-zero fp32 values everywhere, scaled so a forward pass stays finite."""
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in shapes.items():
        tensor = torch.randn(shape, generator=generator)
        if key.endswith("norm1.weight") or key.endswith("norm2.weight"):
            tensor = 1 + 0.1 * tensor
        elif len(shape) >= 2 and "pos_embed" not in key and "y_embedding" not in key:
            tensor = tensor / math.prod(shape[1:]) ** 0.5
        else:
            tensor = 0.1 * tensor
        out[key] = tensor
    return out
