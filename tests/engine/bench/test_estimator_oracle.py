"""The estimator bench's oracle reads blur and scale back from an LQ image, knowing the photo."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.bench.estimator_oracle import oracle_strengths
from engine.degradation.records import min_scale_strength
from engine.degradation.spatial import degrade_with_masks

SIZE = 256


def texture(seed: int = 0) -> torch.Tensor:
    """Random colours in 4 px squares: detail at every LQ pixel of a x4 degradation."""
    g = torch.Generator().manual_seed(seed)
    cells = torch.rand(1, 3, SIZE // 4, SIZE // 4, generator=g)
    return F.interpolate(cells, scale_factor=4, mode="nearest")[0]


def masks_with_halves(channel: int, left: float, right: float) -> torch.Tensor:
    """Mild masks (no blur, noise or JPEG, plain x4) with `channel` at `left` / `right`."""
    masks = torch.zeros(4, SIZE, SIZE)
    masks[3] = min_scale_strength(4)
    masks[channel, :, : SIZE // 2] = left
    masks[channel, :, SIZE // 2 :] = right
    return masks


def halves(read: torch.Tensor) -> tuple[float, float]:
    """Means of the left and right quarters of a token map (away from the boundary)."""
    width = read.shape[-1]
    return float(read[:, : width // 4].mean()), float(read[:, -width // 4 :].mean())


def test_reads_blur_where_it_was_applied_and_not_elsewhere() -> None:
    hq = texture()
    lq = degrade_with_masks(hq, masks_with_halves(0, 0.0, 0.75), seed=0).lq
    read = oracle_strengths(hq, lq, scale=4)
    assert read.shape == (2, SIZE // 16, SIZE // 16)
    blur_left, blur_right = halves(read[0])
    # (JPEG at quality 95, applied everywhere, takes a little of the finest detail too.)
    assert blur_left == pytest.approx(0.0, abs=0.15)
    assert blur_right == pytest.approx(0.75, abs=0.1)
    # The resolution was left at the plain x4 everywhere.
    assert float(read[1].max()) == pytest.approx(min_scale_strength(4), abs=1e-6)


def test_reads_a_coarse_pixel_grid_as_scale_not_blur() -> None:
    hq = texture(1)
    lq = degrade_with_masks(hq, masks_with_halves(3, min_scale_strength(4), 1.0), seed=0).lq
    read = oracle_strengths(hq, lq, scale=4)
    scale_left, scale_right = halves(read[1])
    assert scale_left == pytest.approx(min_scale_strength(4), abs=0.05)
    assert scale_right == pytest.approx(1.0, abs=0.1)
    assert float(read[0].mean()) < 0.15


def test_refuses_an_lq_of_the_wrong_size() -> None:
    with pytest.raises(ValueError, match="x4"):
        oracle_strengths(texture(), torch.zeros(3, 32, 32), scale=4)
