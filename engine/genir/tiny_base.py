"""A tiny, randomly initialised SDXL in diffusers layout: the base model of GenIR's tests.

`save_tiny_sdxl(folder, seed)` writes a folder that `StableDiffusionXLPipeline.from_pretrained`
loads offline and that generates a 64 px image in a fraction of a second on a CPU. Its parts
follow SDXL's layout at toy sizes (as in diffusers' own SDXL pipeline tests): a UNet with two
blocks, cross-attention 64 wide (the two encoders' penultimate hidden states, 32 + 32) and
`text_time` added conditioning sized to match; CLIPTextModel and CLIPTextModelWithProjection of
width 32; byte-level CLIP tokenizers built offline (the 256 byte symbols, each also with
`</w>`, no merges, start and end of text last, end-of-text the highest id as in real CLIP);
the tiny VAE of our tests at SDXL's scaling factor; SDXL's Euler scheduler. Both encoders'
`eos_token_id` is their tokenizer's end-of-text id (engine.genir.text_encoders), and the folder
records it in `tiny-base.json`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
from tokenizers.pre_tokenizers import ByteLevel
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
)

from engine.genir.text_encoders import align_eos_token_ids
from engine.models.tiny_components import build_tiny_vae

TEXT_WIDTH = 32
"""Hidden size of both tiny text encoders (and the second one's projection)."""
ADDITION_TIME_EMBED_DIM = 8
"""Width of each of SDXL's six size/crop numbers' embedding in the added conditioning."""
SDXL_VAE_SCALING_FACTOR = 0.13025
SDXL_SCHEDULER = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "prediction_type": "epsilon",
}
"""The scheduler settings of stable-diffusion-xl-base-1.0."""
RECORD_NAME = "tiny-base.json"


def build_byte_level_tokenizer(pad_token: str) -> CLIPTokenizer:
    """A CLIP tokenizer of the 256 byte-level symbols (each also as a word end), no merges,
    then `<|startoftext|>` and `<|endoftext|>` (the highest id), built offline in memory."""
    symbols = sorted(ByteLevel.alphabet())
    tokens = [*symbols, *(symbol + "</w>" for symbol in symbols)]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocabulary = {token: index for index, token in enumerate(tokens)}
    return CLIPTokenizer(vocab=vocabulary, merges=[], pad_token=pad_token, model_max_length=77)


def _text_config(tokenizer: CLIPTokenizer) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_WIDTH,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=5,
        max_position_embeddings=tokenizer.model_max_length,
        layer_norm_eps=1e-5,
        hidden_act="gelu",
        projection_dim=TEXT_WIDTH,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def build_tiny_sdxl(seed: int = 0) -> dict[str, Any]:
    """The components of a tiny SDXL pipeline, seeded (same seed, same weights)."""
    torch.manual_seed(seed)
    # SDXL's first tokenizer pads with end-of-text, its second with "!".
    tokenizer = build_byte_level_tokenizer(pad_token="<|endoftext|>")
    tokenizer_2 = build_byte_level_tokenizer(pad_token="!")
    text_encoder = CLIPTextModel(_text_config(tokenizer))
    text_encoder_2 = CLIPTextModelWithProjection(_text_config(tokenizer_2))
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        transformer_layers_per_block=(1, 2),
        use_linear_projection=True,
        norm_num_groups=1,
        cross_attention_dim=2 * TEXT_WIDTH,
        addition_embed_type="text_time",
        addition_time_embed_dim=ADDITION_TIME_EMBED_DIM,
        # 6 size/crop numbers, each embedded, plus the second encoder's pooled projection.
        projection_class_embeddings_input_dim=6 * ADDITION_TIME_EMBED_DIM + TEXT_WIDTH,
    )
    vae = build_tiny_vae()
    vae.register_to_config(scaling_factor=SDXL_VAE_SCALING_FACTOR)
    for model in (text_encoder, text_encoder_2, unet, vae):
        model.eval()
    return {
        "unet": unet,
        "vae": vae,
        "text_encoder": text_encoder,
        "text_encoder_2": text_encoder_2,
        "tokenizer": tokenizer,
        "tokenizer_2": tokenizer_2,
        "scheduler": EulerDiscreteScheduler(**SDXL_SCHEDULER),
    }


def save_tiny_sdxl(folder: Path | str, seed: int = 0) -> Path:
    """Write a tiny SDXL (diffusers layout, safetensors) to `folder` and record its seed and
    the eos ids set in `tiny-base.json`. Returns the folder."""
    folder = Path(folder)
    pipe = StableDiffusionXLPipeline(**build_tiny_sdxl(seed))
    align_eos_token_ids(pipe)  # already aligned at construction; kept as the one rule
    pipe.save_pretrained(folder, safe_serialization=True)
    record = {
        "what": "a randomly initialised tiny SDXL for tests (engine/genir/tiny_base.py)",
        "seed": seed,
        "eos_token_id": {
            name: getattr(pipe, name).config.eos_token_id
            for name in ("text_encoder", "text_encoder_2")
        },
        "eos_note": "each text encoder's eos_token_id is its tokenizer's end-of-text id, so "
        "pooling stays on end-of-text when tokens are added",
    }
    (folder / RECORD_NAME).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return folder
