"""GenIR's model judges, with the paper's two instructions (its wording, kept as settings).

- `PromptJudge`: a local instruct LLM reads prompts, one per line, and returns those it keeps
  (the paper's prompt instruction: "delete any inappropriate text prompts and return the
  remaining ones in their original format"); a prompt it does not return is rejected.
- `MultimodalJudge`: a local vision-language model answers the paper's image instruction;
  `parse_verdict` reads yes/no and the reason from its answer. An answer with neither word is
  a rejection (a judge that cannot say "yes" has not passed the image).

Both decode greedily (same answer for the same model, input, software and device).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from engine.genir.local_models import chat, describe_image, load_image_text_model, load_text_model
from engine.genir.model_paths import resolve_model

PAPER_PROMPT_INSTRUCTION = (
    "You are an AI language assistant, and you are analyzing a series of text prompts. Your "
    "task is to identify whether these text prompts contain any inappropriate content such as "
    "personal privacy violations or NSFW material. Delete any inappropriate text prompts and "
    "return the remaining ones in their original format."
)
PAPER_IMAGE_INSTRUCTION = (
    "You are an AI visual assistant, and you are analyzing a single image. Your task is to "
    "check the image for any anomalies, irregularities, or content that does not align with "
    "common sense or normal expectations. Additionally, identify any inappropriate content "
    "such as personal privacy violations or NSFW material. If the image does not contain any "
    "of the aforementioned issues, it has passed the inspection. Please determine whether "
    "this image has passed the inspection (answer yes/no) and provide your reasoning."
)
JUDGE_MODEL = "genir-judge"
"""The store's multimodal judge (resources/models/manifest.toml)."""
JUDGE_MAX_NEW_TOKENS = 128
"""Room for "yes"/"no" and a few sentences of reasoning."""
PROMPTS_PER_CALL = 20
"""Prompts judged in one call; the answer must repeat the kept ones, so its length grows."""


def _normalised(text: str) -> str:
    return " ".join(text.split()).casefold()


class PromptJudge:
    """Keeps the prompts a local instruct LLM returns under the paper's prompt instruction."""

    def __init__(self, tokenizer: Any, model: Any, instruction: str = PAPER_PROMPT_INSTRUCTION):
        self.tokenizer = tokenizer
        self.model = model
        self.instruction = instruction

    @classmethod
    def from_folder(cls, folder: str | Path) -> PromptJudge:
        return cls(*load_text_model(folder))

    def __call__(self, prompts: Sequence[str]) -> list[bool]:
        """Whether each prompt is kept, in order."""
        kept: list[bool] = []
        for start in range(0, len(prompts), PROMPTS_PER_CALL):
            batch = prompts[start : start + PROMPTS_PER_CALL]
            listing = "\n".join(batch)
            budget = len(self.tokenizer(listing)["input_ids"]) + 16 * len(batch)
            answer, _ = chat(
                self.tokenizer,
                self.model,
                [
                    {"role": "system", "content": self.instruction},
                    {"role": "user", "content": listing},
                ],
                max_new_tokens=budget,
            )
            returned = {_normalised(_strip_list_marker(line)) for line in answer.splitlines()}
            kept += [_normalised(prompt) in returned for prompt in batch]
        return kept


class MultimodalJudge:
    """The paper's image judge: `judge(image)` is (passed, the model's reasoning)."""

    def __init__(
        self,
        processor: Any,
        model: Any,
        instruction: str = PAPER_IMAGE_INSTRUCTION,
        max_new_tokens: int = JUDGE_MAX_NEW_TOKENS,
    ):
        self.processor = processor
        self.model = model
        self.instruction = instruction
        self.max_new_tokens = max_new_tokens

    @classmethod
    def from_folder(cls, folder: str | Path) -> MultimodalJudge:
        """Load a chat vision-language model (e.g. the store's `genir-judge`) from `folder`."""
        return cls(*load_image_text_model(folder))

    @classmethod
    def from_model(
        cls, model: str | Path = JUDGE_MODEL, run_folder: Path = Path()
    ) -> MultimodalJudge:
        """Load the model a config names: a folder (relative from `run_folder`) or a store
        model (default: the store's `genir-judge`), as engine.genir.model_paths resolves it."""
        return cls.from_folder(resolve_model(model, run_folder))

    def __call__(self, image: Image.Image) -> tuple[bool, str]:
        answer = describe_image(
            self.processor,
            self.model,
            image,
            self.instruction,
            max_new_tokens=self.max_new_tokens,
        )
        return parse_verdict(answer)


_VERDICT = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
_LIST_MARKER = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")


def parse_verdict(answer: str) -> tuple[bool, str]:
    """(passed, reason) from a judge's answer: the first standalone "yes" or "no" decides;
    the reason is what follows an opening verdict, else the whole answer. Neither word: not
    passed."""
    text = " ".join(answer.split())
    match = _VERDICT.search(text)
    if match is None:
        return False, f"no yes/no answer: {text}" if text else "no answer"
    reason = text[match.end() :].strip(" .,:;-") if match.start() == 0 else text
    return match.group(1).lower() == "yes", reason or text


def _strip_list_marker(line: str) -> str:
    return _LIST_MARKER.sub("", line, count=1)
