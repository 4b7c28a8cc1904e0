"""Config errors name the bad field and stop before any work; configs round-trip as TOML."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from trainer.config import ConfigError, config_to_toml, load_config


def _load(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def _recipe(tmp_path, name):
    """resources/configs/`name`.toml, its development-machine photo folder swapped for an empty
    one under `tmp_path` (absent from a user's clone)."""
    (tmp_path / "more").mkdir(exist_ok=True)
    text = Path(f"resources/configs/{name}.toml").read_text(encoding="utf-8")
    return _load(tmp_path, text.replace("../shared/photos-train", str(tmp_path / "more")))


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('task = "starter"\n[data]\ncrop_sise = 64\n', "data.crop_sise"),
        ('task = "starter"\nmax_stepz = 3\n', "max_stepz"),
        ('task = "starter"\n[data]\nbatch_size = "four"\n', "data.batch_size"),
        ('task = "starter"\n[dreamclear]\ngradient_checkpointing = 1\n', "gradient_checkpointing"),
        ('task = "starter"\n[starter]\nnum_block = true\n', "starter.num_block"),
        ('task = "painting"\n', "task"),
        ("seed = 1\n", "task"),
        ('task = "starter"\n[data]\nphotos = "/no/such/folder"\n', "data.photos"),
        ('task = "starter"\n[data]\nvalidation_photos = ["nope.jpg"]\n', "validation_photos"),
        ('task = "starter"\n[data]\ncrop_min = 100\n', "data.crop_min"),
        ('task = "starter"\n[data]\nclean_fraction = 1.5\n', "data.clean_fraction"),
        ('task = "starter"\n[checkpointing]\nkeep_last = 0\n', "checkpointing.keep_last"),
        ('task = "starter"\n[optimisation]\nbetas = [0.9]\n', "optimisation.betas"),
        ('task = "starter"\ndata = 3\n', "data"),
        ('task = "starter"\nmax_minutes = -1\n', "max_minutes"),
        ('task = "starter"\n[starter]\nema_decay = 1.0\n', "starter.ema_decay"),
        ('task = "starter"\n[starter]\nestimator_learning_rate = -1e-3\n', "estimator_learning"),
        ('task = "starter"\n[starter]\ninit_from = "/no/such/model"\n', "starter.init_from"),
        (
            'task = "starter"\n[starter]\ntrain_restorer = false\ntrain_estimator = false\n',
            "starter.train_estimator",
        ),
    ],
)
def test_config_errors_name_the_field(tmp_path, photos_dir, text, field):
    # Every case but the ones about data itself trains on a folder that exists.
    if "photos =" not in text and "data =" not in text:
        if "[data]" in text:
            text = text.replace("[data]\n", f'[data]\nphotos = "{photos_dir}"\n', 1)
        else:
            text += f'[data]\nphotos = "{photos_dir}"\n'
    with pytest.raises(ConfigError, match=field.replace(".", r"\.").replace("[", r"\[")):
        _load(tmp_path, text)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="No training config"):
        load_config(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        _load(tmp_path, "task = \n")


def test_config_round_trips_through_toml(tmp_path, photos_dir, make_starter_config):
    config = make_starter_config()
    again = _load(tmp_path, config_to_toml(config))
    assert dataclasses.asdict(again) == dataclasses.asdict(config)


def test_bundled_configs_parse():
    # Paths are relative to the repository root, where the tests run.
    assert load_config("resources/configs/starter.toml").task == "starter"
    assert load_config("resources/configs/starter-gpu.toml").data.num_workers == 15
    tune = load_config("resources/configs/starter-estimator.toml")
    assert tune.starter.init_from is not None and not tune.starter.train_restorer
    tiny = load_config("resources/configs/dreamclear-tiny.toml")
    assert tiny.dreamclear.model == "tiny"
    with pytest.raises(ConfigError, match=r"data\.photos"):
        load_config("resources/configs/dreamclear.toml")  # data/hq is the user's to fill


def test_the_starter_v2_configs_read_and_name_their_extra_photos(tmp_path):
    """Their `more_photos` is the development machine's photo folder, absent from a user's
    clone: then the error names the field; pointed at a folder, each phase loads as the recipe
    (resources/models/starter/README.md) says."""
    (tmp_path / "more").mkdir()
    phases = {
        "starter-v2-phase1.toml": ((0.2, 0.3), 3e-4, 0.2),
        "starter-v2-phase2.toml": ((0.35, 0.4), 3e-4, 0.2),
        "starter-v2.toml": ((0.35, 0.4), 1e-4, 0.4),
    }
    for name, (fractions, rate, gradient) in phases.items():
        path = Path("resources/configs") / name
        if not Path("../shared/photos-train").is_dir():
            with pytest.raises(ConfigError, match=r"data\.more_photos"):
                load_config(path)
        text = path.read_text(encoding="utf-8")
        config_path = tmp_path / name  # its other paths are relative to the root
        config_path.write_text(text.replace("../shared/photos-train", str(tmp_path / "more")))
        config = load_config(config_path)
        assert config.starter.restorer == "compact" and config.starter.restorer_start == "bilinear"
        assert (config.data.clean_fraction, config.data.single_stage_fraction) == fractions
        assert config.optimisation.learning_rate == rate
        assert config.starter.gradient_weight == gradient
        assert config.starter.init_parts == ("estimator",) and not config.starter.train_estimator


def test_the_v23_restorer_phases_and_gate_read_as_their_recipe_says(tmp_path):
    """The all-round restorer's annealing, the gentle restorer's three phases and the gate
    (resources/models/starter/README.md, "How v2.3 was made" and "How v2.2 was made"): only the
    gentle phase 3 and the gate draw clean crops' filters from all three; the gate reads all 14
    statistics through 16 hidden units."""
    (tmp_path / "more").mkdir()
    every_filter = ("area", "bilinear", "bicubic")
    phases = {
        "starter-v2-anneal.toml": (("area",), "cosine", (7093, 11093)),
        "starter-v2-gentle.toml": (("area",), "constant", None),
        "starter-v2-gentle-anneal.toml": (("area",), "cosine", (6500, 14500)),
        "starter-v2-gentle-kernels.toml": (every_filter, "cosine", (14500, 19500)),
        "starter-v2-gate.toml": (every_filter, "cosine", (1000, 2000)),
    }
    for name, (filters, schedule, steps) in phases.items():
        text = (Path("resources/configs") / name).read_text(encoding="utf-8")
        config_path = tmp_path / name  # its other paths are relative to the root
        config_path.write_text(text.replace("../shared/photos-train", str(tmp_path / "more")))
        config = load_config(config_path)
        assert config.data.clean_resize_modes == filters, name
        assert config.optimisation.schedule == schedule, name
        if steps:
            assert (config.optimisation.decay_from_step, config.max_steps) == steps, name
        gate = config.starter_gate
        expected = (14, 16) if name == "starter-v2-gate.toml" else (8, 0)
        assert (gate.features, gate.hidden_units) == expected, name


def test_overrides_are_validated(photos_dir, make_starter_config, tmp_path):
    config = make_starter_config()
    path = tmp_path / "again.toml"
    path.write_text(config_to_toml(config), encoding="utf-8")
    assert load_config(path, max_steps=9).max_steps == 9
    with pytest.raises(ConfigError, match="max_steps"):
        load_config(path, max_steps=0)


def test_the_tried_gentle_phase_4_halves_the_gc_photos_instead_of_skipping_them(tmp_path):
    """`starter-v2-gentle-more.toml` (not shipped; resources/models/starter/README.md, "Tried
    for v2.3"): phase 3's recipe continued, with the gc- photos taken at half size."""
    config = _recipe(tmp_path, "starter-v2-gentle-more")
    assert config.data.halved_photos == ("gc-*",) and config.data.skip_photos == ()
    assert config.data.clean_resize_modes == ("area", "bilinear", "bicubic")
    assert (config.optimisation.decay_from_step, config.max_steps) == (19500, 25500)


def test_the_v24_gentle_phase_saves_clean_crops_as_camera_jpegs(tmp_path):
    """`starter-v2-gentle-jpeg.toml` (v2.4's gentle restorer; resources/models/starter/README.md,
    "How v2.4 was made"): phase 3's recipe continued for 5000 steps, half the clean crops saved
    as a camera saves a photo and single-stage JPEGs up to quality 98."""
    config = _recipe(tmp_path, "starter-v2-gentle-jpeg")
    data = config.data
    assert (data.clean_jpeg_fraction, data.clean_jpeg_quality) == (0.5, (90, 98))
    assert data.single_stage_jpeg_quality == (55, 98)
    assert data.skip_photos == ("gc-*",) and data.halved_photos == ()
    assert data.clean_resize_modes == ("area", "bilinear", "bicubic")
    assert (config.optimisation.decay_from_step, config.max_steps) == (19500, 24500)
    # The shipped gentle restorer's record is this config, as the run saved it.
    shipped = Path("resources/models/starter/gentle-train-config.toml").read_text(encoding="utf-8")
    recorded = _load(tmp_path, shipped.replace("../shared/photos-train", str(tmp_path / "more")))
    assert dataclasses.asdict(recorded.data) == dataclasses.asdict(data)


def test_the_v25_gentle_restorer_is_v24s_made_deeper_and_trained_on(tmp_path):
    """`starter-v2-gentle-deep.toml` and `-deep2.toml` (v2.5's gentle restorer;
    resources/models/starter/README.md, "How v2.5 was made"): v2.4's gentle restorer with 24
    body convolutions instead of 16, on phase 4's data, then continued at a lower rate."""
    camera = _recipe(tmp_path, "starter-v2-gentle-jpeg")
    deep, deep2 = (
        _recipe(tmp_path, "starter-v2-gentle-deep"),
        _recipe(tmp_path, "starter-v2-gentle-deep2"),
    )
    first = deep.starter
    assert (first.num_feat, first.num_conv, first.deepen_restorer) == (48, 24, True)
    assert first.init_restorer_file == "restorer-gentle.safetensors"
    assert first.init_parts == ("restorer", "estimator") and not first.train_estimator
    assert (deep.optimisation.learning_rate, deep.optimisation.decay_from_step) == (1e-4, 0)
    # The second phase continues the first's run: same network, same data, a lower rate.
    assert dataclasses.asdict(deep2.starter) == dataclasses.asdict(first)
    assert (deep2.optimisation.learning_rate, deep2.optimisation.decay_from_step) == (5e-5, 6626)
    assert deep2.max_steps == 11126
    for config in (deep, deep2):
        assert dataclasses.asdict(config.data) == dataclasses.asdict(camera.data)
    # The shipped gentle restorer's record is the second phase's config, as the run saved it.
    shipped = Path("resources/models/starter/gentle-train-config.toml").read_text(encoding="utf-8")
    recorded = _load(tmp_path, shipped.replace("../shared/photos-train", str(tmp_path / "more")))
    assert dataclasses.asdict(recorded.starter) == dataclasses.asdict(deep2.starter)
    assert recorded.max_steps == deep2.max_steps


def test_the_deeper_all_round_restorer_is_v23s_grown_on_its_own_data(tmp_path):
    """`starter-v2-deep.toml` (not shipped; resources/models/starter/README.md, "Tried after
    v2.5"): v2.3's all-round restorer with 24 body convolutions instead of 16, on phase 4's
    data (starter-v2-anneal.toml), the rate from 1e-4 along a half cosine; it starts from the
    folder's restorer.safetensors."""
    anneal, deep = _recipe(tmp_path, "starter-v2-anneal"), _recipe(tmp_path, "starter-v2-deep")
    assert dataclasses.asdict(deep.data) == dataclasses.asdict(anneal.data)
    starter = deep.starter
    assert (starter.num_feat, starter.num_conv, starter.deepen_restorer) == (48, 24, True)
    assert starter.init_restorer_file == "restorer.safetensors"
    assert starter.init_parts == ("restorer", "estimator") and not starter.train_estimator
    assert starter.gradient_weight == anneal.starter.gradient_weight
    optimisation = deep.optimisation
    assert (optimisation.learning_rate, optimisation.decay_from_step) == (1e-4, 0)
    assert (optimisation.schedule, deep.max_steps) == ("cosine", 4200)


def test_the_colour_fixed_gate_is_v23s_gate_judging_the_gentle_restorer_fixed(tmp_path):
    """`starter-v2-gate-colour.toml` (after v2.6): v2.3's gate run, the same data, steps,
    sizes and seed, with the gentle restorer's result wavelet-fixed before the two are compared;
    only its output folder and time limit differ besides."""
    gate, colour = _recipe(tmp_path, "starter-v2-gate"), _recipe(tmp_path, "starter-v2-gate-colour")
    assert (gate.starter_gate.gentle_color_fix, colour.starter_gate.gentle_color_fix) == (
        "none",
        "wavelet",
    )
    colour.starter_gate.gentle_color_fix = "none"
    colour.checkpointing.output_dir = gate.checkpointing.output_dir
    colour.max_minutes = gate.max_minutes
    assert dataclasses.asdict(colour) == dataclasses.asdict(gate)


def test_the_two_scale_gentle_run_continues_v25s_on_its_data_with_every_photo_also_halved(
    tmp_path,
):
    """`starter-v2-gentle-scales.toml` (after v2.6): the shipped gentle restorer, as it is (no
    new layers), on v2.5's data with every training photo also taken at half its size."""
    deep2, scales = (
        _recipe(tmp_path, "starter-v2-gentle-deep2"),
        _recipe(tmp_path, "starter-v2-gentle-scales"),
    )
    assert scales.data.also_halved_photos == ("*",) and deep2.data.also_halved_photos == ()
    assert scales.data.skip_photos == ("gc-*",)
    assert dataclasses.asdict(scales.data) == dataclasses.asdict(deep2.data) | {
        "also_halved_photos": ("*",)
    }
    starter = scales.starter
    assert (starter.num_conv, starter.deepen_restorer) == (24, False)
    assert dataclasses.asdict(starter) == dataclasses.asdict(deep2.starter) | {
        "deepen_restorer": False
    }
    optimisation = scales.optimisation
    assert (optimisation.learning_rate, optimisation.decay_from_step) == (5e-5, 0)
    assert (optimisation.schedule, scales.max_steps) == ("cosine", 2800)


def test_the_detail_run_continues_v25s_on_its_data_with_crops_picked_for_detail(tmp_path):
    """`starter-v2-gentle-detail.toml` (after v2.6): the shipped gentle restorer, as it is, on
    v2.5's data, each crop the most detailed of three positions, the rest as the scales run."""
    deep2, scales, detail = (
        _recipe(tmp_path, name)
        for name in (
            "starter-v2-gentle-deep2",
            "starter-v2-gentle-scales",
            "starter-v2-gentle-detail",
        )
    )
    assert detail.data.detail_candidates == 3 and deep2.data.detail_candidates == 1
    assert dataclasses.asdict(detail.data) == dataclasses.asdict(deep2.data) | {
        "detail_candidates": 3
    }
    assert dataclasses.asdict(detail.starter) == dataclasses.asdict(scales.starter)
    assert dataclasses.asdict(detail.optimisation) == dataclasses.asdict(scales.optimisation)
    assert (detail.max_steps, detail.seed) == (scales.max_steps, scales.seed)
