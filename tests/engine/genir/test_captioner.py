"""The model captioner on a tiny random BLIP: loaded from local files, deterministic, used by
the pairs stage when `pairs.captioner` is set, its captions in RUN/pairs/caption."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from engine.errors import ModelNotInstalledError
from engine.genir.captioner import ModelCaptioner
from engine.genir.pairs_stage import pair_files, run_pairs_stage
from engine.genir.run_folder import init_run, load_run
from engine.genir.tiny_local_models import save_tiny_captioner
from engine.typed_config import ConfigError


@pytest.fixture(scope="module")
def captioner_dir(tmp_path_factory) -> Path:
    return save_tiny_captioner(tmp_path_factory.mktemp("models") / "tiny-blip", seed=0)


def _images(folder: Path) -> list[Path]:
    folder.mkdir()
    paths = []
    for index in range(2):
        path = folder / f"{index}.png"
        Image.new("RGB", (80, 72), (90 * index, 60, 200 - 70 * index)).save(path)
        paths.append(path)
    return paths


def test_captions_are_deterministic_text(tmp_path, captioner_dir):
    paths = _images(tmp_path / "images")
    first = ModelCaptioner.from_folder(captioner_dir)
    again = ModelCaptioner.from_folder(captioner_dir)
    captions = [first(p) for p in paths]
    assert captions == [again(p) for p in paths]
    assert all(isinstance(c, str) and c == " ".join(c.split()) for c in captions)
    assert any(captions)  # gibberish, but written


def test_a_folder_without_a_model_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotInstalledError, match="local files") as caught:
        ModelCaptioner.from_folder(tmp_path / "empty")
    assert "dreamclear models download" in caught.value.hint


def test_pairs_stage_captions_with_the_configured_model(tmp_path, tiny_sdxl_dir, captioner_dir):
    paths = _images(tmp_path / "images")
    run = tmp_path / "run"
    init_run(run, images=tmp_path / "images", base_model=tiny_sdxl_dir, seed=1)
    config_file = run / "genir.toml"
    settings = {"size": 64, "min_side": 64, "steps": 2, "captioner": str(captioner_dir)}
    head, section, tail = config_file.read_text().partition("[pairs]\n")
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items())
    kept = [line for line in tail.split("\n") if line.split(" =")[0] not in settings]
    config_file.write_text(head + section + lines + "\n".join(kept))

    outcome = run_pairs_stage(run, load_run(run))
    assert outcome.made == 2
    expected = ModelCaptioner.from_folder(captioner_dir)
    for path in paths:
        caption_file = pair_files(run, path.name)[2]
        assert caption_file.read_text() == expected(path) + "\n"
    journal_head = json.loads((run / "pairs" / "journal.jsonl").read_text().splitlines()[0])
    assert "captioner" in json.dumps(journal_head)


def test_a_captioner_that_is_not_a_folder_fails_validation(tmp_path, tiny_sdxl_dir):
    _images(tmp_path / "images")
    run = tmp_path / "run"
    init_run(run, images=tmp_path / "images", base_model=tiny_sdxl_dir)
    text = (run / "genir.toml").read_text().replace('captioner = ""', 'captioner = "nope"')
    (run / "genir.toml").write_text(text)
    with pytest.raises(ConfigError, match=r"pairs\.captioner"):
        load_run(run)
