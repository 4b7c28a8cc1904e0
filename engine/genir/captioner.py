"""GenIR's model captioner: a local image-to-text model writes a positive's caption.

`ModelCaptioner` is the `Captioner` of engine.genir.positives (a path in, a caption out). A
chat vision-language model is asked `CAPTION_INSTRUCTION`; a plain captioning model (BLIP,
the manifest's `genir-captioner`) captions unprompted. Decoding is greedy, so a caption is
the same on every run on the same machine and software. The pairs stage loads it only when
`pairs.captioner` is set and some positive has no written caption.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PIL import Image

from engine.genir.local_models import describe_image, load_image_text_model

logger = logging.getLogger(__name__)

CAPTION_INSTRUCTION = (
    "Describe this photograph in one sentence: its subject, setting, materials and light. "
    "Do not name or describe any person."
)
"""Our wording (the paper's captioning prompt is not given); only chat models read it."""
MAX_CAPTION_TOKENS = 60
"""SDXL's text encoders read 77 tokens; a longer caption would be cut there anyway."""


class ModelCaptioner:
    """Captions images with a local transformers image-to-text model."""

    def __init__(self, processor: Any, model: Any, max_new_tokens: int = MAX_CAPTION_TOKENS):
        self.processor = processor
        self.model = model
        self.max_new_tokens = max_new_tokens

    @classmethod
    def from_folder(cls, folder: str | Path) -> ModelCaptioner:
        return cls(*load_image_text_model(folder))

    def __call__(self, path: Path) -> str:
        with Image.open(path) as image:
            text = describe_image(
                self.processor,
                self.model,
                image,
                CAPTION_INSTRUCTION,
                max_new_tokens=self.max_new_tokens,
            )
        caption = " ".join(text.split())
        if not caption:
            logger.warning("the captioner wrote nothing for %s", path)
        return caption
