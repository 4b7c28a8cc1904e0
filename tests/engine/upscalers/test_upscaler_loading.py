"""Bring-your-own upscalers: spandrel files load safely, with their native scale, and run tiled."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.errors import CheckpointError
from engine.models.reference_upscalers import TINY_UPSCALERS as TINY
from engine.models.reference_upscalers import tiny_upscaler
from engine.pipelines.upscaler import UpscalerRestorePipeline
from engine.restorers import load_restorer
from engine.weights.upscaler_io import inspect_upscaler, load_upscaler

ARCHITECTURE_NAMES = {
    "compact-x4": "RealESRGAN Compact",
    "rrdbnet-x2": "ESRGAN",
    "swinir-x2": "SwinIR",
}


@pytest.mark.parametrize("name", list(TINY))
@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_native_scale_and_architecture_are_detected(upscaler_files, name, suffix):
    info = inspect_upscaler(upscaler_files[name + suffix])
    assert info.scale == TINY[name][1]
    assert info.purpose == "SR"
    assert info.architecture == ARCHITECTURE_NAMES[name]


@pytest.mark.parametrize("name", list(TINY))
def test_restorer_output_has_the_asked_size_and_matches_the_model(upscaler_files, name):
    restorer = load_restorer(str(upscaler_files[name + ".safetensors"]), device="cpu")
    image = torch.rand(1, 3, 20, 28, generator=torch.Generator().manual_seed(1))
    scale = TINY[name][1]
    out = restorer.pipeline(image, upscale=scale)
    assert out.image.shape == (1, 3, 20 * scale, 28 * scale)
    assert out.degradation_maps is None
    with torch.no_grad():
        expected = tiny_upscaler(name)(image).clamp(0, 1)
    torch.testing.assert_close(out.image, expected, atol=1e-4, rtol=0)


def test_tiles_blend_to_the_untiled_result(upscaler_files):
    """A large input runs in several tiles; the convolutional model's result barely moves."""
    descriptor = load_upscaler(upscaler_files["compact-x4.pth"])
    pipeline = UpscalerRestorePipeline(descriptor, "compact")
    image = torch.rand(1, 3, 40, 52, generator=torch.Generator().manual_seed(2))
    ticks, previews = [], []
    out = pipeline(
        image,
        upscale=2,
        remover_tile_size=64,
        on_progress=ticks.append,
        on_preview=lambda render, size: previews.append((tuple(render().shape), size)),
    )
    assert len(out.tile_grid) > 1
    assert ticks[-1].fraction == 1.0 and ticks[0].label.endswith(f"(tile 1/{len(out.tile_grid)})")
    # Previews come at the asked size, finished tiles restored and the rest the plain upscale.
    assert previews and all(p == ((1, 3, 80, 104), (80, 104)) for p in previews)
    out = pipeline(image, upscale=4, remover_tile_size=64)
    whole = descriptor(image)
    assert (out.image - whole).abs().mean() < 0.01


def test_another_scale_is_resampled_and_said(upscaler_files):
    pipeline = load_restorer(str(upscaler_files["compact-x4.safetensors"]), device="cpu").pipeline
    image = torch.rand(1, 3, 16, 20)
    warnings: list[str] = []
    out = pipeline(image, upscale=2, on_warning=warnings.append)
    assert out.image.shape == (1, 3, 32, 40)
    assert warnings and "x4" in warnings[0] and "resampled" in warnings[0]
    native = pipeline(image, upscale=4).image
    expected = F.interpolate(native, size=(32, 40), mode="bicubic", antialias=True).clamp(0, 1)
    torch.testing.assert_close(out.image, expected)


def test_a_pickle_with_objects_is_refused_without_running_it(unsafe_pth, capsys):
    with pytest.raises(CheckpointError, match="refused") as caught:
        load_restorer(str(unsafe_pth), device="cpu")
    assert "safetensors" in caught.value.hint
    assert "this pickle ran code" not in capsys.readouterr().out


def test_a_file_spandrel_does_not_know_is_a_clear_error(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "mystery.safetensors"
    save_file({"what.weight": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="spandrel"):
        load_restorer(str(path), device="cpu")
