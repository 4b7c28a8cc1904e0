"""Learned prompts written to the RUN/finetune contract by hand (random vectors, a peft LoRA or
random attn2 weights), so generation is tested without the trainer."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import StableDiffusionXLPipeline
from safetensors.torch import save_file

from engine.genir import learned_prompts as lp
from engine.genir.base_model import base_model_sha256

CROSS_ATTENTION_TARGETS = ["attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0"]


def write_learned_prompts(
    folder: Path,
    base: Path,
    *,
    cross_attention: str = "none",
    seed: int = 0,
    positive: int = 2,
    negative: int = 2,
) -> StableDiffusionXLPipeline:
    """Write learned prompts for `base` into `folder`; returns the base pipeline with the same
    cross-attention change applied in memory (to compare against)."""
    folder.mkdir(parents=True, exist_ok=True)
    pipe = StableDiffusionXLPipeline.from_pretrained(base, local_files_only=True)
    generator = torch.Generator().manual_seed(seed)
    tokens = [f"<genir-pos-{i}>" for i in range(positive)]
    tokens += [f"<genir-neg-{i}>" for i in range(negative)]
    vectors = {
        key: torch.randn(
            len(tokens),
            getattr(pipe, encoder).get_input_embeddings().weight.shape[1],
            generator=generator,
        )
        for key, _, encoder in lp.ENCODERS
    }
    save_file(vectors, folder / lp.TOKENS_FILE)
    rank = None
    if cross_attention == "lora":
        rank = 4
        _write_lora(pipe, folder, rank, seed)
    elif cross_attention == "full":
        weights = {
            key: torch.randn(value.shape, generator=generator) * 0.1
            for key, value in pipe.unet.state_dict().items()
            if ".attn2." in key
        }
        save_file(weights, folder / lp.FULL_FILE)
        pipe.unet.load_state_dict(weights, strict=False)
    description = {
        "format": 1,
        "base_model": str(Path(base).resolve()),
        "base_sha256": base_model_sha256(base),
        "positive_tokens": tokens[:positive],
        "negative_tokens": tokens[positive:],
        "cross_attention": cross_attention,
        "lora_rank": rank,
        "settings": {"fixture": True},
    }
    (folder / lp.PROMPTS_FILE).write_text(json.dumps(description, indent=1))
    return pipe


def _write_lora(pipe: StableDiffusionXLPipeline, folder: Path, rank: int, seed: int) -> None:
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    config = LoraConfig(
        r=rank,
        lora_alpha=rank,
        target_modules=CROSS_ATTENTION_TARGETS,
        init_lora_weights=False,  # random A and B: the adapter changes the output
    )
    pipe.unet.add_adapter(config)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(pipe.unet))
    StableDiffusionXLPipeline.save_lora_weights(folder, unet_lora_layers=layers)
