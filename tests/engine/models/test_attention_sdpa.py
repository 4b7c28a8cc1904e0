"""Every attention of the DreamClear transformer runs through PyTorch's SDPA (flash or
memory-efficient kernels on CUDA), and SDPA gives what explicit softmax attention gives."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention, AttnProcessor, AttnProcessor2_0

from engine.models.presets import TINY
from tests.engine.models.test_dreamclear_transformer import (
    get_dummy_inputs,
    randomize,
    tiny_model,
)

BLOCKS = TINY["num_layers"] + 2 * TINY["num_control_layers"]
"""Base blocks plus the LQ and reference branch blocks: a self- and a cross-attention each."""


def explicit_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, **_):
    """softmax(q k^T / sqrt(d) + mask) v, written out."""
    assert dropout_p == 0.0 and not is_causal
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.shape[-1])
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    return scores.softmax(dim=-1) @ value


def test_every_attention_goes_through_sdpa(monkeypatch) -> None:
    model = randomize(tiny_model())
    processors = [m.processor for m in model.modules() if isinstance(m, Attention)]
    assert len(processors) == 2 * BLOCKS
    assert processors and all(isinstance(p, AttnProcessor2_0) for p in processors)
    calls = []
    sdpa = F.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", counting)
    with torch.no_grad():
        model(**get_dummy_inputs())
    assert len(calls) == 2 * BLOCKS + TINY["num_control_layers"]


def test_sdpa_equals_explicit_softmax_attention(monkeypatch) -> None:
    model = randomize(tiny_model())
    inputs = get_dummy_inputs()
    with torch.no_grad():
        fused = model(**inputs, return_maps=True)
        monkeypatch.setattr(F, "scaled_dot_product_attention", explicit_attention)
        explicit = model(**inputs, return_maps=True)
        # diffusers' own explicit processor for the blocks agrees too.
        for module in model.modules():
            if isinstance(module, Attention):
                module.set_processor(AttnProcessor())
        classic = model(**inputs).sample
    torch.testing.assert_close(explicit.sample, fused.sample, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(explicit.router_weights, fused.router_weights, atol=1e-5, rtol=0)
    torch.testing.assert_close(classic, fused.sample, atol=1e-5, rtol=1e-5)


def test_cfg_runs_as_one_batch_per_tile_and_step() -> None:
    """The pipeline feeds the conditional and unconditional passes as one batch of 2."""
    from engine.models.tiny_components import build_tiny_components
    from engine.pipelines.restore import DreamClearRestorePipeline

    pipeline = DreamClearRestorePipeline.from_components(build_tiny_components())
    batches = []
    forward = pipeline.transformer.forward

    def recording(**kwargs):
        batches.append(kwargs["hidden_states"].shape[0])
        return forward(**kwargs)

    pipeline.transformer.forward = recording
    with torch.inference_mode():
        out = pipeline(
            torch.rand(1, 3, 32, 32),
            upscale=4,
            min_short_side=0,
            num_inference_steps=3,
            caption="none",
            tile_size=8,
            tile_overlap=0,
        )
    tiles = len(out.tile_grid)
    assert tiles > 1 and batches == [2] * (3 * tiles)
