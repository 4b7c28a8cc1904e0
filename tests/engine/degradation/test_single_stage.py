"""One-stage degradations: fixed (the bench's mild and moderate levels) and drawn at random
(the starter's training mix)."""

from __future__ import annotations

import numpy as np
import torch

from engine.degradation import ops
from engine.degradation.single_stage import (
    MILD_TO_MODERATE,
    SingleStageParams,
    draw_single_stage,
    random_single_stage,
    single_stage,
)


def _hq() -> torch.Tensor:
    return torch.rand(3, 64, 48, generator=torch.Generator().manual_seed(0))


def test_no_damage_is_a_plain_resize_on_the_8_bit_grid():
    params = SingleStageParams(0.0, "area", 0.0, False, None)
    lq = single_stage(_hq(), params, scale=4, generator=torch.Generator())
    assert lq.shape == (3, 16, 12)
    torch.testing.assert_close(lq, ops.quantise(ops.resize(_hq(), (16, 12), "area")))


def test_each_step_changes_the_picture_and_stronger_is_further():
    gen = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    clean = single_stage(_hq(), SingleStageParams(0.0, "bicubic", 0.0, False, None), scale=2,
                         generator=gen())  # fmt: skip
    errors = []
    for blur, noise, quality in ((0.5, 1.0, 95), (1.5, 8.0, 60)):
        params = SingleStageParams(blur, "bicubic", noise, False, quality)
        errors.append(
            float((single_stage(_hq(), params, scale=2, generator=gen()) - clean).abs().mean())
        )
    assert 0 < errors[0] < errors[1]


def test_random_draws_are_seeded_and_stay_in_their_ranges():
    assert torch.equal(random_single_stage(_hq(), scale=4, seed=5),
                       random_single_stage(_hq(), scale=4, seed=5))  # fmt: skip
    assert not torch.equal(random_single_stage(_hq(), scale=4, seed=5),
                           random_single_stage(_hq(), scale=4, seed=6))  # fmt: skip
    rng = np.random.default_rng(0)
    draws = [draw_single_stage(rng) for _ in range(300)]
    ranges = MILD_TO_MODERATE
    blurs = [d.blur_sigma for d in draws if d.blur_sigma]
    assert min(blurs) >= ranges.blur_sigma[0] and max(blurs) <= ranges.blur_sigma[1]
    qualities = [d.jpeg_quality for d in draws if d.jpeg_quality is not None]
    assert min(qualities) >= ranges.jpeg_quality[0] and max(qualities) <= ranges.jpeg_quality[1]
    # Every kind of draw happens: with and without each step, every resize mode.
    assert any(d.blur_sigma == 0 for d in draws) and any(d.jpeg_quality is None for d in draws)
    assert {d.resize_mode for d in draws} == set(ops.RESIZE_MODES)
    assert {d.gray_noise for d in draws} == {True, False}


def test_bench_levels_are_single_stages():
    """`bench quality`'s mild level is `single_stage` with its fixed values (bicubic, colour
    noise), so the bench and the training mix share one implementation."""
    from engine.bench.quality_levels import LEVELS

    params = SingleStageParams(0.8, "bicubic", 2.0, False, 90)
    expected = single_stage(_hq(), params, scale=4, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(LEVELS["mild"](_hq(), scale=4, seed=3), expected)
