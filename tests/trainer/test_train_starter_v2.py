"""The v2 starter recipe: a Compact restorer at x4, the estimator of a v1 folder kept, a data
mix from clean through single-stage to the published degradation, more photo folders."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import spandrel
import torch
from PIL import Image
from safetensors.torch import load_file

from engine.models.starter import DegradationEstimator
from engine.restorers import load_restorer
from trainer.config import ConfigError, TrainConfig, apply_overrides, validate
from trainer.data import DegradedCrops
from trainer.loop import train
from trainer.photos import load_photos
from trainer.tasks import build_task


def _compact(config):
    config.starter.restorer = "compact"
    config.starter.num_feat = 8
    config.starter.num_conv = 2
    config.starter.gradient_weight = 0.2
    return config


def test_compact_restorer_trains_and_exports_a_native_x4_starter(make_starter_config):
    base_export = train(make_starter_config("v1_base", max_steps=1))
    config = _compact(make_starter_config("v2", max_steps=2))
    config.starter.init_from = base_export
    config.starter.init_parts = ("estimator",)
    config.starter.train_estimator = False
    export = train(config)

    descriptor = spandrel.ModelLoader().load_from_state_dict(
        load_file(export / "restorer.safetensors")
    )
    assert descriptor.architecture.id == "Compact" and descriptor.scale == 4
    # The estimator is the v1 folder's, unchanged; the restorer learned with both losses.
    started = DegradationEstimator.from_pretrained(base_export / "estimator").state_dict()
    kept = DegradationEstimator.from_pretrained(export / "estimator").state_dict()
    assert all(torch.equal(started[key], kept[key]) for key in started)
    rows = (config.checkpointing.output_dir / "losses.csv").read_text().splitlines()
    assert "gradient_l1" in rows[0]
    # The export is a starter the engine runs: x4 from the input itself.
    pipe = load_restorer(str(export), device="cpu").pipeline
    assert pipe.restorer_scale == 4
    assert pipe(torch.rand(1, 3, 20, 24), upscale=4).image.shape == (1, 3, 80, 96)


def test_init_parts_leave_the_restorer_random(make_starter_config):
    base_export = train(make_starter_config("v1_parts", max_steps=1))
    config = _compact(make_starter_config("v2_parts", max_steps=1))
    config.starter.init_from = base_export
    # All parts: the v1 restorer does not fit a Compact one, and the error says which field.
    with pytest.raises(ConfigError, match=r"starter\.init_from"):
        build_task(config).build(torch.device("cpu"))
    config.starter.init_parts = ("estimator",)
    _, estimator = build_task(config).build(torch.device("cpu"))[:2]
    started = DegradationEstimator.from_pretrained(base_export / "estimator").state_dict()
    assert all(torch.equal(started[k], v) for k, v in estimator.state_dict().items())


def test_single_stage_fraction_mixes_in_one_mild_stage(photos_dir):
    from engine.degradation.second_order import degrade, downscale_clean
    from engine.degradation.single_stage import random_single_stage

    photos = load_photos(photos_dir, min_side=48)
    kwargs = dict(
        crop_min=48, crop_max=48, scale=4, seed=0, samples_per_epoch=40, spatially_varying=False
    )
    mixed = DegradedCrops(photos, **kwargs, clean_fraction=0.3, single_stage_fraction=0.4)
    clean_only = DegradedCrops(photos, **kwargs, clean_fraction=0.3)
    kinds = []
    for i in range(40):
        sample = mixed[i]
        hq, lq = sample["hq"], sample["lq"]
        seed = mixed.draw(i).seed
        if torch.equal(lq, downscale_clean(hq, 4)):
            kinds.append("clean")
        elif torch.equal(lq, random_single_stage(hq, scale=4, seed=seed).float()):
            kinds.append("single")
        else:
            assert torch.equal(lq, degrade(hq, scale=4, seed=seed).lq.float())
            kinds.append("published")
        # The draw that picks clean is the same as a run with clean crops only.
        assert (kinds[-1] == "clean") == torch.equal(clean_only[i]["lq"], downscale_clean(hq, 4))
    assert {"clean", "single", "published"} == set(kinds)


def test_clean_samples_take_each_listed_resize_filter(photos_dir):
    from engine.degradation.second_order import downscale_clean

    photos = load_photos(photos_dir, min_side=48)
    kwargs = dict(
        crop_min=48, crop_max=48, scale=4, seed=0, samples_per_epoch=30, spatially_varying=False
    )
    box_only = DegradedCrops(photos, **kwargs, clean_fraction=1.0)
    modes = ("area", "bilinear", "bicubic")
    mixed = DegradedCrops(photos, **kwargs, clean_fraction=1.0, clean_resize_modes=modes)
    used = []
    for i in range(30):
        hq = mixed[i]["hq"]
        # The same crops as a box-only run: the filter does not change the sample stream.
        assert torch.equal(hq, box_only[i]["hq"])
        assert torch.equal(box_only[i]["lq"], downscale_clean(hq, 4))
        matches = [m for m in modes if torch.equal(mixed[i]["lq"], downscale_clean(hq, 4, m))]
        assert matches, f"sample {i}'s LQ is no clean downscale"
        used.append(matches[0])
    assert set(used) == set(modes)


def test_clean_resize_modes_are_checked(make_starter_config):
    from engine.typed_config import from_toml_table

    config = make_starter_config("modes", max_steps=1)
    config.data.clean_resize_modes = ()
    with pytest.raises(ConfigError, match=r"data\.clean_resize_modes"):
        validate(config)
    with pytest.raises(ConfigError, match="clean_resize_modes"):
        from_toml_table(type(config.data), {"clean_resize_modes": ["lanczos"]})


def test_more_photo_folders_and_skipped_patterns(make_starter_config, photos_dir, tmp_path):
    more = tmp_path / "more"
    more.mkdir()
    for name in ("aqua.jpg", "dune.jpg"):
        shutil.copyfile(photos_dir / name, more / f"extra-{name}")
        shutil.copyfile(photos_dir / name, more / f"gc-{name}")
    config = make_starter_config("more", max_steps=1)
    config.data.more_photos = (more,)
    config.data.skip_photos = ("gc-*",)
    names = [photo.name for photo in build_task(config).train_dataset().photos]
    assert names == ["aqua.jpg", "dune.jpg", "extra-aqua.jpg", "extra-dune.jpg"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("data.single_stage_fraction", 0.9, "data.single_stage_fraction"),
        ("data.more_photos", ("/no/such/folder",), "data.more_photos"),
        ("starter.num_conv", 0, "starter.num_conv"),
    ],
)
def test_bad_v2_fields_name_themselves(make_starter_config, field, value, message):
    from pathlib import Path

    config = make_starter_config("bad", max_steps=1)
    config.data.clean_fraction = 0.2
    if field == "data.more_photos":
        value = tuple(Path(v) for v in value)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        apply_overrides(config, **{field: value})


def test_a_bilinear_start_is_a_bilinear_upscaler_that_spandrel_loads():
    import torch.nn.functional as F

    from engine.models.starter import build_compact_restorer, start_as_bilinear

    torch.manual_seed(0)
    compact = start_as_bilinear(build_compact_restorer(num_feat=8, num_conv=3, scale=4)).eval()
    image = torch.rand(1, 3, 12, 16)
    bilinear = F.interpolate(image, scale_factor=4, mode="bilinear", align_corners=False)
    with torch.no_grad():
        out = compact(image)
    # Exact away from the border (zero padding there, edge clamping in interpolate).
    torch.testing.assert_close(out[..., 4:-4, 4:-4], bilinear[..., 4:-4, 4:-4])
    descriptor = spandrel.ModelLoader().load_from_state_dict(compact.state_dict())
    assert descriptor.architecture.id == "Compact" and descriptor.scale == 4
    # The features are random (they learn), only their contribution starts at zero.
    assert float(compact.body[2].weight[3:].abs().sum()) > 0


def test_the_config_chooses_the_start(make_starter_config):
    import torch.nn.functional as F

    config = _compact(make_starter_config("start", max_steps=1))
    image = torch.rand(1, 3, 12, 16)
    bilinear = F.interpolate(image, scale_factor=4, mode="bilinear", align_corners=False)
    errors = {}
    for start in ("random", "bilinear"):
        config.starter.restorer_start = start
        restorer = build_task(config).build(torch.device("cpu"))[0].eval()
        with torch.no_grad():
            errors[start] = float((restorer(image) - bilinear)[..., 4:-4, 4:-4].abs().max())
    assert errors["bilinear"] < 1e-5 < errors["random"]


def test_halved_photos_are_taken_at_half_size_by_a_box_filter(tmp_path):
    from trainer.photos import training_photos

    folder = tmp_path / "halving"
    folder.mkdir()
    generator = np.random.default_rng(0)
    pixels = generator.integers(0, 256, (200, 300, 3), dtype=np.uint8)
    for name in ("gc-sharpened.png", "plain.png", "gc-small.png"):
        Image.fromarray(pixels[: 120 if name == "gc-small.png" else 200]).save(folder / name)

    photos = {p.name: p.pixels for p in load_photos(folder, min_side=64, halve=("gc-*",))}
    assert photos["plain.png"].shape == (200, 300, 3)
    halved = photos["gc-sharpened.png"]
    assert halved.shape == (100, 150, 3)
    box = pixels.astype(np.float64).reshape(100, 2, 150, 2, 3).mean((1, 3))
    assert np.abs(halved - box).max() <= 1  # each pixel the mean of its 2x2 block, rounded
    # The size check comes after halving: 120 px high is 60, below the 64 px crops.
    assert "gc-small.png" not in photos

    # A run's config names them; `skip_photos` still wins where both match.
    config = TrainConfig(task="starter")
    config.data.photos, config.data.crop_min, config.data.crop_max = folder, 64, 64
    config.data.halved_photos = ("gc-*",)
    config.data.skip_photos = ("gc-small*",)
    sizes = {p.name: p.pixels.shape[:2] for p in training_photos(config)}
    assert sizes == {"gc-sharpened.png": (100, 150), "plain.png": (200, 300)}


def test_photos_also_halved_are_taken_at_their_size_and_at_half(tmp_path):
    from trainer.photos import training_photos

    folder = tmp_path / "scales"
    folder.mkdir()
    pixels = np.random.default_rng(1).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    for name in ("a.png", "b.png", "small.png"):
        Image.fromarray(pixels[: 100 if name == "small.png" else 200]).save(folder / name)

    config = TrainConfig(task="starter")
    config.data.photos, config.data.crop_min, config.data.crop_max = folder, 64, 64
    config.data.also_halved_photos = ("a.png", "small.png")
    photos = {p.name: p.pixels for p in training_photos(config)}
    # small.png's half (50 px high) is below the 64 px crops: it alone is skipped.
    assert {name: image.shape[:2] for name, image in photos.items()} == {
        "a.png": (200, 300),
        "a.png (half)": (100, 150),
        "b.png": (200, 300),
        "small.png": (100, 300),
    }
    np.testing.assert_array_equal(photos["a.png"], pixels)
    box = pixels.astype(np.float64).reshape(100, 2, 150, 2, 3).mean((1, 3))
    assert np.abs(photos["a.png (half)"] - box).max() <= 1
