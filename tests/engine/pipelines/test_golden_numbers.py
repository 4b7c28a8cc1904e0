"""Golden numbers: the tiny DreamClear pipeline and the bundled starter against stored values.

The other restore tests compare one run with another, so a change that shifts every run alike
(in the sampler, the tiling, the colour fix, the maps) passes them. These compare a small slice
of the output with numbers written here, as diffusers' pipeline tests do with `expected_slice`.

How the numbers were produced: the starter's when v2.2 shipped (its two restorers and their
gate, 2026-12-07; on this input the gate takes the gentle restorer alone, weight 6e-5, where
v2.1's blended both at 0.07: tests/engine/pipelines/test_gated_starter.py covers the blend;
the map values did not change, the estimator is the same; v2.3's gate, weight 6e-5, takes the
gentle restorer alone too, so they stayed with its new all-round restorer; written again
when v2.4's gentle restorer shipped and again for v2.5's, the gate and the maps unchanged), the tiny
pipeline's at 77b599f, on the CPU in float32 with torch 2.14.1, by running `run_tiny` and `run_starter` below and printing
`centre_patch(out.image)`, the image mean and the map values at `TINY_MAP_AT` and
`STARTER_MAP_AT` to 6 decimals. They came out the same with 1 and 2 threads and in repeated
runs (the largest difference seen: 3e-8). Change them only with a change meant to change the
numbers, and say so in its commit message.
"""

from __future__ import annotations

import pytest
import torch

from engine.restorers import load_restorer
from engine.weights.starter_io import starter_available

ATOL = 1e-4

# fmt: off
# The tiny pipeline, 2 iDDPM steps: 16x16 seeded noise in, 64x64 out (latent 8x8, 4x4 tokens).
TINY_SLICE = [
    0.659084, 0.420458, 0.275639, 0.618086, 0.443469, 0.346781, 0.562790, 0.392544, 0.323318,
    0.639554, 0.411427, 0.285071, 0.761482, 0.585117, 0.465252, 0.730510, 0.554920, 0.401918,
    0.356345, 0.265100, 0.278975, 0.298689, 0.243906, 0.228219, 0.261761, 0.208534, 0.194902,
]
TINY_MEAN = 0.442400
TINY_MAP_AT = (0, 1, 1, 0)
"""(block, row, column, expert) of the router weights; the magnitude is read at the first 3."""
TINY_MAP = (0.350237, 0.220276)
"""Router weight and degradation-feature magnitude at `TINY_MAP_AT`."""

# The bundled starter: a 48x48 seeded synthetic photo in, 192x192 out, maps of 12x12 tokens.
STARTER_SLICE = [
    0.511245, 0.505353, 0.500070, 0.517802, 0.508747, 0.494071, 0.530046, 0.515701, 0.494964,
    0.600875, 0.577639, 0.566902, 0.585118, 0.554530, 0.532294, 0.581024, 0.537371, 0.502825,
    0.182933, 0.197018, 0.216707, 0.175967, 0.203984, 0.213783, 0.186458, 0.206589, 0.209112,
]
STARTER_MEAN = 0.498459
STARTER_MAP_AT = (slice(None), 6, 6)
STARTER_MAP = (0.386183, 0.905889, 0.614244, 0.856651)
"""Blur, noise, jpeg and scale strengths of the token at `STARTER_MAP_AT`."""
# fmt: on


def centre_patch(image: torch.Tensor) -> torch.Tensor:
    """The 3x3 pixels around the centre of each channel of (1, 3, H, W), flattened (27,)."""
    top, left = image.shape[-2] // 2 - 1, image.shape[-1] // 2 - 1
    return image[0, :, top : top + 3, left : left + 3].flatten()


def run_tiny(pipe):
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    return pipe(
        image,
        upscale=4,
        min_short_side=64,
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(0),
        return_maps=True,
    )


def synthetic_photo(size: int = 48, seed: int = 0) -> torch.Tensor:
    """Smooth colour ramps, a wave and seeded gaussian noise, (1, 3, size, size) in [0, 1]."""
    ys, xs = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    smooth = torch.stack([0.2 + 0.6 * xs, 0.3 + 0.4 * ys, 0.5 + 0.3 * torch.sin(6 * xs + 4 * ys)])
    noise = torch.randn(3, size, size, generator=torch.Generator().manual_seed(seed))
    return (smooth + 0.08 * noise).clamp(0, 1)[None]


def run_starter(pipe):
    return pipe(synthetic_photo(), upscale=4, return_maps=True)


@pytest.fixture(params=[1, 2], ids=lambda n: f"{n}-threads")
def threads(request):
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


def _assert_close(actual, expected) -> None:
    expected = torch.tensor(expected, dtype=torch.float32)
    torch.testing.assert_close(torch.as_tensor(actual).flatten(), expected, atol=ATOL, rtol=0)


def test_tiny_pipeline_gives_the_stored_numbers(pipe, threads):
    out = run_tiny(pipe)
    assert out.image.shape == (1, 3, 64, 64)
    _assert_close(centre_patch(out.image), TINY_SLICE)
    _assert_close(out.image.mean(), [TINY_MEAN])
    maps = out.degradation_maps
    _assert_close([maps.router[TINY_MAP_AT], maps.magnitude[TINY_MAP_AT[:3]]], TINY_MAP)


@pytest.fixture(scope="module")
def bundled_starter():
    if not starter_available():
        pytest.skip("no bundled starter weights")
    return load_restorer("starter", device="cpu").pipeline


def test_bundled_starter_gives_the_stored_numbers(bundled_starter, threads):
    out = run_starter(bundled_starter)
    assert out.image.shape == (1, 3, 192, 192)
    _assert_close(centre_patch(out.image), STARTER_SLICE)
    _assert_close(out.image.mean(), [STARTER_MEAN])
    assert out.degradation_maps.strengths.shape == (4, 12, 12)
    _assert_close(out.degradation_maps.strengths[STARTER_MAP_AT], STARTER_MAP)
