"""The seam for GenIR's optional multimodal judge of generated images.

The paper has a multimodal model look at each generated image under its image instruction
(engine.genir.config.PAPER_JUDGE_INSTRUCTION: "...determine whether this image has passed the
inspection (answer yes/no) and provide your reasoning") and drops the images that fail. A judge
is any object with an `identity` and a `__call__(image) -> JudgeVerdict`; the local
transformers implementation lives elsewhere and is handed to the filter stage. With
`filter.judge = true` and no judge handed over, the stage stops before any work
(`require_judge`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from PIL import Image

from engine.errors import BadSettingError


@dataclass(frozen=True)
class JudgeVerdict:
    ok: bool
    """The image passed the inspection."""
    reason: str
    """The judge's reasoning, as it gave it."""


@runtime_checkable
class Judge(Protocol):
    identity: str
    """What judges, e.g. the model's name and revision and the instruction's hash: the filter
    stage journals verdicts under it, so another judge judges every image again."""

    def __call__(self, image: Image.Image) -> JudgeVerdict:
        """The verdict on one image (RGB) under the instruction the judge was built with."""
        ...


def require_judge(judge: Judge | None, wanted: bool) -> Judge | None:
    """The judge to use: None when `filter.judge` is false; a clear error when it is true and
    none is installed."""
    if not wanted:
        return None
    if judge is None:
        raise BadSettingError(
            "filter.judge is true, but no multimodal judge is installed",
            hint="set filter.judge = false in genir.toml, or install a local multimodal model "
            "for the judge (docs/genir.md, 'The filter')",
        )
    return judge


_ANSWER = re.compile(r"\b(yes|no|passed|failed|not passed|did not pass)\b", re.IGNORECASE)
_FAILS = {"no", "failed", "not passed", "did not pass"}


def verdict_from_answer(answer: str) -> JudgeVerdict:
    """A judge's free-text answer to the paper's instruction as a verdict: its first yes/no
    (or passed/failed) decides; an answer with neither fails, because an image the judge did
    not clearly pass is not kept. The whole answer is the reason."""
    text = " ".join(answer.split())
    found = _ANSWER.search(text)
    ok = found is not None and found.group(1).lower() not in _FAILS
    return JudgeVerdict(ok, text or "(the judge gave no answer)")
