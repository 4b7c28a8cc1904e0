"""SDEdit negatives: SDXL img2img moves a positive toward the negative-quality words.

With `strength` s and `steps` N the img2img pipeline noises the image to the timestep of step
N - int(N * s) and runs the last int(N * s) steps from there (s = 1 ignores the image).
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import DiffusionPipeline, StableDiffusionXLImg2ImgPipeline
from PIL import Image, ImageOps

from engine.errors import BadSettingError
from engine.genir.text_encoders import align_eos_token_ids


def load_img2img(
    base_model: Path | None = None, *, pipe: DiffusionPipeline | None = None
) -> StableDiffusionXLImg2ImgPipeline:
    """The img2img pipeline of the SDXL folder `base_model`, or sharing the modules of a loaded
    text-to-image `pipe`, its encoders' eos ids aligned (GenIR's rule for a loaded base).
    Prints no progress bar."""
    if pipe is not None:
        img2img = StableDiffusionXLImg2ImgPipeline.from_pipe(pipe)
    elif base_model is not None:
        img2img = StableDiffusionXLImg2ImgPipeline.from_pretrained(
            base_model, local_files_only=True
        )
    else:
        raise ValueError("give base_model or pipe")
    align_eos_token_ids(img2img)
    img2img.set_progress_bar_config(disable=True)
    return img2img


def check_strength(strength: float, steps: int) -> None:
    if not 0 < strength <= 1:
        raise BadSettingError(
            f"SDEdit strength {strength} is outside (0, 1]",
            hint="set pairs.sdedit_strength above 0 (0 changes nothing) and at most 1 "
            "(1 ignores the positive image)",
        )
    if int(steps * strength) < 1:
        raise BadSettingError(
            f"SDEdit strength {strength} with {steps} steps runs no denoising step",
            hint="raise pairs.sdedit_strength or pairs.steps",
        )


def working_image(path: Path, size: int) -> Image.Image:
    """The RGB image at `path`, its shorter side resized to `size` and centre-cropped square."""
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image).convert("RGB")
    return ImageOps.fit(image, (size, size), Image.Resampling.LANCZOS)


def sdedit_negative(
    pipe: StableDiffusionXLImg2ImgPipeline,
    image: Image.Image,
    prompt: str,
    *,
    strength: float,
    steps: int,
    seed: int,
) -> Image.Image:
    """The negative of `image` under `prompt`, the same for the same seed."""
    check_strength(strength, steps)
    generator = torch.Generator("cpu").manual_seed(seed)
    return pipe(
        prompt=prompt,
        image=image,
        strength=strength,
        num_inference_steps=steps,
        generator=generator,
    ).images[0]


def negative_prompt_text(negative_words: tuple[str, ...], caption: str) -> str:
    """The img2img prompt: the negative-quality words, then the caption."""
    return ", ".join((*negative_words, caption))
