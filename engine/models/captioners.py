"""Captioners: turn the (degradation-removed) image into the caption that guides restoration.

- `FixedCaptioner(text)`: always the same text (the user's prompt).
- `NoCaptioner()`: the empty caption.
- `LlavaCaptioner`: LLaVA-NeXT through transformers, with the published prompt and sampling
  settings ("Describe this image and its style.", temperature 0.2, top-p 0.7, up to 512 new
  tokens). Sampling uses torch's global random state, so captions vary between runs unless
  the caller seeds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from PIL import Image

from engine.devices import execution_device

LLAVA_PROMPT = "Describe this image and its style."
LLAVA_TEMPERATURE = 0.2
LLAVA_TOP_P = 0.7
LLAVA_MAX_NEW_TOKENS = 512


@runtime_checkable
class Captioner(Protocol):
    def caption(self, image: Image.Image) -> str:
        """A caption for an RGB image."""
        ...


class FixedCaptioner:
    """Always returns `text`."""

    def __init__(self, text: str) -> None:
        self.text = text

    def caption(self, image: Image.Image) -> str:
        return self.text


class NoCaptioner(FixedCaptioner):
    """The empty caption (the model then relies on its image conditions only)."""

    def __init__(self) -> None:
        super().__init__("")


class LlavaCaptioner:
    """LLaVA-NeXT (e.g. LLaVA v1.6 Vicuna) captioner: `processor` and `model` from transformers."""

    def __init__(
        self,
        processor: Any,
        model: Any,
        prompt: str = LLAVA_PROMPT,
        temperature: float = LLAVA_TEMPERATURE,
        top_p: float = LLAVA_TOP_P,
        max_new_tokens: int = LLAVA_MAX_NEW_TOKENS,
    ) -> None:
        self.processor = processor
        self.model = model
        self.prompt = prompt
        self.temperature = temperature
        self.top_p = top_p
        self.max_new_tokens = max_new_tokens

    @classmethod
    def from_folder(
        cls,
        folder: str | Path,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float16,
    ) -> LlavaCaptioner:
        """Load processor and model from a local folder (no downloads)."""
        from transformers import LlavaNextForConditionalGeneration, LlavaNextProcessor

        processor = LlavaNextProcessor.from_pretrained(folder, local_files_only=True)
        model = LlavaNextForConditionalGeneration.from_pretrained(
            folder, torch_dtype=dtype, local_files_only=True
        ).to(device)
        model.eval()
        return cls(processor, model)

    def _text_prompt(self) -> str:
        conversation = [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": self.prompt}]}
        ]
        return self.processor.apply_chat_template(conversation, add_generation_prompt=True)

    @torch.no_grad()
    def caption(self, image: Image.Image) -> str:
        inputs = self.processor(
            images=image.convert("RGB"), text=self._text_prompt(), return_tensors="pt"
        )
        device, dtype = execution_device(self.model), next(self.model.parameters()).dtype
        inputs = {
            key: value.to(device, dtype=dtype if value.is_floating_point() else None)
            for key, value in inputs.items()
        }
        output_ids = self.model.generate(
            **inputs,
            do_sample=self.temperature > 0,
            temperature=self.temperature,
            top_p=self.top_p,
            max_new_tokens=self.max_new_tokens,
        )
        new_tokens = output_ids[:, inputs["input_ids"].shape[1] :]
        return self.processor.batch_decode(new_tokens, skip_special_tokens=True)[0].strip()
