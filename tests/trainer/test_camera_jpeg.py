"""JPEG saves the starter learns from: clean photos saved as a camera saves them, and single-stage
JPEGs up to the quality a camera uses, so a restorer does not take any JPEG for strong damage."""

from __future__ import annotations

import pytest
import torch

from engine.degradation import ops
from engine.degradation.second_order import downscale_clean
from engine.degradation.single_stage import MILD_TO_MODERATE
from trainer.config import ConfigError, validate
from trainer.data import CameraJpeg, DegradedCrops, camera_jpeg, degraded_crops
from trainer.photos import load_photos

KWARGS = dict(crop_min=48, crop_max=48, scale=4, seed=0, samples_per_epoch=40)


def _clean_crops(photos_dir, jpeg: CameraJpeg) -> DegradedCrops:
    photos = load_photos(photos_dir, min_side=48)
    return DegradedCrops(
        photos, **KWARGS, spatially_varying=False, clean_fraction=1.0, clean_jpeg=jpeg
    )


def test_a_share_of_clean_samples_is_saved_as_a_camera_jpeg(photos_dir):
    plain = _clean_crops(photos_dir, CameraJpeg())
    saved = _clean_crops(photos_dir, CameraJpeg(0.5, (92, 92)))
    kinds = []
    for i in range(40):
        hq, lq = saved[i]["hq"], saved[i]["lq"]
        downscaled = downscale_clean(hq, 4)
        # The same crops as a run without JPEGs: the save does not change the sample stream.
        assert torch.equal(hq, plain[i]["hq"]) and torch.equal(plain[i]["lq"], downscaled)
        if torch.equal(lq, downscaled):
            kinds.append("plain")
        else:
            assert torch.equal(lq, ops.jpeg(downscaled, 92)), f"sample {i} is neither"
            kinds.append("jpeg")
        assert torch.equal(lq, saved[i]["lq"]), "a sample is the same every time"
    assert 10 <= kinds.count("jpeg") <= 30


def test_camera_jpeg_quality_stays_in_its_range():
    lq = torch.rand(3, 32, 32)
    for seed in range(20):
        out = camera_jpeg(lq, seed, CameraJpeg(1.0, (90, 91)))
        assert any(torch.equal(out, ops.jpeg(lq, q)) for q in (90, 91))
    assert camera_jpeg(lq, 0, CameraJpeg(0.0, (90, 91))) is lq


def test_the_config_sets_the_jpeg_qualities(make_starter_config, photos_dir):
    config = make_starter_config("jpeg_knobs", max_steps=1)
    assert config.data.single_stage_jpeg_quality == (55, 95)
    assert config.data.clean_jpeg_fraction == 0.0
    photos = load_photos(photos_dir, min_side=48)
    default = degraded_crops(config, photos, spatially_varying=False)
    # Defaults keep earlier recipes' data: the ranges the single stage always had.
    assert default.single_stage_ranges == MILD_TO_MODERATE
    assert default.clean_jpeg == CameraJpeg()

    config.data.single_stage_jpeg_quality = (97, 98)
    config.data.clean_jpeg_fraction = 0.25
    config.data.clean_jpeg_quality = (93, 96)
    crops = degraded_crops(config, photos, spatially_varying=False)
    assert crops.single_stage_ranges.jpeg_quality == (97, 98)
    assert crops.clean_jpeg == CameraJpeg(0.25, (93, 96))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("single_stage_jpeg_quality", (60, 50)),
        ("single_stage_jpeg_quality", (0, 90)),
        ("clean_jpeg_quality", (90, 101)),
        ("clean_jpeg_fraction", 1.5),
    ],
)
def test_bad_jpeg_settings_name_their_field(make_starter_config, field, value):
    config = make_starter_config("jpeg_bad", max_steps=1)
    setattr(config.data, field, value)
    with pytest.raises(ConfigError, match=rf"data\.{field}"):
        validate(config)


def test_single_stage_samples_draw_their_jpeg_quality_from_the_set_range(photos_dir):
    from dataclasses import replace

    from engine.degradation.single_stage import random_single_stage

    photos = load_photos(photos_dir, min_side=48)
    ranges = replace(MILD_TO_MODERATE, jpeg_prob=1.0, jpeg_quality=(98, 98))
    kwargs = dict(KWARGS, spatially_varying=False, single_stage_fraction=1.0)
    default = DegradedCrops(photos, **kwargs)
    near_lossless = DegradedCrops(photos, **kwargs, single_stage_ranges=ranges)
    for i in range(5):
        hq, seed = near_lossless[i]["hq"], near_lossless.draw(i).seed
        lq = near_lossless[i]["lq"]
        assert torch.equal(lq, random_single_stage(hq, scale=4, seed=seed, ranges=ranges).float())
        assert torch.equal(default[i]["lq"], random_single_stage(hq, scale=4, seed=seed).float())
