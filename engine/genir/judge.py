"""The filter stage's seam for GenIR's optional multimodal judge of generated images.

The paper has a multimodal model look at each generated image under its image instruction
(engine.genir.config.PAPER_JUDGE_INSTRUCTION: "...determine whether this image has passed the
inspection (answer yes/no) and provide your reasoning") and drops the images that fail. A judge
is any callable `judge(image) -> (ok, reason)`, such as engine.genir.judges.MultimodalJudge (a
local vision-language model); the filter stage takes one, and with `filter.judge = true` and
none handed over it loads the store's `genir-judge` (`load_judge`), which fails before any
work, naming the download command, when it is not installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Protocol

from PIL import Image

from engine.genir.config import FilterConfig


class JudgeVerdict(NamedTuple):
    ok: bool
    """The image passed the inspection."""
    reason: str
    """The judge's reasoning, as it gave it."""


class Judge(Protocol):
    def __call__(self, image: Image.Image) -> tuple[bool, str]:
        """(passed, reason) for one RGB image, under the instruction the judge was built with."""
        ...


def judge_identity(judge: Judge) -> str:
    """What judges, for the filter's journal (another judge judges every image again): the
    judge's `identity` when it has one, else its class and its model's folder or name."""
    identity = getattr(judge, "identity", None)
    if identity:
        return str(identity)
    model = getattr(judge, "model", None)
    return f"{type(judge).__name__}:{getattr(model, 'name_or_path', '')}"


def load_judge(run: Path, settings: FilterConfig) -> Judge:
    """The store's multimodal judge (`genir-judge`) asking `settings.judge_instruction`;
    ModelNotInstalledError naming `dreamclear models download` when it is not installed."""
    from engine.genir.judges import JUDGE_MODEL, MultimodalJudge

    judge = MultimodalJudge.from_model(JUDGE_MODEL, Path(run))
    judge.instruction = settings.judge_instruction
    return judge
