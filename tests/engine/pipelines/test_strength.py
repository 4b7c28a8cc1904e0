"""Strength: the restoration blended with the input's bicubic upscale, applied where a job's
result becomes the saved file (engine/restore_files.py), for the starter and DreamClear alike."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from engine.errors import BadSettingError
from engine.imaging import io as image_io
from engine.pipelines import strength as strength_module
from engine.pipelines.strength import apply_strength, upscale_input
from engine.restore_files import RestoreOptions, restore_file
from engine.restorers import load_restorer


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """Random 8-bit texture: every pixel differs from its neighbours, as fine grain does."""
    path = tmp_path_factory.mktemp("photos") / "grain.png"
    pixels = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture(scope="module")
def starter(starter_dir):
    return load_restorer(str(starter_dir), device="cpu").pipeline


def input_tensor(path) -> torch.Tensor:
    rgb = image_io.load_image(path).rgb
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].float()


def saved(pipeline, photo, folder, **options) -> np.ndarray:
    """The 8-bit result `restore_file` writes for `photo` with `options`, as int16 (H, W, 3)."""
    folder.mkdir()
    result = restore_file(pipeline, photo, folder, RestoreOptions(**options))
    assert result.error is None, result.error
    return np.asarray(Image.open(result.output), dtype=np.int16)


def written(image: torch.Tensor, path) -> np.ndarray:
    """`image` (1, 3, H, W) saved as `restore_file` saves a result, read back as int16."""
    image_io.save_image(image[0].clamp(0, 1).permute(1, 2, 0).numpy(), path)
    return np.asarray(Image.open(path), dtype=np.int16)


def test_strength_one_saves_the_restoration_exactly_as_before(
    starter, photo, tmp_path, monkeypatch
):
    # What restore_file wrote before strength existed: the pipeline's image, nothing more.
    before = written(starter(input_tensor(photo), upscale=4).image, tmp_path / "before.png")

    def no_blend(*_args, **_kwargs):
        raise AssertionError("strength 1 computed the upscale it does not need")

    monkeypatch.setattr(strength_module, "upscale_input", no_blend)
    assert np.array_equal(saved(starter, photo, tmp_path / "default"), before)
    assert np.array_equal(saved(starter, photo, tmp_path / "one", strength=1.0), before)


def test_strength_zero_is_the_bicubic_upscale_and_a_half_lies_halfway(starter, photo, tmp_path):
    full = saved(starter, photo, tmp_path / "full")
    zero = saved(starter, photo, tmp_path / "zero", strength=0.0)
    half = saved(starter, photo, tmp_path / "half", strength=0.5)
    bicubic = written(upscale_input(input_tensor(photo), (96, 128)), tmp_path / "bicubic.png")
    assert np.abs(full - bicubic).mean() > 2  # the restoration really differs from it
    assert np.abs(zero - bicubic).max() <= 1  # within 8-bit rounding
    assert np.abs(2 * half - (full + zero)).max() <= 2  # each side rounds by at most 1/2


def test_the_starters_first_step_is_the_same_upscale(starter, photo):
    """So strength 0 gives exactly the image the starter restored from."""
    image = input_tensor(photo)
    old_step = torch.nn.functional.interpolate(
        image, size=(96, 128), mode="bicubic", align_corners=False, antialias=True
    ).clamp_(0, 1)
    assert torch.equal(upscale_input(image, (96, 128)), old_step)
    assert upscale_input(image, (96, 128)) is not upscale_input(image, (96, 128))


def test_dreamclear_results_blend_the_same_way(pipe, photo, tmp_path):
    small = {"steps": 2, "seed": 0, "min_short_side": 64}
    zero = saved(pipe, photo, tmp_path / "zero", strength=0.0, **small)
    bicubic = written(upscale_input(input_tensor(photo), (96, 128)), tmp_path / "bicubic.png")
    assert np.abs(zero - bicubic).max() <= 1
    full = saved(pipe, photo, tmp_path / "full", **small)
    half = saved(pipe, photo, tmp_path / "half", strength=0.5, **small)
    assert np.abs(2 * half - (full + zero)).max() <= 2


def test_blends_in_place_on_the_restorations_device():
    restored = torch.rand(1, 3, 8, 8)
    image = torch.rand(1, 3, 2, 2)
    assert apply_strength(restored, image, 0.3) is restored


@pytest.mark.parametrize("value", [-0.1, 1.5, math.nan, math.inf, True])
def test_out_of_range_strength_is_a_setting_error_naming_it(starter, photo, tmp_path, value):
    with pytest.raises(BadSettingError, match="strength") as error:
        apply_strength(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 2, 2), value)
    assert error.value.hint
    result = restore_file(starter, photo, tmp_path, RestoreOptions(strength=value))
    assert result.output is None and "strength" in result.error
    assert list(tmp_path.iterdir()) == []  # nothing written
