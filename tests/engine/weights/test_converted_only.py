"""A verified conversion is all a DreamClear restore needs: the official .pth may be removed."""

from __future__ import annotations

import pytest
import torch
from test_official_checkpoint import official_state_dict

from dreamclear.cli import main
from engine.errors import BadSettingError, ModelNotInstalledError
from engine.restorers import load_restorer
from engine.weights.components_io import load_components


@pytest.fixture
def official_store(store, fakes):
    """The store's DreamClear parts: a tiny official-layout .pth and tiny stand-ins."""
    from engine.models.tiny_components import build_tiny_components

    tiny = build_tiny_components(seed=0)
    root = store.root
    pth = root / "dreamclear" / "DreamClear-1024.pth"
    pth.parent.mkdir(parents=True)
    torch.save({"state_dict": official_state_dict(seed=5)}, pth)
    fakes.swinir_ckpt(root / "swinir" / "general_swinir_v1.ckpt")
    tiny.vae.save_pretrained(root / "sd-vae" / "sd-vae-ft-ema")
    t5 = root / "t5-xxl" / "t5-v1_1-xxl"
    tiny.text_encoder.model.save_pretrained(t5)
    tiny.text_encoder.tokenizer.save_pretrained(t5)
    (t5 / "spiece.model").write_bytes(b"")
    return store


def test_the_converted_folder_alone_is_installed_loads_and_is_auto(official_store):
    store = official_store
    folder = store.convert("dreamclear", "bf16")
    before = load_components("dreamclear", store=store, dtype=torch.bfloat16).transformer
    freed = store.remove_source()

    assert freed > 0 and not store.source_path().exists()
    status = store.status("dreamclear")
    assert status.installed and not status.missing
    assert (status.converted, status.source_present, status.path) == (("bf16",), False, folder)

    after = load_components("dreamclear", store=store, dtype=torch.bfloat16).transformer
    for (key, a), b in zip(before.state_dict().items(), after.state_dict().values(), strict=True):
        assert torch.equal(a, b), key
    restorer = load_restorer("auto", store_root=str(store.root), device="cpu", dtype="bf16")
    assert restorer.name == "dreamclear"


def test_another_dtype_without_the_source_is_explained_not_fallen_back(official_store):
    store = official_store
    store.convert("dreamclear", "bf16")
    store.remove_source()
    with pytest.raises(ModelNotInstalledError) as error:
        load_components("dreamclear", store=store, dtype=torch.float16)
    assert "converted to bf16 only" in error.value.message
    assert "DreamClear-1024.pth" in error.value.message
    assert "--dtype bf16" in error.value.hint and "convert --dtype fp16" in error.value.hint
    with pytest.raises(ModelNotInstalledError, match="bf16 only"):
        load_restorer("auto", store_root=str(store.root), device="cpu", dtype="fp16")


def test_the_source_is_removed_only_after_a_verified_conversion(official_store):
    store = official_store
    with pytest.raises(BadSettingError, match="no verified conversion"):
        store.remove_source()
    folder = store.convert("dreamclear", "bf16")
    (folder / "diffusion_pytorch_model.safetensors").unlink()  # damaged: not verified
    assert store.converted_dtypes() == ()
    with pytest.raises(BadSettingError):
        store.remove_source()
    assert store.source_path().is_file()


def test_cli_convert_remove_source_and_list(official_store, capsys):
    store = ["--store", str(official_store.root)]
    assert main(["models", "convert", "--dtype", "bf16", *store]) == 0
    assert main(["models", "list", *store]) == 0
    listing = capsys.readouterr().out
    assert "may be removed" in listing and "convert --dtype bf16 --remove-source" in listing

    assert main(["models", "convert", "--dtype", "bf16", "--remove-source", *store]) == 0
    assert "removed the source" in capsys.readouterr().out
    assert main(["models", "list", *store]) == 0
    listing = capsys.readouterr().out
    row = next(line for line in listing.splitlines() if line.startswith("dreamclear "))
    assert "installed +bf16 (source removed)" in row
    assert "may be removed" not in listing
