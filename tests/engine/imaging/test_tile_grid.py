"""Tile layouts and blending weights."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from engine.imaging.tile_grid import gaussian_weights, tile_grid, tile_starts


@pytest.mark.parametrize(
    ("length", "tile", "overlap"), [(10, 4, 1), (200, 128, 32), (129, 128, 32), (97, 16, 4)]
)
def test_tiles_cover_with_overlap_and_end_flush(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] + tile == length
    for a, b in itertools.pairwise(starts):
        assert 0 < b - a <= tile - overlap


def test_published_layout():
    assert tile_starts(200, 128, 32) == [0, 72]
    assert tile_starts(300, 128, 32) == [0, 96, 172]
    assert tile_starts(128, 128, 32) == [0]
    assert tile_starts(50, 128, 32) == [0]


def test_grid_is_row_major_and_clipped():
    boxes = tile_grid(10, 20, 16, 4)
    assert [(b.top, b.left, b.height, b.width) for b in boxes] == [(0, 0, 10, 16), (0, 4, 10, 16)]


def test_bad_overlap():
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(100, 16, 16)


def test_gaussian_weights_symmetric_peak_in_middle():
    w = gaussian_weights(8, 12)
    assert w.shape == (8, 12)
    np.testing.assert_allclose(w, w[::-1, ::-1])
    assert w.argmax() in {
        np.ravel_multi_index(ix, w.shape) for ix in [(3, 5), (3, 6), (4, 5), (4, 6)]
    }
    assert w.min() > 0 and w[0, 0] / w.max() < 1e-4
