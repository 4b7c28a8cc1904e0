"""The gated starter's colour fix: on the gentle restorer's share, not on heavy damage."""

from __future__ import annotations

import pytest
import torch

from engine.models.expert_gate import GatedRestorer
from engine.models.starter import build_compact_restorer
from engine.pipelines.color_fix import apply_color_fix
from engine.pipelines.expert_color_fix import expert_color_fix
from engine.pipelines.starter import StarterRestorePipeline
from engine.pipelines.strength import upscale_input


def _experts():
    torch.manual_seed(1)
    gentle = build_compact_restorer(num_feat=8, num_conv=2, scale=4).eval()
    heavy = build_compact_restorer(num_feat=8, num_conv=2, scale=4).eval()
    return gentle, heavy


def _pipeline(restorer) -> StarterRestorePipeline:
    return StarterRestorePipeline(restorer, None, channels=(), restorer_scale=4)


@pytest.fixture
def gated(gate_saying):
    """`gated(logit)`: a starter pipeline of two tiny experts behind a gate saying `logit`."""

    def make(logit: float) -> StarterRestorePipeline:
        return _pipeline(GatedRestorer(*_experts(), gate_saying(logit), scale=4))

    return make


IMAGE = torch.rand(1, 3, 20, 24, generator=torch.Generator().manual_seed(0))


def test_where_the_gate_takes_the_heavy_expert_its_colours_are_kept(gated):
    pipe = gated(20.0)
    fixed = pipe(IMAGE, upscale=4, color_fix="wavelet").image
    assert torch.equal(fixed, pipe(IMAGE, upscale=4, color_fix="none").image)


def test_where_it_takes_the_gentle_expert_the_fix_applies_as_to_one_restorer(gated):
    gentle, _ = _experts()
    alone = _pipeline(gentle)(IMAGE, upscale=4, color_fix="wavelet").image
    pipe = gated(-20.0)
    fixed = pipe(IMAGE, upscale=4, color_fix="wavelet").image
    assert torch.equal(fixed, alone)
    assert not torch.equal(fixed, pipe(IMAGE, upscale=4, color_fix="none").image)


def test_in_between_the_fix_is_blended_by_the_heavy_experts_share(gated):
    pipe = gated(0.0)  # weight 0.5 everywhere
    raw = pipe(IMAGE, upscale=4, color_fix="none").image
    fixed = apply_color_fix("wavelet", raw, upscale_input(IMAGE, raw.shape[-2:]))
    expected = ((fixed + raw) / 2).clamp(0, 1)
    result = pipe(IMAGE, upscale=4, color_fix="wavelet").image
    torch.testing.assert_close(result, expected, atol=1e-5, rtol=0)


def test_the_share_is_only_computed_when_a_fix_is_asked():
    asked = []

    def share() -> torch.Tensor:
        asked.append(True)
        return torch.ones(1, 1, 8, 8)

    restored, reference = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    assert torch.equal(expert_color_fix("none", restored, reference, share), restored)
    assert not asked
    assert torch.equal(expert_color_fix("wavelet", restored, reference, share), restored)
    assert asked
