"""The starter pipeline with randomly initialised starter models saved in the bundled layout
(`starter_dir`, conftest.py)."""

from __future__ import annotations

import pytest
import torch

from engine.imaging.tile_grid import TileBox
from engine.jobs.restore import output_tile_grid
from engine.models.starter import STARTER_CHANNELS
from engine.pipelines.starter import StarterRestorePipeline
from engine.pipelines.tiled_remover import default_remover_overlap
from engine.restorers import load_restorer
from engine.weights import starter_io


def _photo(height: int, width: int) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    return torch.stack([x, y, (x + y) / 2])[None]


def test_loads_through_spandrel_and_restores_to_the_exact_size(starter_dir):
    pipe = load_restorer(str(starter_dir), device="cpu").pipeline
    assert isinstance(pipe, StarterRestorePipeline)
    out = pipe(_photo(23, 37), upscale=4, return_maps=True, num_inference_steps=50)
    assert out.image.shape == (1, 3, 92, 148)
    assert float(out.image.min()) >= 0 and float(out.image.max()) <= 1
    maps = out.degradation_maps
    # One value per 16 px token of the output, per channel, rounded up.
    assert maps.strengths.shape == (len(STARTER_CHANNELS), 6, 10)
    assert maps.channels == STARTER_CHANNELS
    assert maps.preview_rgb().shape == (6, 10, 3)
    assert set(maps.to_arrays()) == {"strengths", "channels", "token_size_px"}


def test_tiled_restore_matches_one_piece(starter_dir):
    pipe = load_restorer(str(starter_dir), device="cpu").pipeline
    image = _photo(40, 56)
    whole = pipe(image, upscale=4, remover_tile_size=1024).image
    tiled = pipe(image, upscale=4, remover_tile_size=64).image
    assert (whole - tiled).abs().mean() < 0.02


def test_reports_the_pixel_tiles_the_remover_ran_on(starter_dir):
    pipe = load_restorer(str(starter_dir), device="cpu").pipeline
    seen = []
    out = pipe(_photo(40, 56), upscale=4, remover_tile_size=64, on_progress=seen.append)
    height, width = out.image.shape[-2:]  # 160 x 224
    tiles = out.tile_grid
    # One tile per remover progress tick (3 rows x 4 columns), each of the remover's tile size,
    # then the colour fix.
    assert len(tiles) == 12 and [info.stage for info in seen] == ["remove"] * 12 + ["colour"]
    assert [(info.tile, info.tiles) for info in seen[:-1]] == [(i, 12) for i in range(1, 13)]
    assert {(tile.height, tile.width) for tile in tiles} == {(64, 64)}
    # Every 64 - 8 px (the remover's overlap), the last tile flush with the edge ...
    assert default_remover_overlap(64) == 8
    assert sorted({tile.top for tile in tiles}) == [0, 56, 96]
    assert sorted({tile.left for tile in tiles}) == [0, 56, 112, 160]
    # ... so together they cover the output exactly.
    covered = torch.zeros(height, width, dtype=torch.bool)
    for tile in tiles:
        covered[tile.slices] = True
    assert covered.all()
    assert max(tile.bottom for tile in tiles) == height
    assert max(tile.right for tile in tiles) == width
    # Already in output pixels, so the engine's `result` event reports them unchanged.
    assert output_tile_grid(out) == [[t.top, t.left, t.height, t.width] for t in tiles]


def test_an_image_that_fits_one_tile_reports_one_box_over_it(starter_dir):
    """As DreamClear does for an untiled latent."""
    out = load_restorer(str(starter_dir), device="cpu").pipeline(_photo(23, 37), upscale=4)
    assert out.tile_grid == [TileBox(0, 0, 92, 148)]


def test_progress_and_interrupt(starter_dir):
    from engine.cancel import CancelToken
    from engine.errors import JobInterrupted

    pipe = load_restorer(str(starter_dir), device="cpu").pipeline
    seen = []
    token = CancelToken()

    def stop_after_first(info):
        seen.append(info)
        token.cancel()

    with pytest.raises(JobInterrupted):
        pipe(
            _photo(40, 56),
            upscale=4,
            remover_tile_size=64,
            on_progress=stop_after_first,
            cancel=token,
        )
    assert len(seen) == 1 and seen[0].stage == "remove"


def test_missing_starter_says_what_to_do(tmp_path):
    from engine.errors import ModelNotInstalledError

    assert not starter_io.starter_available(tmp_path)
    with pytest.raises(ModelNotInstalledError):
        starter_io.load_starter_networks(tmp_path)
