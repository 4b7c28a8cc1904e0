"""The starter weights shipped in resources/ load and really restore degraded photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dreamclear_studio_resources import resource_path
from engine.degradation.records import STRENGTH_CHANNELS
from engine.degradation.spatial import degrade_spatially_varying
from engine.imaging.io import load_image
from engine.metrics.rank_correlation import spearman
from engine.restorers import load_restorer
from engine.weights.starter_io import starter_available

PHOTOS = resource_path("photos")
HELD_OUT = ("bridge.jpg", "ladybird.jpg", "storm.jpg", "sunset.jpg", "wood.jpg")
"""Photos the starter never trained on (resources/configs/starter.toml)."""

pytestmark = pytest.mark.skipif(not starter_available(), reason="no bundled starter weights")


def load_starter_pipeline():
    return load_restorer("starter", device="cpu").pipeline


def centre_crop(name: str, size: int = 256) -> torch.Tensor:
    rgb = load_image(PHOTOS / name).rgb
    top, left = (rgb.shape[0] - size) // 2, (rgb.shape[1] - size) // 2
    crop = np.ascontiguousarray(rgb[top : top + size, left : left + size])
    return torch.from_numpy(crop).permute(2, 0, 1).contiguous()


@pytest.fixture(scope="module")
def levels_report():
    """`bench quality --model bicubic --model starter --levels
    clean,clean-jpeg,clean-bicubic,mild,moderate,heavy` on the five held-out photos (256 px
    centre crops), as docs/benchmarks.md reports it."""
    from engine.bench.quality_levels import compare

    starter = load_restorer("starter", device="cpu")
    photos = [PHOTOS / name for name in HELD_OUT]
    return compare(
        photos,
        {"bicubic": None, "starter": starter},
        levels=["clean", "clean-jpeg", "clean-bicubic", "mild", "moderate", "heavy"],
        crop=256,
    )


GAIN_FLOORS = {
    "clean": 0.1,
    "clean-jpeg": -0.25,
    "clean-bicubic": 0.3,
    "mild": 0.3,
    "moderate": 0.85,
    "heavy": 1.9,
}
"""PSNR-Y over bicubic the bundled starter must keep per level: the gains measured when v2.4
shipped (the gentle restorer taught camera JPEGs: clean +0.37, clean-jpeg +0.03,
clean-bicubic +0.63, mild +0.63, moderate +1.14, heavy +2.01 dB;
resources/models/starter/README.md) less about 0.3 dB; heavy since v2.6 (no colour fix where
the all-round restorer works: +2.22) less 0.3. v2.5 scored as v2.4 but clean-jpeg -0.01 and
mild +0.62. Issue 15's mild target (+1.0 dB) is not met yet, nor moderate's and heavy's on
512 px crops (v2.6: +0.82, +1.46); v2.3 scored +0.38, -0.13, +0.61,
+0.52, +1.14 and +2.01 here, v2.2 +0.38, +0.61, +0.10, +0.93 and +1.57 (without clean-jpeg),
v2.1 +0.40, +0.04, -0.18, +0.74 and +1.51, v2's one restorer -1.17, -0.51, +0.32 and +1.51
on the four default levels, v1 -4.00, -2.15, -0.44 and +1.60."""


@pytest.mark.parametrize("level", list(GAIN_FLOORS))
def test_the_bundled_starter_gains_over_bicubic_at_every_level(levels_report, level):
    gain = levels_report.mean(level, "starter", "psnr") - levels_report.mean(
        level, "bicubic", "psnr"
    )
    assert gain > GAIN_FLOORS[level], f"{level}: {gain:+.2f} dB over bicubic"


def test_a_camera_jpeg_save_costs_the_bundled_starter_little_of_its_clean_gain(levels_report):
    """A clean photo saved as a camera saves it (JPEG 95, 4:2:0) is what a user brings. The
    gain over bicubic it keeps against the unsaved photo's: 0.34 dB less when v2.4 shipped,
    0.51 with v2.3's gentle restorer, which took the chroma subsampling for strong damage."""

    def gain(level: str) -> float:
        return levels_report.mean(level, "starter", "psnr") - levels_report.mean(
            level, "bicubic", "psnr"
        )

    assert gain("clean") - gain("clean-jpeg") < 0.45


@pytest.mark.parametrize("level", ["clean", "mild", "moderate"])
def test_the_bundled_starter_keeps_most_of_bicubics_detail(levels_report, level):
    """High-frequency energy against the ground truth's, as a share of bicubic's: 1.07, 0.95
    and 0.85 on clean, mild and moderate photos when v2.4 shipped (v2.3: 1.07, 0.94, 0.86;
    v2.2: 1.07, 0.89, 0.83;
    v2.1: 1.13, 0.87, 0.82; v2: 0.99, 0.86, 0.81; v1: 0.79, 0.70, 0.70; issue 15 asks for 1.0
    or more on mild and moderate: met on 512 px crops, 1.12 and 1.12, not on these 256 px
    ones)."""
    share = levels_report.mean(level, "starter", "detail") / levels_report.mean(
        level, "bicubic", "detail"
    )
    assert share > 0.8, f"{level}: {share:.2f} of bicubic's detail"


