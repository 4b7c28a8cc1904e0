"""PSNR-Y and SSIM-Y follow BasicSR's convention: checked on cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.errors import BadInputError
from engine.metrics.fidelity import gaussian_kernel_1d, psnr_y, rgb_to_y, ssim_y

C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def _noise_image(seed: int, size: int = 24) -> np.ndarray:
    return np.random.default_rng(seed).random((3, size, size))


def test_y_channel_is_bt601_on_the_255_scale():
    black, white = np.zeros((3, 1, 1)), np.ones((3, 1, 1))
    assert rgb_to_y(black)[0, 0] == pytest.approx(16.0)
    assert rgb_to_y(white)[0, 0] == pytest.approx(235.0)
    red = np.zeros((3, 1, 1))
    red[0] = 1
    assert rgb_to_y(red)[0, 0] == pytest.approx(16 + 65.481)


def test_identical_images_score_inf_and_one():
    image = _noise_image(0)
    assert psnr_y(image, image) == math.inf
    assert ssim_y(image, image) == pytest.approx(1.0, abs=1e-12)


def test_psnr_of_a_one_level_y_offset_is_48_13_db():
    a = np.full((3, 8, 8), 0.5)
    b = a + 1 / 219  # the Y weights sum to 219, so Y moves by exactly 1
    assert psnr_y(a, b) == pytest.approx(10 * math.log10(255**2), abs=1e-9)
    assert psnr_y(a, b) == pytest.approx(48.1308, abs=1e-4)


def test_psnr_ignores_the_cropped_border_and_accepts_tensors():
    a = _noise_image(1, 16)
    b = a.copy()
    b[:, 0, :] = 0  # differences only in the first row
    assert psnr_y(a, b) < 40
    assert psnr_y(a, b, crop_border=1) == math.inf
    assert psnr_y(torch.from_numpy(a)[None].float(), torch.from_numpy(a).float()) == math.inf


def test_ssim_of_flat_images_is_the_luminance_term():
    a, b = np.full((3, 16, 16), 0.5), np.full((3, 16, 16), 0.25)
    ya, yb = 16 + 219 * 0.5, 16 + 219 * 0.25
    expected = (2 * ya * yb + C1) / (ya**2 + yb**2 + C1)
    assert ssim_y(a, b) == pytest.approx(expected, abs=1e-12)


def test_ssim_matches_a_direct_windowed_sum():
    a, b = _noise_image(2, 15), _noise_image(3, 15)
    ya, yb = rgb_to_y(a), rgb_to_y(b)
    window = np.outer(gaussian_kernel_1d(11, 1.5), gaussian_kernel_1d(11, 1.5))
    values = []
    for y in range(15 - 10):
        for x in range(15 - 10):
            pa, pb = ya[y : y + 11, x : x + 11], yb[y : y + 11, x : x + 11]
            mu_a, mu_b = (window * pa).sum(), (window * pb).sum()
            var_a = (window * (pa - mu_a) ** 2).sum()
            var_b = (window * (pb - mu_b) ** 2).sum()
            cov = (window * (pa - mu_a) * (pb - mu_b)).sum()
            values.append(
                (2 * mu_a * mu_b + C1)
                * (2 * cov + C2)
                / ((mu_a**2 + mu_b**2 + C1) * (var_a + var_b + C2))
            )
    assert ssim_y(a, b) == pytest.approx(np.mean(values), abs=1e-10)


def test_gaussian_window_is_normalised_and_symmetric():
    taps = gaussian_kernel_1d(11, 1.5)
    assert taps.sum() == pytest.approx(1.0)
    assert np.allclose(taps, taps[::-1])
    assert taps[5] / taps[4] == pytest.approx(math.exp(1 / (2 * 1.5**2)))


def test_bad_shapes_and_tiny_images_are_refused():
    with pytest.raises(BadInputError, match="differ in size"):
        psnr_y(_noise_image(0, 16), _noise_image(0, 24))
    with pytest.raises(BadInputError, match="RGB"):
        psnr_y(np.zeros((16, 16)), np.zeros((16, 16)))
    with pytest.raises(BadInputError, match="11x11"):
        ssim_y(_noise_image(0, 16), _noise_image(1, 16), crop_border=4)


def test_skimage_agrees_when_installed():
    metrics = pytest.importorskip("skimage.metrics")
    a, b = _noise_image(4, 32), _noise_image(5, 32)
    ya, yb = rgb_to_y(a), rgb_to_y(b)
    expected = metrics.structural_similarity(
        ya, yb, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    # skimage averages over the image less a 5 px border, as BasicSR's valid window does.
    assert ssim_y(a, b) == pytest.approx(expected, abs=1e-6)
    assert psnr_y(a, b) == pytest.approx(metrics.peak_signal_noise_ratio(ya, yb, data_range=255))
