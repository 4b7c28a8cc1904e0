"""Colour fixes against the reference."""

from __future__ import annotations

import pytest
import torch

from engine.pipelines.color_fix import apply_color_fix, wavelet_low_frequency


def _checker(height: int, width: int) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return ((ys + xs) % 2).float() * 2 - 1


def test_wavelet_keeps_reference_low_and_output_high_frequencies():
    detail = 0.1 * _checker(128, 128).expand(1, 3, 128, 128)
    output = torch.tensor([0.2, 0.5, 0.8]).view(1, 3, 1, 1) + detail
    reference = torch.tensor([0.7, 0.3, 0.4]).view(1, 3, 1, 1) + 0.05 * torch.rand(1, 3, 128, 128)
    fixed = apply_color_fix("wavelet", output, reference)
    torch.testing.assert_close(
        wavelet_low_frequency(fixed), wavelet_low_frequency(reference), atol=5e-3, rtol=0
    )
    # The a-trous kernels reach 31 px; away from the border the detail survives exactly.
    inner = (slice(None), slice(None), slice(40, -40), slice(40, -40))
    high = fixed - wavelet_low_frequency(reference)
    torch.testing.assert_close(high[inner], detail[inner], atol=1e-5, rtol=0)


def test_wavelet_of_image_against_itself_is_identity():
    image = torch.rand(1, 3, 40, 56)
    torch.testing.assert_close(apply_color_fix("wavelet", image, image), image)


def test_adain_matches_reference_mean_and_std():
    output = torch.rand(1, 3, 32, 48) * 0.3
    reference = torch.rand(1, 3, 32, 48) * 0.8 + 0.1
    fixed = apply_color_fix("adain", output, reference)
    torch.testing.assert_close(fixed.mean((2, 3)), reference.mean((2, 3)), atol=1e-5, rtol=0)
    torch.testing.assert_close(fixed.std((2, 3)), reference.std((2, 3)), atol=1e-3, rtol=0)


def test_none_and_unknown():
    image = torch.rand(1, 3, 8, 8)
    assert torch.equal(apply_color_fix("none", image, torch.zeros_like(image)), image)
    with pytest.raises(ValueError, match="unknown colour fix"):
        apply_color_fix("histogram", image, image)


def test_tiled_wavelet_fix_equals_the_whole_image_fix():
    from engine.pipelines.color_fix import wavelet_color_fix, wavelet_color_fix_tiled

    generator = torch.Generator().manual_seed(3)
    output = torch.rand(1, 3, 150, 211, generator=generator)
    reference = torch.rand(1, 3, 150, 211, generator=generator)
    whole = wavelet_color_fix(output, reference)
    tiled = wavelet_color_fix_tiled(output, reference, tile_size=64)
    assert torch.allclose(tiled, whole, atol=1e-6)