@torch.no_grad()
def test_where_the_bundled_gate_takes_the_all_round_restorer_its_colours_are_kept():
    """Heavy damage: the input's low frequencies carry it (noise blotches, JPEG colour blocks),
    so the colour fix is not applied there (since v2.6; with it, wood's 512 px crop lost 0.94
    dB). The gate is sure on wood's heavy crop, so the result is the all-round restorer's."""
    from engine.bench.quality_levels import LEVELS

    pipe = load_starter_pipeline()
    seed = HELD_OUT.index("wood.jpg")
    lq = torch.as_tensor(LEVELS["heavy"](centre_crop("wood.jpg"), scale=4, seed=seed))
    lq = lq.float().clamp(0, 1)[None]
    assert float(pipe.restorer.gate(lq, (1, 1))) > 0.98
    restored = pipe(lq, upscale=4, color_fix="wavelet").image
    torch.testing.assert_close(restored, pipe.restorer.heavy(lq).clamp(0, 1), atol=1e-6, rtol=0)


@torch.no_grad()
def test_the_bundled_gate_keeps_everyday_damage_from_the_all_round_restorer():
    """The gate's weight for the all-round restorer on the held-out photos, each level seeded
    as `bench quality` seeds it: below even odds on clean, mild and moderate damage for every
    photo (v2.3: 0.01 at most), above it on heavy damage for four of five (v2.3: bridge 0.11,
    the others 1.00). v2.2's gate sent storm's grainy sky to it on mild and moderate damage
    (1.00), and wood's 192 px centre with mild damage (0.95, v2.3: 0.12), whose grain came out
    smoothed away."""
    from engine.bench.quality_levels import LEVELS

    gate = load_starter_pipeline().restorer.gate

    def weight(name: str, level: str, seed: int, size: int = 256) -> float:
        lq = torch.as_tensor(LEVELS[level](centre_crop(name, size), scale=4, seed=seed))
        return float(gate(lq.float().clamp(0, 1)[None], (1, 1)))

    for level in ("clean", "mild", "moderate"):
        weights = [weight(name, level, seed) for seed, name in enumerate(HELD_OUT)]
        assert max(weights) < 0.5, f"{level}: {weights}"
    assert weight("wood.jpg", "mild", HELD_OUT.index("wood.jpg"), size=192) < 0.5
    heavy = [weight(name, "heavy", seed) for seed, name in enumerate(HELD_OUT)]
    assert sum(w > 0.5 for w in heavy) >= 4, heavy


def test_the_bundled_starter_maps_every_token():
    maps = load_starter_pipeline()(centre_crop("wood.jpg", 64)[None], upscale=4, return_maps=True)
    strengths = maps.degradation_maps.strengths
    assert strengths.shape == (4, 16, 16)
    assert float(strengths.min()) >= 0 and float(strengths.max()) <= 1


def test_the_bundled_estimator_reads_noise_and_jpeg_on_held_out_photos():
    """Its noise and JPEG maps follow the applied strengths token by token (0.93 and 0.96 on
    the estimator bench when the weights shipped); blur and scale are not asserted: see
    resources/models/starter/README.md."""
    pipeline = load_starter_pipeline()
    predicted, applied = [], []
    for seed, name in enumerate(HELD_OUT):
        degraded = degrade_spatially_varying(centre_crop(name).float() / 255, seed=seed)
        upscaled = F.interpolate(
            degraded.lq[None], scale_factor=4, mode="bicubic", align_corners=False
        ).clamp(0, 1)
        with torch.no_grad():
            predicted.append(pipeline.estimate(upscaled).reshape(4, -1))
        applied.append(degraded.strength_maps.reshape(4, -1))
    predicted_all, applied_all = torch.cat(predicted, 1), torch.cat(applied, 1)
    for channel in ("noise", "jpeg"):
        index = STRENGTH_CHANNELS.index(channel)
        rho = spearman(predicted_all[index].numpy(), applied_all[index].numpy())
        assert rho > 0.8, f"{channel}: Spearman {rho:.2f}"


def test_the_bundled_estimator_says_how_well_it_reads_each_channel():
    """estimator/validation.json measures every channel; the map then shows what reads well
    (noise and JPEG, asserted above) and leaves out what does not (blur, issue 15)."""
    from engine.models.starter import STARTER_CHANNELS
    from engine.pipelines.starter import MIN_MAP_SPEARMAN, StrengthMaps
    from engine.weights.starter_io import load_starter_networks

    measured = load_starter_networks().channel_spearman
    assert measured is not None and set(measured) == set(STARTER_CHANNELS)
    maps = StrengthMaps(torch.zeros(4, 1, 1), STARTER_CHANNELS, spearman=measured)
    assert {"noise", "jpeg"} <= set(maps.shown)
    assert set(maps.shown) == {c for c in STARTER_CHANNELS if measured[c] >= MIN_MAP_SPEARMAN}
