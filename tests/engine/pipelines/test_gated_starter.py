"""The starter's two experts behind their gate: the blend, the skips, and loading a folder."""

from __future__ import annotations

import shutil

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from engine.errors import CheckpointError
from engine.models.damage_features import DAMAGE_FEATURES, V2_FEATURE_COUNT, damage_features
from engine.models.expert_gate import SURE_WEIGHT, ExpertGate, GatedRestorer
from engine.models.starter import build_compact_restorer
from engine.restorers import load_restorer
from engine.weights import starter_io


class Counted(nn.Module):
    """A restorer that counts its calls."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, x):
        self.calls += 1
        return self.inner(x)


def _experts(scale: int = 4):
    torch.manual_seed(1)
    gentle = Counted(build_compact_restorer(num_feat=8, num_conv=2, scale=scale).eval())
    heavy = Counted(build_compact_restorer(num_feat=8, num_conv=2, scale=scale).eval())
    return gentle, heavy


def _photo_like(seed: int, size: int = 48) -> torch.Tensor:
    """A smooth random picture (B=1): gradients and soft blobs, no pixel noise."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, size // 8, size // 8, generator=generator)
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


@torch.no_grad()
def test_the_gate_gives_one_weight_per_input_in_0_1_at_the_size_asked():
    gate = ExpertGate()
    lq = torch.rand(2, 3, 20, 28)
    weights = gate(lq, (80, 112))
    assert weights.shape == (2, 1, 80, 112)
    assert float(weights.min()) >= 0 and float(weights.max()) <= 1
    assert torch.equal(weights[:, :, :1, :1].expand_as(weights), weights)
    assert gate(lq).shape == (2, 1, 20, 28)
    # Any size works, odd and below the 16 px the features need.
    assert gate(torch.rand(1, 3, 5, 9)).shape == (1, 1, 5, 9)


@torch.no_grad()
def test_the_damage_features_see_noise_blocks_and_blur():
    clean = _photo_like(0)
    index = {name: i for i, name in enumerate(DAMAGE_FEATURES)}
    noisy = (
        clean + 0.05 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    ).clamp(0, 1)
    base, with_noise = damage_features(clean)[0], damage_features(noisy)[0]
    assert with_noise[index["noise"]] > base[index["noise"]] + 1.0
    assert with_noise[index["diagonal_share"]] > base[index["diagonal_share"]]
    # 8 px blocks: a staircase of flat 8-column steps.
    blocks = torch.arange(48.0).div(8).floor().div(6).expand(1, 3, 48, 48).contiguous()
    ramp = torch.arange(48.0).div(48).expand(1, 3, 48, 48).contiguous()
    blockiness = index["blockiness"]
    assert damage_features(blocks)[0, blockiness] > damage_features(ramp)[0, blockiness] + 1.0
    blurred = F.avg_pool2d(F.pad(noisy, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    fine = index["fine_to_coarse"]
    assert damage_features(blurred)[0, fine] < damage_features(noisy)[0, fine]


@torch.no_grad()
def test_the_v23_statistics_tell_added_noise_from_a_photos_own_detail():
    index = {name: i for i, name in enumerate(DAMAGE_FEATURES)}
    generator = torch.Generator().manual_seed(3)
    noise = 0.5 + 0.05 * torch.randn(1, 1, 64, 64, generator=generator).expand(1, 3, 64, 64)
    # Detail that is not noise: sharp-edged soft blobs (edges make heavy tails).
    edges = (_photo_like(4, size=64) > 0.5).float() * 0.6 + 0.2
    white, textured = damage_features(noise)[0], damage_features(edges)[0]
    # White noise is as strong one octave down (log ratio near 0) and gaussian (kurtosis near
    # 3); edges are weaker at the finest level against the next and heavy-tailed.
    assert abs(float(white[index["noise_fine_to_coarse"]])) < 0.3
    assert abs(float(white[index["noise_kurtosis"]].exp()) - 3) < 0.6
    assert textured[index["noise_kurtosis"]] > white[index["noise_kurtosis"]] + 1.0
    # The noise floor reads the flattest blocks: texture over half the picture leaves it as
    # it was, while the mean noise estimate of that picture rises.
    flat_noisy = 0.5 + 0.02 * torch.randn(1, 1, 64, 64, generator=generator).expand(1, 3, 64, 64)
    half = flat_noisy.clone()
    half[..., :, 32:] += 0.3 * torch.rand(1, 1, 64, 32, generator=generator) - 0.15
    floor, diagonal = index["noise_floor"], index["diagonal_detail"]
    flat_features, half_features = damage_features(flat_noisy)[0], damage_features(half)[0]
    assert abs(float(half_features[floor] - flat_features[floor])) < 0.3
    assert half_features[diagonal] > flat_features[diagonal] + 1.0
    # JPEG's grid along rows, and in the chroma: staircases of flat 8 px steps.
    steps = torch.arange(48.0).div(8).floor().div(6)
    ramp = torch.arange(48.0).div(48)
    rows = damage_features(steps[:, None].expand(1, 3, 48, 48).contiguous())[0]
    smooth = damage_features(ramp[:, None].expand(1, 3, 48, 48).contiguous())[0]
    assert rows[index["row_blockiness"]] > smooth[index["row_blockiness"]] + 1.0
    blue_steps = torch.full((1, 3, 48, 48), 0.5)
    blue_steps[:, 2] = steps.expand(48, 48) * 0.5 + 0.25
    blue_ramp = torch.full((1, 3, 48, 48), 0.5)
    blue_ramp[:, 2] = ramp.expand(48, 48) * 0.5 + 0.25
    chroma = index["chroma_blockiness"]
    assert damage_features(blue_steps)[0, chroma] > damage_features(blue_ramp)[0, chroma] + 1.0


@torch.no_grad()
def test_a_v2_gate_reads_the_first_eight_statistics_and_a_v23_gate_all_through_a_hidden_layer(
    tmp_path,
):
    lq = torch.rand(3, 3, 40, 44)
    old = ExpertGate(num_features=V2_FEATURE_COUNT)
    assert torch.equal(old.features(lq), damage_features(lq)[:, :V2_FEATURE_COUNT])
    # Saved as v2.1 and v2.2 saved theirs: the regression's head alone, and so it loads.
    old.save_pretrained(tmp_path / "old")
    assert {"head.weight", "head.bias"} <= set(old.state_dict())
    assert not any(key.startswith("hidden") for key in old.state_dict())
    assert ExpertGate.from_pretrained(tmp_path / "old").hidden is None

    torch.manual_seed(5)
    new = ExpertGate(hidden_units=16)
    new.set_standardisation([torch.rand(4, 3, 32, 32)])
    assert new.features(lq).shape == (3, len(DAMAGE_FEATURES))
    new.save_pretrained(tmp_path / "new")
    loaded = ExpertGate.from_pretrained(tmp_path / "new")
    assert loaded.config.hidden_units == 16 and loaded.hidden.out_features == 16
    weights = new(lq, (8, 8))
    torch.testing.assert_close(loaded(lq, (8, 8)), weights)
    assert weights.shape == (3, 1, 8, 8)
    assert len(set(weights[:, 0, 0, 0].tolist())) == 3  # one weight per input


@pytest.mark.parametrize(
    "settings", [{"num_features": 0}, {"num_features": 15}, {"hidden_units": -1}]
)
def test_a_gate_of_impossible_sizes_is_refused(settings):
    with pytest.raises(ValueError, match=next(iter(settings))):
        ExpertGate(**settings)


def test_the_standardisation_centres_the_features():
    gate = ExpertGate()
    inputs = [torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32).mul(0.2)]
    gate.set_standardisation(inputs)
    standardised = (
        torch.cat([damage_features(x) for x in inputs]) - gate.feature_mean
    ) / gate.feature_std
    assert torch.allclose(standardised.mean(0), torch.zeros(len(DAMAGE_FEATURES)), atol=1e-4)


@torch.no_grad()
def test_a_sure_gate_runs_one_expert_and_an_unsure_one_blends_both(gate_saying):
    gentle, heavy = _experts()
    lq = torch.rand(1, 3, 12, 16)
    expected_gentle, expected_heavy = gentle.inner(lq), heavy.inner(lq)

    result = GatedRestorer(gentle, heavy, gate_saying(-20.0), scale=4)(lq)
    assert torch.equal(result, expected_gentle) and (gentle.calls, heavy.calls) == (1, 0)

    result = GatedRestorer(gentle, heavy, gate_saying(20.0), scale=4)(lq)
    assert torch.equal(result, expected_heavy) and (gentle.calls, heavy.calls) == (1, 1)

    result = GatedRestorer(gentle, heavy, gate_saying(0.0), scale=4)(lq)
    assert torch.allclose(result, (expected_gentle + expected_heavy) / 2, atol=1e-6)
    assert (gentle.calls, heavy.calls) == (2, 2)
    # Just outside the sure band still blends.
    logit = float(torch.logit(torch.tensor(SURE_WEIGHT * 2))) / ExpertGate().decisiveness
    GatedRestorer(gentle, heavy, gate_saying(logit), scale=4)(lq)
    assert (gentle.calls, heavy.calls) == (3, 3)


def _save(module: nn.Module, path):
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, path)


