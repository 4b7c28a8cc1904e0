"""How far a restoration is, in one number and in words: the stage plans of both restorers.

A pipeline reports after each unit of work (a tile, a step) as `ProgressInfo`; its `StagePlan`
turns the counters into the fraction of the whole job done (every stage weighted by the share
of time it takes) and a label for people. The engine (`engine.progress`) and the local
command line read the same `ProgressInfo`, so the plan is written once, here. Torch-free.

The weights are shares of the run time measured here on the CPU (2 shared cores, fp32, timed
between progress callbacks; docs/decisions.md has the numbers), rounded:

- the starter (bundled, 1024 px output with its map): restorer tiles 0.87, estimator tiles
  0.07, colour fix 0.06 of the job;
- DreamClear: one denoising step is the unit. The tiny model at 50 steps spent 94% denoising,
  the remover 1.5 steps, the two VAE encodes 0.7, the decode 0.6, the colour fix 0.2; the
  real VAE is heavier next to its transformer, so encode and decode count one step each. A
  captioner (LLaVA) is not measured here: four steps is a guess from its size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

STAGE_WORDS = {
    "load": "Loading the model",
    "remove": "Removing degradations",
    "estimate": "Estimating degradations",
    "caption": "Captioning",
    "encode": "Encoding",
    "denoise": "Denoising",
    "decode": "Decoding",
    "colour": "Matching colours",
    "save": "Saving",
}
"""A stage in words; the label of a position starts with it."""


@dataclass(frozen=True)
class ProgressInfo:
    """Where a restoration is: `step` of `steps` in `stage`, `tile` of `tiles` in that step
    (all from 1; a stage without steps or tiles reports 1 of 1), reported after that unit.

    fraction: of the whole job done, 0..1 (the pipeline's `StagePlan`); label: in words.
    """

    stage: str
    step: int
    steps: int
    tile: int
    tiles: int
    fraction: float = 0.0
    label: str = ""


def position_label(stage: str, step: int, steps: int, tile: int, tiles: int) -> str:
    """'Removing degradations (tile 3/9)', 'Denoising 12/50', 'Denoising 12/50 (tile 2/4)',
    'Decoding'."""
    words = STAGE_WORDS.get(stage, stage.capitalize())
    if steps > 1:
        words = f"{words} {step}/{steps}"
    if tiles > 1:
        words = f"{words} (tile {tile}/{tiles})"
    return words


@dataclass(frozen=True)
class StagePlan:
    """The stages of one job in order, with their weights (any positive scale)."""

    stages: tuple[tuple[str, float], ...]

    def info(self, stage: str, step: int = 1, steps: int = 1, tile: int = 1, tiles: int = 1):
        """The `ProgressInfo` of having finished `tile` of `tiles` in `step` of `steps`."""
        total = sum(weight for _, weight in self.stages)
        done = 0.0
        for name, weight in self.stages:
            if name == stage:
                units = max(steps, 1) * max(tiles, 1)
                finished = (step - 1) * max(tiles, 1) + tile
                done += weight * min(max(finished / units, 0.0), 1.0)
                break
            done += weight
        else:
            raise ValueError(f"stage {stage!r} is not in the plan {self.names}")
        fraction = min(done / total, 1.0) if total > 0 else 1.0
        label = position_label(stage, step, steps, tile, tiles)
        return ProgressInfo(stage, step, steps, tile, tiles, round(fraction, 4), label)

    @property
    def names(self) -> Sequence[str]:
        return [name for name, _ in self.stages]


STARTER_WEIGHTS = {"remove": 0.85, "estimate": 0.08, "colour": 0.07}


def starter_plan(estimate: bool) -> StagePlan:
    """The starter: remover tiles, the estimator's tiles (when maps are asked for), colour."""
    names = ("remove", "estimate", "colour") if estimate else ("remove", "colour")
    return StagePlan(tuple((name, STARTER_WEIGHTS[name]) for name in names))


UPSCALER_PLAN = StagePlan((("remove", 1.0),))
"""A user's own upscaler (`engine.pipelines.upscaler`): its tiles are the job (the resample to
the asked scale is instant next to them). It reports the remover's stage: the protocol's
stages are a fixed list that clients decode strictly, and the network pass is that stage's
role in both other pipelines."""


DREAMCLEAR_STEP_COSTS = {
    "remove": 1.5,
    "caption": 4.0,
    "encode": 1.0,
    "decode": 1.0,
    "colour": 0.2,
}
"""DreamClear's stages other than denoising, in denoising steps."""


def dreamclear_plan(steps: int, captions: bool) -> StagePlan:
    """DreamClear with `steps` denoising steps; `captions`: a captioner runs (else the caption
    stage is instant)."""
    costs = dict(DREAMCLEAR_STEP_COSTS)
    if not captions:
        costs["caption"] = 0.0
    order = ("remove", "caption", "encode", "denoise", "decode", "colour")
    return StagePlan(tuple((name, costs.get(name, float(steps))) for name in order))
