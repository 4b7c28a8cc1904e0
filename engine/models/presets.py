"""Configurations of `DreamClearTransformer2DModel`, as plain dicts (spandrel-style registry values)."""

from __future__ import annotations

from typing import Any

__all__ = ["DREAMCLEAR_1024", "TINY"]

DREAMCLEAR_1024: dict[str, Any] = {
    "sample_size": 128,
    "patch_size": 2,
    "in_channels": 4,
    "out_channels": 8,
    "num_layers": 28,
    "num_attention_heads": 16,
    "attention_head_dim": 72,
    "caption_channels": 4096,
    "caption_max_length": 120,
    "interpolation_scale": 2.0,
    "norm_eps": 1e-6,
    "attention_bias": True,
    "activation_fn": "gelu-approximate",
    "num_control_layers": 28,
    "num_experts": 3,
    "router_hidden_per_expert": 8,
    "modulator_hidden_dim": None,
    "degradation_attention_heads": 16,
    "degradation_norm_eps": 1e-5,
    "size_condition_height": 1024.0,
    "size_condition_width": 1024.0,
    "aspect_ratio_condition": 1.0,
}
"""The published DreamClear-1024 model (PixArt-alpha XL/2 1024-MS base), about 2.21 B parameters."""

TINY: dict[str, Any] = {
    **DREAMCLEAR_1024,
    # D = 48: divisible by 3 (size conditioning), 4 (2-D sin-cos) and both head counts.
    "sample_size": 16,
    "num_layers": 2,
    "num_attention_heads": 2,
    "attention_head_dim": 24,
    "caption_channels": 32,
    "caption_max_length": 16,
    "interpolation_scale": 1.0,
    "num_control_layers": 2,
    "degradation_attention_heads": 2,
}
"""About 0.33 M parameters with every part of the real model, for tests and benchmarks."""
