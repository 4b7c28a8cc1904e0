"""The GenIR run config: commented, read back equal, every wrong field named before any work."""

from __future__ import annotations

import dataclasses

import pytest

from engine.errors import OutputError
from engine.genir.config import GenIRConfig, load_config
from engine.genir.run_folder import CONFIG_NAME, init_run, load_run, run_status
from engine.typed_config import ConfigError, field_docs


def _all_dataclasses(cls):
    yield cls
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(f.default_factory):
            yield from _all_dataclasses(f.default_factory)


def test_every_field_has_a_docstring_and_the_config_shows_them_all(run):
    text = (run / CONFIG_NAME).read_text()
    for cls in _all_dataclasses(GenIRConfig):
        docs = field_docs(cls)
        for f in dataclasses.fields(cls):
            assert docs.get(f.name), f"{cls.__name__}.{f.name} has no docstring"
            first_line = docs[f.name].splitlines()[0]
            assert f"# {first_line}" in text
    assert text.count("Our choice") + text.count("our choice") >= 6


def test_init_writes_a_config_that_reads_back(run, images, base):
    config = load_run(run)
    assert config == dataclasses.replace(GenIRConfig(images=images, base_model=base), seed=5)
    assert load_config(run / CONFIG_NAME) == config


def test_status_reads_the_folder(run, capsys):
    status = run_status(run)
    assert status.stage == "initialised"
    assert status.counts == {"positive images": 2}
    assert "stage reached: initialised" in status.describe()


def test_init_refuses_a_folder_that_is_not_empty(run, images, base):
    with pytest.raises(OutputError, match="not an empty folder"):
        init_run(run, images=images, base_model=base)


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        (("seed = 5", "seed = 5\nsteps = 3"), "steps", "Unknown config field"),
        (("count = 1000", "count = 0"), "prompts.count", "at least 1"),
        (("count = 1000", 'count = "many"'), "prompts.count", "must be int"),
        (
            ("sdedit_strength = 0.6", "sdedit_strength = 1.5"),
            "pairs.sdedit_strength",
            "in \\(0, 1\\]",
        ),
        (("resolution = 1024", "resolution = 1001"), "generation.resolution", "multiple of 8"),
        (("batch_size = 1", "batch_size = 0"), "generation.batch_size", "at least 1"),
        (("cfg = 7.0", "cfg = 0.5"), "generation.cfg", "at least 1"),
        (
            ("quality_threshold = 0.5", "quality_threshold = 2"),
            "filter.quality_threshold",
            "in \\[0, 1\\]",
        ),
        (("max_faces = 0", "max_faces = -1"), "filter.max_faces", ">= 0"),
        (("classifier_crop = 128", "classifier_crop = 100"), "filter.classifier_crop", "16"),
        (("classifier_holdout = 0.1", "classifier_holdout = 0"), "filter.classifier_holdout", "1"),
        (
            ('"haarcascade_profileface.xml"', '"haarcascade_eye.xml"'),
            "filter.face_cascades",
            "one or more of",
        ),
        (("[filter]", "[filters]"), "filters", "Unknown config field"),
        (('"cartoon",', '"",'), "pairs.negative_words", "blank"),
    ],
)
def test_a_wrong_field_is_named(run, edit, field, message):
    path = run / CONFIG_NAME
    text = path.read_text()
    assert edit[0] in text
    path.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(ConfigError, match=message) as raised:
        load_run(run)
    assert f"'{field}'" in str(raised.value)


def test_paths_are_checked(run, images, base, tmp_path):
    path = run / CONFIG_NAME
    text = path.read_text()
    path.write_text(text.replace(str(images), str(tmp_path / "missing")))
    with pytest.raises(ConfigError, match="'images' is not a folder"):
        load_run(run)
    path.write_text(text.replace(str(base), str(images)))
    with pytest.raises(ConfigError, match=r"'base_model' has no model_index\.json"):
        load_run(run)
    path.write_text(text.replace(str(base), str(images / "a.png")))
    with pytest.raises(ConfigError, match="'base_model' is not a folder"):
        load_run(run)
    # Relative paths are taken from the run folder.
    path.write_text(text.replace(str(images), "../images"))
    assert load_run(run).images.resolve() == images.resolve()


def test_init_checks_its_paths_before_writing_anything(tmp_path, images):
    with pytest.raises(ConfigError, match="'base_model'"):
        init_run(tmp_path / "run2", images=images, base_model=tmp_path / "nothing")
    assert not (tmp_path / "run2").exists()


def test_status_of_a_folder_that_is_no_run(tmp_path):
    with pytest.raises(Exception, match="not a GenIR run folder"):
        load_run(tmp_path)
