"""Sample images under the learned prompts, from the training-time modules: a look at what
fine-tuning did, written at the end of a run (the trainer's validation).

Each caption gives a same-seed pair: `NNN.png` under the learned prompts (positive tokens before
the caption, negative tokens as the negative prompt) and `base-NNN.png` from the caption alone
with the base's cross-attention (a LoRA switched off; "full" fine-tuning has no base weights
at hand, so there only the tokens differ). Side by side they show what the tokens learned: the
wizard's fine-tune page shows them as a grid."""

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
    """Per caption (seeded by `seed` and its index) NNN.png under the learned prompts and
    base-NNN.png from the caption alone, into `folder`; returns the paths written."""
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

    def sample(prompt: str, negative: str, index: int, path: Path) -> None:
        with torch.no_grad(), autocast:
            image = pipe(
                prompt,
                negative_prompt=negative,
                height=resolution,
                width=resolution,
                num_inference_steps=SAMPLE_STEPS,
                guidance_scale=SAMPLE_CFG,
                generator=torch.Generator(device).manual_seed(seed + index),
            ).images[0]
        atomic_write(path, lambda file: image.save(file, format="PNG"), overwrite=True)
        written.append(path)

    for index, caption in enumerate(captions):
        sample(
            dual_prompt(positive_tokens, caption),
            " ".join(negative_tokens),
            index,
            folder / f"{index:03d}.png",
        )
    with _base_cross_attention(parts.unet):
        for index, caption in enumerate(captions):
            sample(caption, "", index, folder / f"base-{index:03d}.png")
    return written


@contextlib.contextmanager
def _base_cross_attention(unet):
    """The UNet with its LoRA switched off, when it has one (peft adapters through diffusers)."""
    lora = getattr(unet, "_hf_peft_config_loaded", False)
    if lora:
        unet.disable_adapters()
    try:
        yield
    finally:
        if lora:
            unet.enable_adapters()
