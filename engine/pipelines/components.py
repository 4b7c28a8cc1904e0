"""The set of models a restoration needs, passed around as one value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:
    from diffusers import AutoencoderKL

    from engine.models.captioners import Captioner
    from engine.models.dreamclear_transformer import DreamClearTransformer2DModel
    from engine.models.text_encoder import T5CaptionEncoder


@dataclass
class RestoreComponents:
    """Models for `DreamClearRestorePipeline`.

    transformer: the DreamClear denoiser (bf16/fp16/fp32).
    vae: SD's AutoencoderKL (scaling factor 0.18215), best kept in fp32.
    text_encoder: T5 caption encoder (120 tokens).
    remover: degradation remover, (B, 3, H, W) in [0, 1] -> same size; None skips it
        (the upscaled input is then the reference).
    captioner: makes the caption from the reference image; None means the empty caption
        unless the caller passes a prompt.
    """

    transformer: DreamClearTransformer2DModel
    vae: AutoencoderKL
    text_encoder: T5CaptionEncoder
    remover: nn.Module | None = None
    captioner: Captioner | None = None
