"""Bring-your-own upscalers through `dreamclear restore --model PATH` and the model store."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from dreamclear.cli import main
from engine.errors import CheckpointError
from engine.restorers import load_restorer
from engine.weights.store import ModelStore


def write_photo(path, size=(24, 18)):
    pixels = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.mark.parametrize(
    ("name", "upscale", "said"),
    [
        ("compact-x4.pth", 4, False),
        ("rrdbnet-x2.safetensors", 2, False),
        ("swinir-x2.pth", 3, True),
    ],
)
def test_cli_restores_with_a_model_file(upscaler_files, tmp_path, capsys, name, upscale, said):
    photo = write_photo(tmp_path / "photo.png")
    before = photo.read_bytes()
    out = tmp_path / "out"
    model = str(upscaler_files[name])
    code = main(
        ["restore", str(photo), "-o", str(out), "--model", model, "--upscale", str(upscale)]
    )
    text = capsys.readouterr()
    assert code == 0, text.err + text.out
    assert Image.open(out / f"photo_x{upscale}.png").size == (24 * upscale, 18 * upscale)
    assert photo.read_bytes() == before
    assert ("resampled" in text.err + text.out) is said


def test_cli_refuses_an_unsafe_pickle_and_writes_nothing(unsafe_pth, tmp_path, capsys):
    photo = write_photo(tmp_path / "photo.png")
    out = tmp_path / "out"
    code = main(["restore", str(photo), "-o", str(out), "--model", str(unsafe_pth)])
    text = capsys.readouterr()
    assert code != 0
    assert "refused" in text.err
    assert not out.exists() or not any(out.iterdir())
    assert "this pickle ran code" not in text.out + text.err


def test_import_puts_the_file_in_the_store_as_a_local_model(upscaler_files, tmp_path):
    store = ModelStore(tmp_path / "store")
    status = store.import_path(None, upscaler_files["rrdbnet-x2.pth"])
    assert status.name == "rrdbnet-x2" and status.installed
    assert "rrdbnet-x2" in store.local_names()
    marker = json.loads((status.path / "upscaler.json").read_text())
    assert (marker["architecture"], marker["scale"], marker["file"]) == (
        "ESRGAN",
        2,
        "rrdbnet-x2.pth",
    )
    restorer = load_restorer("rrdbnet-x2", store_root=str(store.root), device="cpu")
    assert restorer.pipeline.scale == 2
    store.remove("rrdbnet-x2")
    assert store.local_names() == []


def test_import_refuses_an_unsafe_pickle(unsafe_pth, tmp_path):
    store = ModelStore(tmp_path / "store")
    with pytest.raises(CheckpointError, match="refused"):
        store.import_path(None, unsafe_pth)
    assert store.local_names() == []


def test_a_swinir_upscaler_is_not_taken_for_dreamclears_remover(upscaler_files, tmp_path):
    store = ModelStore(tmp_path / "store")
    status = store.import_path("my-swinir", upscaler_files["swinir-x2.safetensors"])
    assert status.name == "my-swinir"
    assert not store.is_installed("swinir")


def test_models_import_cli_names_architecture_and_scale(upscaler_files, tmp_path, capsys):
    store = tmp_path / "store"
    code = main(["models", "--store", str(store), "import", str(upscaler_files["compact-x4.pth"])])
    assert code == 0, capsys.readouterr().err
    assert "RealESRGAN Compact, x4 upscaler" in capsys.readouterr().out
    main(["models", "--store", str(store), "list"])
    assert "compact-x4" in capsys.readouterr().out


def test_the_engine_lists_an_imported_upscaler_with_what_it_is(upscaler_files, tmp_path):
    from engine.model_service import installed_models

    store = ModelStore(tmp_path / "store")
    store.import_path("mine", upscaler_files["swinir-x2.pth"])
    listed = {m["name"]: m for m in installed_models(str(store.root))}
    assert listed["mine"]["title"] == "mine (SwinIR, x2 upscaler)"
    assert listed["mine"]["status"] == "installed"


def test_the_apps_import_file_request_adds_an_upscaler_or_says_why_not(
    upscaler_files, unsafe_pth, tmp_path
):
    """What the model manager's "Import file…" sends (`model_action import`), engine side."""
    import asyncio

    from engine import protocol as p
    from engine.model_service import ModelService

    sent: list[p.Event] = []
    service = ModelService(str(tmp_path / "store"), sent.append)

    async def no_devices():
        return "cpu", []

    async def ask(path) -> p.Event:
        await service.handle(p.ModelAction(id="i", action="import", path=str(path)), no_devices)
        return sent[-1]

    done = asyncio.run(ask(upscaler_files["compact-x4.safetensors"]))
    assert isinstance(done, p.ModelDone), done
    assert done.model["title"] == "compact-x4 (RealESRGAN Compact, x4 upscaler)"
    refused = asyncio.run(ask(unsafe_pth))
    assert isinstance(refused, p.Error) and "refused" in refused.message
