"""The v2 starter: a Compact restorer run on the input itself at its native scale (x4), with
the estimator and the colour fix on the bicubic upscale (`compact_starter_dir`, conftest.py)."""

from __future__ import annotations

import pytest
import torch

from engine.cancel import CancelToken
from engine.errors import JobInterrupted
from engine.models.starter import STARTER_CHANNELS
from engine.pipelines.starter import StarterRestorePipeline
from engine.restorers import load_restorer


def _photo(height: int, width: int) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    return torch.stack([x, y, (x + y) / 2])[None]


@pytest.fixture(scope="module")
def pipe(compact_starter_dir) -> StarterRestorePipeline:
    pipeline = load_restorer(str(compact_starter_dir), device="cpu").pipeline
    assert isinstance(pipeline, StarterRestorePipeline)
    return pipeline


def test_runs_the_network_on_the_input_at_its_native_scale(pipe):
    assert pipe.restorer_scale == 4
    image = _photo(23, 37)
    out = pipe(image, upscale=4, color_fix="none")
    with torch.no_grad():
        direct = pipe.restorer(image).clamp(0, 1)
    # One tile: exactly the network's own output, no bicubic step in front of it.
    torch.testing.assert_close(out.image, direct)


@pytest.mark.parametrize(("upscale", "size"), [(4, (92, 148)), (2, (46, 74)), (1, (23, 37))])
def test_any_asked_scale_gets_the_exact_size_and_maps(pipe, upscale, size):
    out = pipe(_photo(23, 37), upscale=upscale, return_maps=True)
    assert out.image.shape == (1, 3, *size)
    assert float(out.image.min()) >= 0 and float(out.image.max()) <= 1
    tokens = (-(-size[0] // 16), -(-size[1] // 16))
    assert out.degradation_maps.strengths.shape == (len(STARTER_CHANNELS), *tokens)


def test_tiled_restore_matches_one_piece(pipe):
    image = _photo(120, 152)
    whole = pipe(image, upscale=4, remover_tile_size=2048).image
    tiled = pipe(image, upscale=4, remover_tile_size=256).image
    assert (whole - tiled).abs().mean() < 0.01


@pytest.mark.parametrize("upscale", [4, 2])
def test_tiles_are_reported_in_output_pixels_and_cover_it(pipe, upscale):
    seen = []
    out = pipe(_photo(120, 152), upscale=upscale, remover_tile_size=256, on_progress=seen.append)
    height, width = out.image.shape[-2:]
    tiles = out.tile_grid
    assert len(tiles) > 1
    assert [info.stage for info in seen] == ["remove"] * len(tiles) + ["colour"]
    covered = torch.zeros(height, width, dtype=torch.bool)
    for tile in tiles:
        covered[tile.slices] = True
    assert covered.all()
    assert max(t.bottom for t in tiles) == height and max(t.right for t in tiles) == width


def test_previews_have_the_output_size(pipe):
    offered = []
    out = pipe(
        _photo(120, 152),
        upscale=2,
        remover_tile_size=256,
        on_preview=lambda render, size: offered.append((render(), size)),
    )
    assert offered and all(size == tuple(out.image.shape[-2:]) for _, size in offered)
    assert all(tuple(picture.shape[-2:]) == size for picture, size in offered)


def test_interrupt_between_tiles(pipe):
    token = CancelToken()
    seen = []

    def stop_after_first(info):
        seen.append(info)
        token.cancel()

    with pytest.raises(JobInterrupted):
        pipe(
            _photo(120, 152),
            upscale=4,
            remover_tile_size=256,
            on_progress=stop_after_first,
            cancel=token,
        )
    assert len(seen) == 1
