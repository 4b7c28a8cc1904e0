"""The shipped manifest loads, and malformed manifests fail with messages naming the problem."""

from __future__ import annotations

import pytest

from engine.errors import BadSettingError
from engine.weights.manifest import ManifestError, load_manifest, parse_manifest


def test_shipped_manifest_names_every_model():
    manifest = load_manifest()
    assert set(manifest.models) == {
        "dreamclear",
        "pixart-base",
        "swinir",
        "sd-vae",
        "t5-xxl",
        "llava",
        "starter",
        "sdxl-base",
        "genir-captioner",
        "genir-llm",
        "genir-judge",
    }
    dreamclear = manifest.get("dreamclear")
    assert dreamclear.repo == "shallowdream204/DreamClear"
    assert [f.path for f in dreamclear.files] == ["DreamClear-1024.pth"]
    assert dreamclear.approx_size == 8_870_000_000
    assert manifest.get("swinir").files[0].path == "general_swinir_v1.ckpt"
    assert manifest.get("sd-vae").folders[0].download == ("sd-vae-ft-ema/*",)
    assert manifest.get("sd-vae").licence == "MIT"
    assert manifest.get("llava").repo == "llava-hf/llava-v1.6-vicuna-13b-hf"
    assert manifest.get("llava").optional and manifest.get("pixart-base").optional
    starter = manifest.get("starter")
    assert starter.bundled and starter.repo is None
    assert [f.path for f in starter.files] == ["restorer.safetensors"]


def test_genir_models_name_their_repos_and_licences():
    manifest = load_manifest()
    sdxl = manifest.get("sdxl-base")
    assert sdxl.repo == "stabilityai/stable-diffusion-xl-base-1.0"
    assert sdxl.licence == "CreativeML Open RAIL++-M" and sdxl.kind == "base"
    assert "unet/diffusion_pytorch_model.safetensors" in sdxl.folders[0].download
    assert sdxl.approx_size == 13_900_000_000
    expected = {
        "genir-captioner": ("Salesforce/blip-image-captioning-large", "BSD-3-Clause", "captioner"),
        "genir-llm": ("Qwen/Qwen2.5-0.5B-Instruct", "Apache-2.0", "llm"),
        "genir-judge": ("Qwen/Qwen2-VL-2B-Instruct", "Apache-2.0", "judge"),
    }
    for name, (repo, licence, kind) in expected.items():
        entry = manifest.get(name)
        assert (entry.repo, entry.licence, entry.kind) == (repo, licence, kind)
        assert entry.optional


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(BadSettingError) as caught:
        load_manifest().get("dreamclearr")
    assert "dreamclear" in caught.value.hint


def _minimal(**entry):
    base = {
        "title": "T",
        "kind": "remover",
        "purpose": "p",
        "repo": "a/b",
        "licence": "MIT",
        "files": [{"path": "x.ckpt"}],
    }
    base.update(entry)
    base = {key: value for key, value in base.items() if value is not None}  # TOML has no null
    return {"format": 1, "models": {"m": base}}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"format": 2, "models": {}}, "format 2"),
        ({"format": 1}, "no [models.NAME]"),
        (_minimal(kind="upscaler"), "kind 'upscaler'"),
        (_minimal(repo="not a repo"), "not a hub id"),
        (_minimal(files=[{"path": "../escape.pth"}]), "inside the model folder"),
        (_minimal(files=[{"path": "x.pth", "size": -1}]), "positive number of bytes"),
        (_minimal(files=[]), "at least one"),
        (_minimal(colour="red"), "unknown keys ['colour']"),
        (_minimal(repo=None), "'repo' is required"),
        (_minimal(repo=None, bundled=True, files=[]), "at least one"),
        (_minimal(folders=[{"path": "vae"}]), "must_contain"),
    ],
)
def test_malformed_manifests_are_refused(data, message):
    with pytest.raises(ManifestError) as caught:
        parse_manifest(data)
    assert message in caught.value.message


def test_missing_manifest_file(tmp_path):
    with pytest.raises(ManifestError, match="missing"):
        load_manifest(tmp_path / "nope.toml")
