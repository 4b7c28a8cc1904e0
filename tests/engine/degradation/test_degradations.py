"""Degradations: reproducible, recorded, and each stage measurably does what its label says."""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.degradation import ops
from engine.degradation.kernels import (
    excess_sigma,
    gaussian_family_kernel,
    sinc_kernel,
)
from engine.degradation.records import STRENGTH_CHANNELS, DegradationParams, min_scale_strength
from engine.degradation.second_order import degrade
from engine.degradation.settings import SEESR_SETTINGS, DegradationSettings
from engine.degradation.spatial import (
    degrade_spatially_varying,
    degrade_with_masks,
    random_strength_masks,
)
from engine.errors import BadInputError, BadSettingError

SIZE = 128


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Run as a data-loader worker would: on shared cores, more threads only spin and wait."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def textured(size: int = SIZE, seed: int = 0) -> torch.Tensor:
    """Detail at every scale: gratings plus lightly smoothed noise, within [0.1, 0.9]."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    gratings = sum(torch.sin(x * f + y * f / 2 + c) for f, c in ((0.3, 0), (1.1, 1), (2.3, 2)))
    noise = ops.gaussian_blur(torch.rand(3, size, size, generator=g), 0.7)
    image = 0.5 * gratings / 3 + noise
    image = (image - image.amin()) / (image.amax() - image.amin())
    return 0.1 + 0.8 * image


def hf_energy(image: torch.Tensor, block: int | None = None) -> torch.Tensor:
    """Mean squared laplacian, over the image or over each block x block tile."""
    lap = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]])
    energy = ops.filter2d(image, lap).pow(2).mean(0, keepdim=True)
    return energy.mean() if block is None else F.avg_pool2d(energy[None], block)[0, 0]


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ranks = [np.argsort(np.argsort(t.flatten().double().numpy())) for t in (a, b)]
    return float(np.corrcoef(*ranks)[0, 1])


def nothing() -> DegradationSettings:
    """Settings with every random stage off (scale 1 then returns the image on 8 bits)."""
    off = {
        "blur_prob": 0.0,
        "resize_probs": (0.0, 0.0, 1.0),
        "noise_prob": 0.0,
        "jpeg_prob": 0.0,
    }
    return dataclasses.replace(
        SEESR_SETTINGS,
        first=dataclasses.replace(SEESR_SETTINGS.first, **off),
        second=dataclasses.replace(SEESR_SETTINGS.second, **off),
        final_sinc_prob=0.0,
    )


def first_stage(**changes: object) -> DegradationSettings:
    base = nothing()
    return dataclasses.replace(base, first=dataclasses.replace(base.first, **changes))


# ----------------------------------------------------------------------------- degrade


def test_same_seed_same_result_and_different_seeds_differ() -> None:
    hq = textured()
    a, b, c = (degrade(hq, seed=s) for s in (7, 7, 8))
    assert torch.equal(a.lq, b.lq) and a.params == b.params
    assert not torch.equal(a.lq, c.lq) and a.params != c.params
    assert torch.equal(hq, textured()), "the input must not be modified"


def test_output_shape_range_and_8_bit_grid() -> None:
    for seed in range(4):
        lq = degrade(textured(), scale=4, seed=seed).lq
        assert lq.shape == (3, SIZE // 4, SIZE // 4) and lq.dtype == torch.float32
        assert lq.min() >= 0 and lq.max() <= 1
        assert torch.equal(lq * 255, (lq * 255).round())


def test_params_recorded_and_strengths_in_unit_range() -> None:
    kinds = set()
    for seed in range(12):
        params = degrade(textured(64), scale=4, seed=seed).params
        assert isinstance(params, DegradationParams)
        assert params.first.blur is not None and params.first.noise is not None
        assert params.first.jpeg_quality is not None and 30 <= params.first.jpeg_quality <= 95
        assert params.second.resize.size[0] == int(16 * params.second.resize.factor)
        assert params.final_order in ("resize_then_jpeg", "jpeg_then_resize")
        kinds.add(params.first.blur.kind)
        strengths = params.strengths()
        assert tuple(strengths) == STRENGTH_CHANNELS
        assert all(0.0 <= v <= 1.0 for v in strengths.values())
        assert strengths["scale"] >= min_scale_strength(4) - 1e-9
    assert len(kinds) >= 2


def test_everything_off_returns_the_image_on_8_bits() -> None:
    hq = textured()
    out = degrade(hq, scale=1, seed=0, settings=nothing())
    assert torch.equal(out.lq, ops.quantise(hq))
    assert out.params.strengths() == {"blur": 0.0, "noise": 0.0, "jpeg": 0.0, "scale": 0.0}


def test_blur_stage_removes_high_frequencies() -> None:
    hq = textured()
    settings = first_stage(blur_prob=1.0, sinc_prob=0.0, blur_sigma=(2.0, 2.0))
    out = degrade(hq, scale=1, seed=0, settings=settings)
    assert hf_energy(out.lq) < 0.3 * hf_energy(hq)
    assert out.params.first.blur is not None and out.params.strengths()["blur"] > 0.5


def test_final_sinc_is_recorded_and_blurs() -> None:
    hq = textured()
    settings = dataclasses.replace(nothing(), final_sinc_prob=1.0)
    # A cutoff near pi barely filters (its ringing even lifts the finest detail a little).
    out = next(
        out
        for seed in range(50)
        if (out := degrade(hq, scale=1, seed=seed, settings=settings)).params.final_sinc.cutoff
        < 1.5
    )
    assert out.params.final_sinc.kind == "sinc"
    assert hf_energy(out.lq) < 0.5 * hf_energy(hq) and out.params.strengths()["blur"] > 0.2


@pytest.mark.parametrize("gaussian", [1.0, 0.0])
def test_noise_stage_adds_noise_of_the_recorded_std(gaussian: float) -> None:
    hq = textured()
    settings = first_stage(
        noise_prob=1.0,
        gaussian_noise_prob=gaussian,
        noise_range=(20.0, 20.0),
        poisson_scale_range=(2.0, 2.0),
        gray_noise_prob=0.0,
    )
    out = degrade(hq, scale=1, seed=0, settings=settings)
    noise = out.params.first.noise
    assert noise is not None and noise.kind == ("gaussian" if gaussian else "poisson")
    residual_std = float((out.lq - hq).std()) * 255
    assert residual_std > 8
    assert residual_std == pytest.approx(noise.std, rel=0.1)
    assert out.params.strengths()["noise"] == pytest.approx(noise.std / 30, rel=1e-6)


def test_jpeg_stage_creates_8x8_blocks() -> None:
    hq = ops.gaussian_blur(textured(), 1.5)  # smooth, so block edges stand out

    def blockiness(image: torch.Tensor) -> float:
        steps = (image[..., 1:] - image[..., :-1]).abs().mean((0, 1))  # per column boundary
        at_edges = steps[7::8].mean()
        return float(at_edges / steps.mean())

    out = degrade(hq, scale=1, seed=0, settings=first_stage(jpeg_prob=1.0, jpeg_range=(30, 30)))
    assert out.params.first.jpeg_quality == 30
    assert blockiness(out.lq) > 1.3 * blockiness(hq)
    assert out.params.strengths()["jpeg"] == 1.0


def test_resize_stage_loses_detail_and_raises_scale_strength() -> None:
    hq = textured()
    settings = first_stage(resize_probs=(0.0, 1.0, 0.0), resize_range=(0.25, 1.0))
    out = degrade(hq, scale=1, seed=1, settings=settings)
    resize = out.params.first.resize
    assert resize.kind == "down" and resize.factor < 1
    assert resize.size == (int(SIZE * resize.factor),) * 2
    assert out.lq.shape == hq.shape  # the final resize brings it back to H / scale
    assert hf_energy(out.lq) < 0.8 * hf_energy(hq)
    expected = math.log(1 / resize.factor) / math.log(16)
    assert out.params.strengths()["scale"] == pytest.approx(expected)


def test_kernels_sum_to_one_and_excess_sigma_tracks_sigma() -> None:
    for family in ("gaussian", "generalized", "plateau"):
        kernel = gaussian_family_kernel(21, 2.0, 1.0, 0.5, family=family, beta=1.5)
        assert kernel.shape == (21, 21) and float(kernel.sum()) == pytest.approx(1.0)
    assert excess_sigma(gaussian_family_kernel(21, 2.0, 2.0, 0.0)) == pytest.approx(2.0, rel=0.02)
    assert excess_sigma(torch.ones(1, 1)) == 0.0
    assert excess_sigma(sinc_kernel(21, math.pi / 3)) > excess_sigma(sinc_kernel(21, math.pi))


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("image", "error"),
    [
        (torch.rand(SIZE, SIZE), BadInputError),
        (torch.rand(1, 3, SIZE, SIZE), BadInputError),
        (torch.rand(4, SIZE, SIZE), BadInputError),
        (torch.rand(3, 130, SIZE), BadInputError),
        (torch.rand(3, SIZE, SIZE) * 2, BadInputError),
        (torch.full((3, SIZE, SIZE), float("nan")), BadInputError),
        ((torch.rand(3, SIZE, SIZE) * 255).to(torch.uint8), BadInputError),
    ],
)
def test_bad_images_are_refused_with_a_hint(image: torch.Tensor, error: type) -> None:
    for run in (degrade, degrade_spatially_varying):
        with pytest.raises(error) as info:
            run(image, scale=4, seed=0)
        assert info.value.hint


def test_bad_settings_are_refused() -> None:
    with pytest.raises(BadSettingError):
        dataclasses.replace(SEESR_SETTINGS.first, kernel_probs=(0.5, 0.5, 0.5, 0, 0, 0))
    with pytest.raises(BadSettingError):
        dataclasses.replace(SEESR_SETTINGS.first, jpeg_range=(95, 30))
    with pytest.raises(BadSettingError):
        degrade(textured(), scale=0, seed=0)
    with pytest.raises(BadSettingError):
        degrade_spatially_varying(textured(), seed=0, token_px=24)


# ----------------------------------------------------------------------------- spatial


def test_spatial_shapes_ranges_and_determinism() -> None:
    hq = textured()
    a, b = (degrade_spatially_varying(hq, seed=3) for _ in range(2))
    c = degrade_spatially_varying(hq, seed=4)
    assert a.lq.shape == (3, SIZE // 4, SIZE // 4)
    assert a.strength_maps is not None and a.strength_maps.shape == (4, SIZE // 16, SIZE // 16)
    assert torch.equal(a.lq, b.lq) and torch.equal(a.strength_maps, b.strength_maps)
    assert not torch.equal(a.strength_maps, c.strength_maps)
    maps = a.strength_maps
    assert maps.min() >= 0 and maps.max() <= 1 and maps[3].min() >= min_scale_strength(4) - 1e-6
    assert a.params.strengths() == pytest.approx(
        {name: float(maps[i].mean()) for i, name in enumerate(STRENGTH_CHANNELS)}
    )
    # Each map really varies across the picture.
    assert all(float(m.max() - m.min()) > 0.2 for m in maps)


def lq_texture(size: int, seed: int = 0) -> torch.Tensor:
    """Random colours in scale x scale squares: strong detail at the LQ pixel scale."""
    g = torch.Generator().manual_seed(seed)
    cells = torch.rand(1, 3, size // 4, size // 4, generator=g)
    return F.interpolate(cells, scale_factor=4, mode="nearest")[0]


def _single_channel_masks(channel: int, seed: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks with only `channel` varying (over the whole [0, 1]); and the all-mild masks."""
    mild = torch.zeros(4, size, size)
    mild[3] = min_scale_strength(4)
    varied = mild.clone()
    mask = random_strength_masks(size, size, scale=1, seed=seed)[channel]
    low = float(mild[channel, 0, 0])
    varied[channel] = low + (1 - low) * (mask - mask.min()) / (mask.max() - mask.min())
    return varied, mild


