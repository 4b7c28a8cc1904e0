"""Sample images under the learned prompts, from the training-time modules: a look at what
fine-tuning did, written at the end of a run (the trainer's validation)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from engine.genir.dual_prompts import SDXLParts
from engine.genir.finetune_data import dual_prompt
from engine.imaging.atomic import atomic_write

SAMPLE_STEPS = 25
"""Sampling steps of a sample image: enough to judge it, a few seconds on a GPU."""
SAMPLE_CFG = 7.0
"""Guidance between the learned positive and negative prompts (generation's default)."""


def write_samples(
    parts: SDXLParts,
    captions: list[str],
    positive_tokens: list[str],
    negative_tokens: list[str],
    resolution: int,
    folder: Path,
    seed: int = 0,
) -> list[Path]:
    """One image per caption (seeded by `seed` and its index) into `folder` as NNN.png."""
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline(
        vae=parts.vae,
        text_encoder=parts.text_encoder,
        text_encoder_2=parts.text_encoder_2,
        tokenizer=parts.tokenizer,
        tokenizer_2=parts.tokenizer_2,
        unet=parts.unet,
        scheduler=parts.scheduler,
    )
    pipe.set_progress_bar_config(disable=True)
    device = parts.unet.device
    dtype = parts.unet.dtype
    # Frozen weights in half precision with float32 trained ones need autocast, as in training.
    autocast = (
        torch.autocast(device.type, dtype=dtype)
        if dtype != torch.float32
        else contextlib.nullcontext()
    )
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for index, caption in enumerate(captions):
        with torch.no_grad(), autocast:
            image = pipe(
                dual_prompt(positive_tokens, caption),
                negative_prompt=" ".join(negative_tokens),
                height=resolution,
                width=resolution,
                num_inference_steps=SAMPLE_STEPS,
                guidance_scale=SAMPLE_CFG,
                generator=torch.Generator(device).manual_seed(seed + index),
            ).images[0]
        path = folder / f"{index:03d}.png"
        atomic_write(path, lambda file, image=image: image.save(file, format="PNG"), overwrite=True)
        written.append(path)
    return written
