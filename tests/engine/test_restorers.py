"""`--model` resolution: what is loaded, and what users are told when nothing is there."""

from __future__ import annotations

import pytest
import torch

from engine import restorers
from engine.errors import ModelNotInstalledError


def test_a_model_folder_loads_with_its_working_size(tiny_model_dir):
    restorer = restorers.load_restorer(
        str(tiny_model_dir), store_root=None, device=torch.device("cpu"), dtype=torch.float32
    )
    # Short side = the model's native latent size in pixels (128 x 8 = 1024 at full size).
    assert restorer.min_short_side == restorer.pipeline.transformer.config.sample_size * 8


def test_an_installed_llava_becomes_the_automatic_captioner(monkeypatch, tmp_path):
    from engine.models import captioners
    from engine.models.tiny_components import build_tiny_components
    from engine.weights.components_io import save_components
    from engine.weights.store import ModelStore

    components = build_tiny_components(seed=0)
    components.captioner = None  # a model folder that brings no captioner of its own
    model_dir = save_components(components, tmp_path / "model")

    loaded = {}

    class FakeLlava:
        @classmethod
        def from_folder(cls, folder, device, dtype):
            loaded["folder"] = folder
            return cls()

        def caption(self, image):
            return "a photo"

    monkeypatch.setattr(captioners, "LlavaCaptioner", FakeLlava)
    monkeypatch.setattr(ModelStore, "is_installed", lambda self, name: name == "llava")
    restorer = restorers.load_restorer(
        str(model_dir), store_root=str(tmp_path), device=torch.device("cpu"),
        dtype=torch.float32,
    )  # fmt: skip
    assert isinstance(restorer.pipeline.captioner, FakeLlava)
    assert loaded["folder"] == ModelStore(str(tmp_path)).path_of("llava")


@pytest.mark.parametrize("spec", ["auto", "starter"])
def test_nothing_installed_says_what_to_get(spec, tmp_path, monkeypatch):
    # As on a build without the bundled starter weights.
    monkeypatch.setattr(restorers, "starter_available", lambda: False)
    with pytest.raises(ModelNotInstalledError) as error:
        restorers.load_restorer(
            spec, store_root=str(tmp_path), device=torch.device("cpu"), dtype=torch.float32
        )
    assert "dreamclear models download dreamclear" in error.value.hint


def test_an_unknown_model_name_is_explained(tmp_path):
    with pytest.raises(ModelNotInstalledError) as error:
        restorers.load_restorer(
            "dreamclera", store_root=str(tmp_path), device=torch.device("cpu"),
            dtype=torch.float32,
        )  # fmt: skip
    assert "dreamclera" in error.value.message and "models list" in error.value.hint


def test_a_model_imported_under_a_local_name_restores_by_that_name(tiny_model_dir, tmp_path):
    from engine.weights.store import ModelStore

    ModelStore(str(tmp_path)).import_path("my-model", tiny_model_dir, link=False)
    restorer = restorers.load_restorer("my-model", store_root=str(tmp_path), device="cpu")
    assert restorer.name == "my-model" and restorer.pipeline.transformer is not None
    assert (restorer.device.type, restorer.dtype) == ("cpu", torch.float32)  # auto on a CPU
