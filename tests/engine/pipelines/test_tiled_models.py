"""Tiled VAE and tiled remover agree with their untiled runs."""

from __future__ import annotations

import torch

from engine.pipelines.tiled_remover import remove_degradation_tiled
from engine.pipelines.tiled_vae import decode_tiled, encode_tiled


def _image(height: int, width: int) -> torch.Tensor:
    ys = torch.linspace(0, 1, height)[:, None]
    xs = torch.linspace(0, 1, width)[None, :]
    base = torch.stack(
        [
            0.2 + 0.6 * xs.expand(height, width),
            0.3 + 0.4 * ys.expand(height, width),
            0.5 * (xs + ys),
        ]
    )
    return (
        base + 0.05 * torch.randn(3, height, width, generator=torch.Generator().manual_seed(0))
    ).clamp(0, 1)[None]


def _noise(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


# GroupNorm statistics are per tile, so a tiled VAE never equals the untiled one exactly; the
# random tiny VAE exaggerates this. "Close" here means much closer than another input gets.


def test_tiled_vae_decode_matches_untiled(components):
    latent = 2 * _noise(1, 4, 24, 24) - 1
    untiled = decode_tiled(components.vae, latent, tile_size=1024)
    tiled = decode_tiled(components.vae, latent, tile_size=160, tile_overlap=64)
    other = decode_tiled(components.vae, 2 * _noise(1, 4, 24, 24, seed=1) - 1, tile_size=1024)
    assert tiled.shape == untiled.shape == (1, 3, 192, 192)
    error = (tiled - untiled).abs().mean()
    assert error < 0.1 * untiled.std()
    assert error < 0.1 * (other - untiled).abs().mean()


def test_tiled_vae_encode_matches_untiled(components):
    image = _noise(1, 3, 192, 192)
    untiled = encode_tiled(components.vae, image, tile_size=1024)
    tiled = encode_tiled(components.vae, image, tile_size=160, tile_overlap=64)
    assert tiled.shape == untiled.shape == (1, 4, 24, 24)
    assert (tiled - untiled).abs().mean() < 0.1 * untiled.std()


def test_single_tile_vae_is_exactly_untiled(components):
    image = _image(64, 64)
    expected = components.vae.encode(2 * image - 1).latent_dist.mode() * 0.18215
    torch.testing.assert_close(encode_tiled(components.vae, image, tile_size=64), expected)


def test_tiled_remover_matches_untiled(components):
    image = _image(192, 192)
    untiled = remove_degradation_tiled(components.remover, image, tile_size=1024)
    tiled = remove_degradation_tiled(components.remover, image, tile_size=128, tile_overlap=64)
    assert tiled.shape == untiled.shape == image.shape
    assert (tiled - untiled).abs().mean() < 0.01 * untiled.std()
