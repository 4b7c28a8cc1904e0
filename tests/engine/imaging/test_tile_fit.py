"""The starter's tiles: small enough to stop between, overlapping little."""

from __future__ import annotations

import pytest

from engine.imaging.tile_fit import fit_tiles, tiles_overhead
from engine.imaging.tile_grid import tile_grid
from engine.pipelines.starter import STARTER_MAX_TILE, STARTER_MIN_TILE, STARTER_TILE_OVERLAP

SIZES = [256, 300, 385, 512, 520, 700, 1000, 1024, 1365, 1536, 2048, 2731, 3000, 4096]


def starter_tile(height: int, width: int) -> tuple[int, int]:
    return fit_tiles(
        height,
        width,
        max_tile=STARTER_MAX_TILE,
        min_tile=STARTER_MIN_TILE,
        overlap=STARTER_TILE_OVERLAP,
        multiple=4,
    )


def test_the_overhead_is_the_sum_of_the_tile_areas_over_the_image_area():
    for height, width in [(385, 289), (2048, 1365), (1000, 3000)]:
        tile = starter_tile(height, width)
        boxes = tile_grid(height, width, tile, STARTER_TILE_OVERLAP)
        areas = sum(box.height * box.width for box in boxes)
        assert tiles_overhead(height, width, tile, STARTER_TILE_OVERLAP) == pytest.approx(
            areas / (height * width)
        )


@pytest.mark.parametrize("height", SIZES)
@pytest.mark.parametrize("aspect", [1.0, 0.75, 1.5])
def test_overlap_costs_at_most_thirty_percent_for_outputs_of_256_to_4096_px(height, aspect):
    width = max(64, round(height * aspect))
    tile = starter_tile(height, width)
    assert max(tile) <= STARTER_MAX_TILE and tile[0] % 4 == tile[1] % 4 == 0
    assert len(tile_grid(height, width, tile, STARTER_TILE_OVERLAP)) >= 1
    assert tiles_overhead(height, width, tile, STARTER_TILE_OVERLAP) <= 1.3


def test_the_old_one_size_tiles_cost_twice_as_much_on_a_2048_px_output():
    assert tiles_overhead(2048, 2048, (1024, 1024), 128) == pytest.approx(2.25)
    tile = starter_tile(2048, 2048)
    assert tiles_overhead(2048, 2048, tile, STARTER_TILE_OVERLAP) < 1.2


def test_an_image_that_fits_keeps_the_largest_tile_and_runs_as_one():
    assert starter_tile(192, 192) == (STARTER_MAX_TILE, STARTER_MAX_TILE)
    assert len(tile_grid(192, 192, STARTER_MAX_TILE, STARTER_TILE_OVERLAP)) == 1
