"""Crops picked for detail (`data.detail_candidates`): the most detailed of several drawn
positions, so a small restorer trains on texture and edges more than on flat sky."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.config import MAX_DETAIL_CANDIDATES, ConfigError, validate
from trainer.data import DegradedCrops, crop_detail, degraded_crops
from trainer.photos import Photo

SIZE = 32
KWARGS = dict(crop_min=SIZE, crop_max=SIZE, scale=4, seed=3, samples_per_epoch=200)


def _half_flat_photo() -> Photo:
    """Flat grey on the left half, random texture on the right: 64 x 256."""
    pixels = np.full((64, 256, 3), 128, np.uint8)
    pixels[:, 128:] = np.random.default_rng(0).integers(0, 256, (64, 128, 3), dtype=np.uint8)
    return Photo("half-flat", pixels)


def _crops(candidates: int) -> DegradedCrops:
    return DegradedCrops(
        [_half_flat_photo()], **KWARGS, spatially_varying=False, detail_candidates=candidates
    )


def _flat_share(crops: DegradedCrops) -> float:
    """Share of the samples whose crop lies wholly in the flat half."""
    return float(np.mean([crops.draw(i).left + SIZE <= 128 for i in range(len(crops))]))


def test_crop_detail_is_zero_on_flat_pixels_and_high_on_texture():
    photo = _half_flat_photo().pixels
    assert crop_detail(photo, 0, 0, SIZE) == 0.0
    assert crop_detail(photo, 0, 200, SIZE) > 100


def test_more_candidates_steer_crops_off_flat_areas():
    uniform, picked = _flat_share(_crops(1)), _flat_share(_crops(4))
    # Uniform positions: (128 - 32 + 1) of 225 start wholly in the flat half, about 0.43.
    assert 0.3 < uniform < 0.55
    # The flat one wins only when all four are flat: about 0.43 ** 4, 0.03.
    assert picked < 0.1


def test_one_candidate_keeps_the_sample_stream_and_picks_are_repeatable():
    plain = DegradedCrops([_half_flat_photo()], **KWARGS, spatially_varying=False)
    one, picked = _crops(1), _crops(3)
    for i in range(50):
        assert one.draw(i) == plain.draw(i)
        assert picked.draw(i) == picked.draw(i)
        # Only the position changes: flip, degradation seed and kind are those drawn anyway.
        a, b = plain.draw(i), picked.draw(i)
        assert (a.photo, a.size, a.flip, a.seed, a.kind) == (
            b.photo,
            b.size,
            b.flip,
            b.seed,
            b.kind,
        )


def test_the_config_passes_the_candidates_on(make_starter_config, photos_dir):
    config = make_starter_config("detail_knob", max_steps=1)
    assert config.data.detail_candidates == 1
    config.data.detail_candidates = 5
    crops = degraded_crops(config, [_half_flat_photo()], spatially_varying=False)
    assert crops.detail_candidates == 5


@pytest.mark.parametrize("value", [0, -1, MAX_DETAIL_CANDIDATES + 1])
def test_bad_detail_candidates_name_their_field(make_starter_config, value):
    config = make_starter_config("detail_bad", max_steps=1)
    config.data.detail_candidates = value
    with pytest.raises(ConfigError, match=r"data\.detail_candidates"):
        validate(config)
