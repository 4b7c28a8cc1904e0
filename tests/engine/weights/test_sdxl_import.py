"""`dreamclear models import` of an SDXL base: a diffusers folder (checked), a single file in
the original layout (converted offline with a config folder), and genir.toml naming it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from diffusers import StableDiffusionXLPipeline
from safetensors.torch import save_file
from sdxl_original_layout import original_layout, tiny_sdxl_with_distinct_encoders

from dreamclear.cli import main
from engine.errors import CheckpointError, ModelNotInstalledError
from engine.genir.config import load_config
from engine.genir.run_folder import init_run
from engine.weights.checkpoint_inspection import recognise
from engine.weights.store import ModelStore


@pytest.fixture(scope="module")
def distinct_base(tmp_path_factory) -> Path:
    return tiny_sdxl_with_distinct_encoders(tmp_path_factory.mktemp("sdxl") / "base")


@pytest.fixture(scope="module")
def single_file(distinct_base, tmp_path_factory) -> Path:
    pipe = StableDiffusionXLPipeline.from_pretrained(distinct_base)
    path = tmp_path_factory.mktemp("sdxl") / "my-sdxl.safetensors"
    save_file(original_layout(pipe), path)
    return path


def test_a_diffusers_folder_is_imported_as_sdxl_base(store, tiny_sdxl_dir):
    assert recognise(tiny_sdxl_dir).name == "sdxl-base"
    status = store.import_path(None, tiny_sdxl_dir)
    assert status.name == "sdxl-base" and status.installed
    assert status.path == store.root / "sdxl-base"
    assert (status.path / "unet" / "config.json").is_file()
    assert status.entry.licence == "CreativeML Open RAIL++-M"


def test_an_incomplete_or_other_folder_is_refused(tmp_path, tiny_sdxl_dir):
    broken = shutil.copytree(tiny_sdxl_dir, tmp_path / "broken")
    (broken / "text_encoder_2" / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"missing text_encoder_2/config\.json"):
        recognise(broken)
    index = json.loads((broken / "model_index.json").read_text())
    (broken / "model_index.json").write_text(
        json.dumps(index | {"_class_name": "StableDiffusionPipeline"})
    )
    with pytest.raises(CheckpointError, match="not SDXL"):
        recognise(broken)


def test_a_single_file_is_converted_with_a_config_folder(
    tmp_path, distinct_base, single_file, monkeypatch, capsys
):
    assert recognise(single_file).name == "sdxl-base"
    monkeypatch.setenv("DREAMCLEAR_MODEL_STORE", str(tmp_path / "store"))
    assert main(["models", "import", str(single_file), "--config", str(distinct_base)]) == 0
    assert "sdxl-base: converted to" in capsys.readouterr().out
    store = ModelStore()
    status = store.status("sdxl-base")
    assert status.installed and (status.path / "model_index.json").is_file()
    converted = StableDiffusionXLPipeline.from_pretrained(status.path)
    source = StableDiffusionXLPipeline.from_pretrained(distinct_base)
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        theirs, ours = getattr(source, name).state_dict(), getattr(converted, name).state_dict()
        assert theirs.keys() == ours.keys()
        assert all(torch.equal(theirs[k], ours[k]) for k in theirs), name
    assert not list(store.root.glob(".*partial*"))


def test_a_single_file_without_configs_offline_names_the_option(store, single_file, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotInstalledError) as caught:
        store.import_path(None, single_file)
    assert "--config" in caught.value.hint
    assert not (store.root / "sdxl-base").exists()


def test_genir_config_names_the_store_model(tmp_path, tiny_sdxl_dir, monkeypatch):
    monkeypatch.setenv("DREAMCLEAR_MODEL_STORE", str(tmp_path / "store"))
    installed = ModelStore().import_path(None, tiny_sdxl_dir).path
    (tmp_path / "images").mkdir()
    monkeypatch.chdir(tmp_path)
    config_path = init_run(tmp_path / "run", images=tmp_path / "images", base_model="sdxl-base")
    assert load_config(config_path).base_model == installed
    text = config_path.read_text()
    config_path.write_text(text.replace(f'"{installed}"', '"sdxl-base"'))
    assert 'base_model = "sdxl-base"' in config_path.read_text()
    assert load_config(config_path).base_model == installed
