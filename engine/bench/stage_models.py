"""Random DreamClear components for the stage harness, at the published size or tiny.

Nothing is downloaded: the published sizes are built in code (engine/models/published_sizes.py)
with random weights, which time and weigh the same as the real ones. T5-XXL's encoder
(4.76 B parameters) can be built at its real size or replaced by a small random stand-in with
the same output width (4096): text encoding then costs next to nothing and the report says so.
"""

from __future__ import annotations

import contextlib

import torch
from transformers import T5Config, T5EncoderModel

from engine.models.text_encoder import CAPTION_MAX_LENGTH, T5CaptionEncoder
from engine.pipelines.components import RestoreComponents

SIZES = ("published", "tiny")
TEXT_ENCODERS = ("xxl", "small")

T5_XXL = {
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_heads": 64,
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "feed_forward_proj": "gated-gelu",
    "vocab_size": 32128,
}
"""google/t5-v1_1-xxl's encoder, the one DreamClear and PixArt-alpha use."""


def build_t5(kind: str, dtype: torch.dtype = torch.bfloat16) -> T5CaptionEncoder:
    """A random T5 caption encoder on the CPU, 120 tokens x 4096 features.

    "xxl" is built on the meta device and materialised in `dtype` directly (an fp32 build
    would need 19 GB and minutes of initialisation); "small" is a 2-layer stand-in.
    """
    from engine.models.tiny_components import build_tiny_text_encoder

    if kind == "small":
        encoder = build_tiny_text_encoder(T5_XXL["d_model"], CAPTION_MAX_LENGTH)
        encoder.model.to(dtype).eval().requires_grad_(False)
        return encoder
    if kind != "xxl":
        raise ValueError(f"unknown text encoder {kind!r}; use one of {TEXT_ENCODERS}")
    return random_t5(T5Config(**T5_XXL, dropout_rate=0.0, pad_token_id=0, eos_token_id=1), dtype)


def random_t5(config: T5Config, dtype: torch.dtype) -> T5CaptionEncoder:
    """A T5 encoder of `config` made on the meta device and filled with random values."""
    from engine.models.tiny_components import build_tiny_tokenizer

    with torch.device("meta"):
        model = T5EncoderModel(config)
    model = model.to(dtype=dtype).to_empty(device="cpu")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "layer_norm" in name:
                parameter.fill_(1.0)
            else:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.02)
    model.eval().requires_grad_(False)
    return T5CaptionEncoder(build_tiny_tokenizer(CAPTION_MAX_LENGTH), model, CAPTION_MAX_LENGTH)


def build_components(size: str, text_encoder: str, device: torch.device) -> RestoreComponents:
    """fp32 random components (T5 in bf16 on the CPU); the published transformer, VAE and
    remover are initialised on `device` (seconds on a GPU, minutes on a small CPU)."""
    if size == "tiny":
        from engine.models.tiny_components import build_tiny_components

        components = build_tiny_components(seed=0)
        components.captioner = None
        return components
    if size != "published":
        raise ValueError(f"unknown size {size!r}; use one of {SIZES}")
    from engine.models.published_sizes import (
        build_published_remover,
        build_published_transformer,
        build_published_vae,
    )

    torch.manual_seed(0)
    context = torch.device(device) if device.type == "cuda" else contextlib.nullcontext()
    with context:
        transformer = build_published_transformer()
        vae = build_published_vae()
        remover = build_published_remover()
    for module in (transformer, vae, remover):
        # Buffers made from numpy (positional tables) start on the CPU whatever the context.
        module.to(device).eval().requires_grad_(False)
    return RestoreComponents(
        transformer=transformer,
        vae=vae,
        text_encoder=build_t5(text_encoder),
        remover=remover,
        captioner=None,
    )


def parameter_bytes(module: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