@pytest.fixture
def gated_starter_dir(compact_starter_dir, tmp_path):
    folder = tmp_path / "gated"
    shutil.copytree(compact_starter_dir, folder)
    torch.manual_seed(2)
    _save(build_compact_restorer(num_feat=8, num_conv=2, scale=4),
          folder / starter_io.GENTLE_RESTORER_FILE)  # fmt: skip
    ExpertGate().save_pretrained(folder / starter_io.GATE_FOLDER)
    return folder


def test_a_folder_with_a_gentle_expert_and_a_gate_restores_through_both(gated_starter_dir):
    networks = starter_io.load_starter_networks(gated_starter_dir)
    assert isinstance(networks.restorer, GatedRestorer) and networks.restorer_scale == 4
    pipe = load_restorer(str(gated_starter_dir), device="cpu").pipeline
    output = pipe(torch.rand(1, 3, 20, 24), upscale=2, return_maps=True)
    assert output.image.shape == (1, 3, 40, 48) and output.degradation_maps is not None


def test_a_folder_without_them_keeps_its_one_restorer(compact_starter_dir):
    networks = starter_io.load_starter_networks(compact_starter_dir)
    assert not isinstance(networks.restorer, GatedRestorer)


@pytest.mark.parametrize("removed", [starter_io.GENTLE_RESTORER_FILE, starter_io.GATE_FOLDER])
def test_half_a_pair_is_a_broken_install_and_says_what_is_missing(gated_starter_dir, removed):
    target = gated_starter_dir / removed
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(CheckpointError, match="incomplete") as caught:
        starter_io.load_starter_networks(gated_starter_dir)
    assert removed in str(caught.value)


def test_experts_of_two_scales_are_refused(gated_starter_dir):
    _save(build_compact_restorer(num_feat=8, num_conv=2, scale=2),
          gated_starter_dir / starter_io.GENTLE_RESTORER_FILE)  # fmt: skip
    with pytest.raises(CheckpointError, match="x2"):
        starter_io.load_starter_networks(gated_starter_dir)
