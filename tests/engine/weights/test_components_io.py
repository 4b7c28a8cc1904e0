"""Model folders: tiny components survive save -> load exactly; broken folders say which file."""

from __future__ import annotations

import json

import pytest
import torch

from engine.errors import BadSettingError, CheckpointError, ModelNotInstalledError, OutputError
from engine.weights.components_io import load_components, save_components
from engine.weights.store import ModelStore


@pytest.fixture(scope="module")
def tiny():
    from engine.models.tiny_components import build_tiny_components

    return build_tiny_components(seed=0)


@pytest.fixture(scope="module")
def saved(tiny, tmp_path_factory):
    return save_components(tiny, tmp_path_factory.mktemp("m") / "tiny")


def _transformer_out(model):
    generator = torch.Generator().manual_seed(1)
    config = model.config
    side = config.sample_size
    latent = torch.randn(1, 4, side, side, generator=generator)
    caption = torch.randn(
        1, config.caption_max_length, config.caption_channels, generator=generator
    )
    with torch.no_grad():
        return model(latent, torch.tensor([500]), caption, latent * 0.5, latent * 0.25).sample


def test_round_trip_gives_identical_outputs(tiny, saved, tmp_path):
    description = json.loads((saved / "dreamclear-model.json").read_text())
    assert description["format"] == "dreamclear-model" and description["version"] == 1
    assert description["dtype"] == "float32"
    assert description["components"]["remover"]["file"] == "remover/model.safetensors"
    assert (saved / "transformer" / "diffusion_pytorch_model.safetensors").is_file()

    loaded = load_components(saved, store=ModelStore(tmp_path), device="cpu")

    assert torch.equal(_transformer_out(tiny.transformer), _transformer_out(loaded.transformer))
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(
            tiny.vae.encode(image).latent_dist.mode(), loaded.vae.encode(image).latent_dist.mode()
        )
        latent = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(3))
        assert torch.equal(tiny.vae.decode(latent).sample, loaded.vae.decode(latent).sample)
        assert torch.equal(tiny.remover(image), loaded.remover(image))
    assert type(loaded.remover) is type(tiny.remover)
    embeddings, mask = tiny.text_encoder(["a blurry photo of a dog"])
    loaded_embeddings, loaded_mask = loaded.text_encoder(["a blurry photo of a dog"])
    assert torch.equal(embeddings, loaded_embeddings) and torch.equal(mask, loaded_mask)
    assert loaded.text_encoder.max_length == tiny.text_encoder.max_length
    assert loaded.captioner.caption(None) == tiny.captioner.caption(None)


def test_load_in_another_dtype_keeps_the_vae_fp32(saved, tmp_path):
    loaded = load_components(saved, store=ModelStore(tmp_path), dtype=torch.bfloat16)
    assert loaded.transformer.dtype == torch.bfloat16
    assert loaded.text_encoder.dtype == torch.bfloat16
    assert loaded.vae.dtype == torch.float32


def test_save_refuses_a_non_empty_folder(tiny, saved):
    with pytest.raises(OutputError, match="not empty"):
        save_components(tiny, saved)


def test_corrupt_remover_is_a_checkpoint_error_naming_the_file(saved, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(saved, broken)
    remover = broken / "remover" / "model.safetensors"
    remover.write_bytes(remover.read_bytes()[:100])
    with pytest.raises(CheckpointError) as caught:
        load_components(broken, store=ModelStore(tmp_path / "store"))
    assert "model.safetensors" in caught.value.message


def test_wrong_architecture_remover_is_a_checkpoint_error(saved, tmp_path):
    import shutil

    from safetensors.torch import save_file

    broken = tmp_path / "wrong"
    shutil.copytree(saved, broken)
    save_file({"not.a.model": torch.zeros(3)}, broken / "remover" / "model.safetensors")
    with pytest.raises(CheckpointError, match="spandrel"):
        load_components(broken, store=ModelStore(tmp_path / "store"))


def test_official_remover_ckpt_loads_through_spandrel(fakes, tmp_path):
    from engine.weights.components_io import _load_remover

    path = fakes.swinir_ckpt(tmp_path / "general_swinir_v1.ckpt")
    model = _load_remover(path, torch.device("cpu"), torch.float32)
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(image), fakes.swinir()(image))


def test_dreamclear_spec_lists_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMCLEAR_MODEL_STORE", str(tmp_path))
    with pytest.raises(ModelNotInstalledError) as caught:
        load_components("dreamclear", store=ModelStore(tmp_path))
    assert "dreamclear models download dreamclear" in caught.value.hint


def test_unknown_spec_and_non_model_folder(tmp_path):
    store = ModelStore(tmp_path / "store")
    with pytest.raises(BadSettingError):
        load_components(tmp_path / "nowhere", store=store)
    with pytest.raises(BadSettingError, match="one part of a model"):
        load_components("sd-vae", store=store)
    with pytest.raises(CheckpointError, match=r"no dreamclear-model\.json"):
        load_components(tmp_path, store=store)


def test_dreamclear_spec_assembles_the_official_store_layout(tiny, store, fakes):
    """The store's official files (here: tiny stand-ins in the same layout) make components;
    an existing converted folder is used without touching the .pth."""
    root = store.root
    fakes.dreamclear_pth(root / "dreamclear" / "DreamClear-1024.pth")
    converted = root / "dreamclear" / "converted-fp32"
    tiny.transformer.save_pretrained(converted)
    marker = {"source": "DreamClear-1024.pth", "source_bytes": 1, "dtype": "float32"}
    (converted / "converted_from.json").write_text(json.dumps(marker))
    fakes.swinir_ckpt(root / "swinir" / "general_swinir_v1.ckpt")
    tiny.vae.save_pretrained(root / "sd-vae" / "sd-vae-ft-ema")
    t5 = root / "t5-xxl" / "t5-v1_1-xxl"
    tiny.text_encoder.model.save_pretrained(t5)
    tiny.text_encoder.tokenizer.save_pretrained(t5)
    (t5 / "spiece.model").write_bytes(b"")  # the hub folder has one; the tiny tokenizer does not

    loaded = load_components("dreamclear", store=store, dtype=torch.float32)

    assert torch.equal(_transformer_out(tiny.transformer), _transformer_out(loaded.transformer))
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded.remover(image), fakes.swinir()(image))
    assert loaded.captioner is None
