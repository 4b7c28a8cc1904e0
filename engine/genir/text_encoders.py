"""The SDXL text encoders' end-of-text id, aligned with their tokenizers'.

CLIP's text model pools at the first position holding its config's `eos_token_id`; a config
carrying the legacy id 2 pools at `argmax(input_ids)` instead, which is the end-of-text token
only while it is the highest id. GenIR adds learned tokens, whose ids are higher, so the
pooled vector (SDXL's `text_embeds`) would be taken at a new token. Every GenIR stage that
loads a base model aligns the ids first, so training and generation pool the same way
(transformers issues 24650, 21029; PR 24777).
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

TEXT_ENCODER_PAIRS = (("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2"))
"""The SDXL pipeline's (tokenizer, text encoder) attribute names."""


def align_eos_token_ids(pipe: Any) -> dict[str, int]:
    """Set each text encoder's `eos_token_id` to its tokenizer's end-of-text id, in place.

    Returns what was changed, by encoder name ({} when nothing was); each change is logged."""
    changed: dict[str, int] = {}
    for tokenizer_name, encoder_name in TEXT_ENCODER_PAIRS:
        tokenizer = getattr(pipe, tokenizer_name, None)
        encoder = getattr(pipe, encoder_name, None)
        if tokenizer is None or encoder is None:
            continue
        eos = tokenizer.eos_token_id
        if encoder.config.eos_token_id != eos:
            logger.info(
                "%s: eos_token_id %s -> %s (the tokenizer's end-of-text), so pooling never "
                "lands on an added token",
                encoder_name,
                encoder.config.eos_token_id,
                eos,
            )
            set_eos_token_id(encoder, eos)
            changed[encoder_name] = eos
    return changed


def set_eos_token_id(encoder: Any, eos: int) -> None:
    """Set a CLIP text model's end-of-text id everywhere its pooling may read it: the config,
    and the copies made at construction (on the model itself in transformers 5, on its inner
    `text_model` in 4 and in CLIPTextModelWithProjection)."""
    for module in (encoder, getattr(encoder, "text_model", None)):
        if module is None:
            continue
        module.config.eos_token_id = eos
        if hasattr(module, "eos_token_id"):
            module.eos_token_id = eos
