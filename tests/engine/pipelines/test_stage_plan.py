"""The stage plans: the whole job's fraction, never going back, and labels in words."""

from __future__ import annotations

import pytest
import torch

from engine.pipelines.stage_plan import (
    STARTER_WEIGHTS,
    dreamclear_plan,
    position_label,
    starter_plan,
)
from engine.restorers import load_restorer


def test_labels_say_the_position_in_words():
    assert position_label("remove", 1, 1, 3, 9) == "Removing degradations (tile 3/9)"
    assert position_label("denoise", 12, 50, 1, 1) == "Denoising 12/50"
    assert position_label("denoise", 12, 50, 2, 4) == "Denoising 12/50 (tile 2/4)"
    assert position_label("decode", 1, 1, 1, 1) == "Decoding"


def test_the_fraction_adds_the_stages_before_and_the_share_of_this_one():
    remove, estimate, colour = (STARTER_WEIGHTS[k] for k in ("remove", "estimate", "colour"))
    total = remove + estimate + colour
    plan = starter_plan(estimate=True)
    assert plan.info("remove", tile=1, tiles=4).fraction == pytest.approx(
        remove / 4 / total, abs=1e-4
    )
    assert plan.info("estimate", tile=2, tiles=2).fraction == pytest.approx(
        (remove + estimate) / total, abs=1e-4
    )
    assert plan.info("colour").fraction == 1.0
    # Without maps the estimator's share goes to the others.
    assert starter_plan(estimate=False).info("remove").fraction == pytest.approx(
        remove / (remove + colour), abs=1e-4
    )


def test_denoising_dominates_a_fifty_step_dreamclear_job():
    plan = dreamclear_plan(50, captions=False)
    assert plan.info("encode").fraction < 0.1
    assert plan.info("denoise", 50, 50).fraction > 0.9
    assert plan.info("denoise", 25, 50, 2, 4).label == "Denoising 25/50 (tile 2/4)"


def test_a_stage_outside_the_plan_is_a_bug():
    with pytest.raises(ValueError):
        starter_plan(estimate=False).info("denoise")


def _assert_rises_to_one(seen):
    fractions = [info.fraction for info in seen]
    assert fractions == sorted(fractions), "the fraction went back"
    assert fractions[0] < 0.5 and fractions[-1] == 1.0
    assert all(info.label and info.label[0].isupper() for info in seen)


def test_a_starter_job_rises_from_near_zero_to_one(starter_dir):
    pipe = load_restorer(str(starter_dir), device="cpu").pipeline
    seen = []
    image = torch.rand(1, 3, 100, 120, generator=torch.Generator().manual_seed(0))
    pipe(image, upscale=4, return_maps=True, on_progress=seen.append)
    assert {info.stage for info in seen} == {"remove", "estimate", "colour"}
    _assert_rises_to_one(seen)
    total = sum(STARTER_WEIGHTS.values())  # 400 x 480 px: 2 x 2 tiles
    assert seen[0].fraction == pytest.approx(STARTER_WEIGHTS["remove"] / 4 / total, abs=1e-4)
    assert seen[0].label == f"Removing degradations (tile 1/{seen[0].tiles})"


def test_a_tiny_dreamclear_job_rises_from_near_zero_to_one(pipe):
    seen = []
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    pipe(
        image,
        upscale=4,
        min_short_side=64,
        num_inference_steps=3,
        generator=torch.Generator().manual_seed(0),
        on_progress=seen.append,
    )
    assert seen[0].stage == "remove" and seen[-1].stage == "colour"
    _assert_rises_to_one(seen)
    assert "Denoising 2/3" in {info.label for info in seen}