def _block_mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d((a - b).pow(2).mean(0, keepdim=True)[None], 8)[0, 0]


def _hf_loss(lq: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return 1 - hf_energy(lq, 8) / hf_energy(ref, 8)


MEASURES = {
    # channel: local degradation of lq against the all-mild lq, per 8x8 LQ block (JPEG's)
    "blur": _hf_loss,
    "noise": lambda lq, ref: _block_mse(lq, ref).sqrt(),  # residual std
    "jpeg": _block_mse,
    "scale": _hf_loss,
}


@pytest.mark.parametrize("channel", STRENGTH_CHANNELS)
def test_strength_maps_match_measured_local_degradation(channel: str) -> None:
    size, index = 256, STRENGTH_CHANNELS.index(channel)
    hq = lq_texture(size)
    for seed in (0, 1, 2):
        varied, mild = _single_channel_masks(index, seed, size)
        strongest = mild.clone()
        strongest[index] = 1.0
        out, ref, full = (degrade_with_masks(hq, m, seed=seed) for m in (varied, mild, strongest))
        # Relative to what the strongest setting does to the same block: JPEG and blur damage
        # depend on the content as much as on the strength.
        measured = MEASURES[channel](out.lq, ref.lq) / MEASURES[channel](full.lq, ref.lq)
        labels = F.avg_pool2d(out.strength_maps[index][None, None], 2)[0, 0]  # 2x2 tokens
        assert spearman(labels, measured) > 0.7, seed


def test_spatial_noise_map_is_truthful_with_everything_varying() -> None:
    flat = torch.full((3, SIZE, SIZE), 0.5)  # blur and scale leave it alone; JPEG may not
    for seed in range(3):
        out = degrade_spatially_varying(flat, seed=seed)
        local_std = F.avg_pool2d((out.lq - 0.5).pow(2).mean(0, keepdim=True)[None], 4)[0, 0]
        assert spearman(out.strength_maps[1], local_std) > 0.7


# ----------------------------------------------------------------------------- speed


def test_a_256_crop_degrades_well_under_100_ms() -> None:
    hq = textured(256)
    for run in (degrade, degrade_spatially_varying):
        times = []
        for seed in range(5):
            start = time.perf_counter()
            run(hq, seed=seed)
            times.append(time.perf_counter() - start)
        assert sorted(times)[2] < 0.1, f"{run.__name__}: {times}"


def test_downscale_clean_is_a_box_downscale_on_the_8_bit_grid() -> None:
    from engine.degradation.second_order import downscale_clean

    hq = textured()
    lq = downscale_clean(hq, 4)
    assert lq.shape == (3, SIZE // 4, SIZE // 4)
    assert torch.equal(lq, (lq * 255).round() / 255)
    torch.testing.assert_close(lq, F.avg_pool2d(hq[None], 4)[0], atol=0.5 / 255 + 1e-6, rtol=0)
    with pytest.raises(BadSettingError):
        downscale_clean(hq, 0)
