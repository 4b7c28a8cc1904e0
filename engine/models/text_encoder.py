"""T5 caption encoder: captions -> (embeddings, mask), as the DreamClear transformer expects.

Captions are tokenised to exactly `max_length` tokens (120, as published: padded, truncated,
with the end-of-sequence token) and encoded by a T5 encoder; the mask is 1 for real tokens.
The last few captions' results are kept: a batch restored without a captioner encodes the
same (empty) caption every time, and T5-XXL on the CPU takes seconds per call.
"""

from __future__ import annotations

import torch
from transformers import PreTrainedTokenizerBase, T5EncoderModel

from engine.devices import execution_device

CAPTION_MAX_LENGTH = 120
CACHED_CAPTIONS = 8


class T5CaptionEncoder:
    """Wraps a tokenizer and a `T5EncoderModel`; call it with a list of captions."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        model: T5EncoderModel,
        max_length: int = CAPTION_MAX_LENGTH,
    ) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.max_length = max_length
        self._cache: dict[tuple[str, ...], tuple[torch.Tensor, torch.Tensor]] = {}

    def clear_cache(self) -> None:
        self._cache.clear()

    @property
    def device(self) -> torch.device:
        """Where the encoder computes (its weights may be offloaded elsewhere)."""
        return execution_device(self.model)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def embedding_dim(self) -> int:
        return int(self.model.config.d_model)

    @torch.no_grad()
    def __call__(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns embeddings (B, max_length, d_model) in the model dtype and mask (B, max_length) long."""
        key = tuple(captions)
        if key not in self._cache:
            if len(self._cache) >= CACHED_CAPTIONS:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = self._encode(captions)
        return self._cache[key]

    def _encode(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.tokenizer(
            captions,
            max_length=self.max_length,
            padding="max_length",
            truncation=True,
            add_special_tokens=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        input_ids = tokens.input_ids.to(self.device)
        mask = tokens.attention_mask.to(self.device)
        embeddings = self.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
        return embeddings, mask
