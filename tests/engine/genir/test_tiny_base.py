"""The tiny SDXL base: the stock pipeline loads it offline, generates deterministically, and
pools at end-of-text even after tokens are added."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionXLPipeline

from engine.genir.text_encoders import align_eos_token_ids, set_eos_token_id
from engine.genir.tiny_base import RECORD_NAME, build_tiny_sdxl


@pytest.fixture(scope="module")
def pipe(tiny_sdxl_dir):
    pipe = StableDiffusionXLPipeline.from_pretrained(tiny_sdxl_dir, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _generate(pipe) -> np.ndarray:
    return pipe(
        "a harbour with wooden boats, golden hour",
        negative_prompt="blurry",
        num_inference_steps=2,
        height=64,
        width=64,
        generator=torch.Generator().manual_seed(7),
        output_type="np",
    ).images


def test_the_stock_pipeline_generates_the_same_image_twice(pipe):
    first, second = _generate(pipe), _generate(pipe)
    assert first.shape == (1, 64, 64, 3)
    assert np.isfinite(first).all()
    assert first.std() > 0.001  # not a flat image
    np.testing.assert_array_equal(first, second)


def test_the_same_seed_builds_the_same_weights_and_another_seed_others():
    def weight(seed: int) -> torch.Tensor:
        return build_tiny_sdxl(seed)["unet"].conv_in.weight

    assert torch.equal(weight(3), weight(3))
    assert not torch.equal(weight(3), weight(4))


def test_sdxl_conditioning_sizes(pipe):
    unet = pipe.unet.config
    assert unet.cross_attention_dim == (
        pipe.text_encoder.config.hidden_size + pipe.text_encoder_2.config.hidden_size
    )
    assert unet.addition_embed_type == "text_time"
    assert unet.projection_class_embeddings_input_dim == (
        6 * unet.addition_time_embed_dim + pipe.text_encoder_2.config.projection_dim
    )
    assert pipe.vae.config.scaling_factor == pytest.approx(0.13025)


def test_end_of_text_is_the_highest_id_and_the_encoders_know_it(pipe, tiny_sdxl_dir):
    record = json.loads((tiny_sdxl_dir / RECORD_NAME).read_text())
    for tokenizer, encoder in (("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2")):
        tok = getattr(pipe, tokenizer)
        assert tok.eos_token_id == len(tok) - 1
        assert getattr(pipe, encoder).config.eos_token_id == tok.eos_token_id
        assert record["eos_token_id"][encoder] == tok.eos_token_id
    assert pipe.tokenizer.pad_token == "<|endoftext|>"
    assert pipe.tokenizer_2.pad_token == "!"


def _pooled_and_eos_state(tokenizer, encoder, prompt: str):
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = encoder(ids)
    eos_position = int((ids[0] == tokenizer.eos_token_id).nonzero()[0])
    at_eos = out.last_hidden_state[0, eos_position]
    if hasattr(encoder, "text_projection"):
        return out.text_embeds[0], encoder.text_projection(at_eos)
    return out.pooler_output[0], at_eos


def test_pooling_stays_on_end_of_text_after_adding_tokens(tiny_sdxl_dir):
    pipe = StableDiffusionXLPipeline.from_pretrained(tiny_sdxl_dir, local_files_only=True)
    pairs = (
        (pipe.tokenizer, pipe.text_encoder),
        (pipe.tokenizer_2, pipe.text_encoder_2),
    )
    for tokenizer, encoder in pairs:
        eos = tokenizer.eos_token_id
        assert tokenizer.add_tokens(["<genir-pos>", "<genir-neg>"]) == 2
        encoder.resize_token_embeddings(len(tokenizer))
        new_ids = tokenizer.convert_tokens_to_ids(["<genir-pos>", "<genir-neg>"])
        assert min(new_ids) > eos  # the added ids are above end-of-text
        prompt = "a harbour <genir-pos> <genir-neg>"
        with torch.no_grad():
            pooled, at_eos = _pooled_and_eos_state(tokenizer, encoder, prompt)
        torch.testing.assert_close(pooled, at_eos)

        # The pitfall: under the legacy id, pooling goes to argmax(input_ids), a new token...
        set_eos_token_id(encoder, 2)
        with torch.no_grad():
            pooled, at_eos = _pooled_and_eos_state(tokenizer, encoder, prompt)
        assert not torch.allclose(pooled, at_eos)
    # ...and aligning the ids puts it back, saying what it changed.
    assert align_eos_token_ids(pipe) == {
        "text_encoder": pipe.tokenizer.eos_token_id,
        "text_encoder_2": pipe.tokenizer_2.eos_token_id,
    }
    for tokenizer, encoder in pairs:
        with torch.no_grad():
            pooled, at_eos = _pooled_and_eos_state(tokenizer, encoder, "a harbour <genir-pos>")
        torch.testing.assert_close(pooled, at_eos)
    assert align_eos_token_ids(pipe) == {}
