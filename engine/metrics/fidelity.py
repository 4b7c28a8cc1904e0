"""PSNR and SSIM on the Y channel, as the DreamClear paper (via BasicSR) reports them.

Y = 16 + 65.481 R + 128.553 G + 24.966 B for R, G, B in [0, 1] (BT.601, on the [0, 255]
scale); `crop_border` pixels are cut from every side first (the scale factor, by convention).
SSIM uses an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, L = 255, and averages
the SSIM map over the "valid" positions (no padding), like BasicSR's `calculate_ssim`.
"""

from __future__ import annotations

import math

import numpy as np

from engine.errors import BadInputError

_Y_WEIGHTS = np.array([65.481, 128.553, 24.966])
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def as_rgb_array(image) -> np.ndarray:
    """A (3,H,W) or (1,3,H,W) tensor or array in [0, 1] -> float64 array (3,H,W)."""
    if hasattr(image, "detach"):
        image = image.detach().float().cpu().numpy()
    array = np.asarray(image, dtype=np.float64)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3 or array.shape[0] != 3:
        raise BadInputError(f"expected an RGB image of shape (3, H, W), got {array.shape}")
    return array


def rgb_to_y(image) -> np.ndarray:
    """(3,H,W) RGB in [0, 1] -> (H,W) float64 Y in [16, 235] (BT.601)."""
    rgb = as_rgb_array(image)
    return 16.0 + np.tensordot(_Y_WEIGHTS, rgb, axes=1)


def _y_pair(a, b, crop_border: int) -> tuple[np.ndarray, np.ndarray]:
    ya, yb = rgb_to_y(a), rgb_to_y(b)
    if ya.shape != yb.shape:
        raise BadInputError(f"images differ in size: {ya.shape} and {yb.shape}")
    if crop_border < 0 or 2 * crop_border >= min(ya.shape):
        raise BadInputError(f"crop_border {crop_border} leaves nothing of a {ya.shape} image")
    if crop_border:
        ya = ya[crop_border:-crop_border, crop_border:-crop_border]
        yb = yb[crop_border:-crop_border, crop_border:-crop_border]
    return ya, yb


def psnr_y(a, b, crop_border: int = 0) -> float:
    """PSNR in dB between two RGB images in [0, 1] on their Y channel; inf when identical."""
    ya, yb = _y_pair(a, b, crop_border)
    mse = float(np.mean((ya - yb) ** 2))
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(255.0**2 / mse)


def gaussian_kernel_1d(size: int, sigma: float) -> np.ndarray:
    """Normalised 1-D Gaussian taps (what OpenCV's getGaussianKernel gives for sigma > 0)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    taps = np.exp(-(x**2) / (2 * sigma**2))
    return taps / taps.sum()


def filter_valid(image: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable filtering with taps along both axes, keeping only fully covered positions."""
    n = len(taps)
    h, w = image.shape
    rows = sum(taps[k] * image[k : h - n + 1 + k, :] for k in range(n))
    return sum(taps[k] * rows[:, k : w - n + 1 + k] for k in range(n))


def ssim_y(a, b, crop_border: int = 0) -> float:
    """SSIM between two RGB images in [0, 1] on their Y channel (1.0 when identical)."""
    ya, yb = _y_pair(a, b, crop_border)
    if min(ya.shape) < SSIM_WINDOW:
        raise BadInputError(
            f"SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels after cropping, "
            f"got {ya.shape[1]}x{ya.shape[0]}"
        )
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    taps = gaussian_kernel_1d(SSIM_WINDOW, SSIM_SIGMA)
    mu_a, mu_b = filter_valid(ya, taps), filter_valid(yb, taps)
    var_a = filter_valid(ya * ya, taps) - mu_a**2
    var_b = filter_valid(yb * yb, taps) - mu_b**2
    cov = filter_valid(ya * yb, taps) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return float(ssim_map.mean())


def gradient_energy_ratio(image, reference, crop_border: int = 0) -> float:
    """High-frequency detail kept: the energy of `image`'s Y gradients (squared horizontal and
    vertical neighbour differences) over `reference`'s. 1 keeps the reference's detail, below
    1 is softer (a blur, a denoiser smoothing texture away), above 1 adds edges or noise."""
    ya, yb = _y_pair(image, reference, crop_border)

    def energy(y: np.ndarray) -> float:
        return float(np.sum(np.diff(y, axis=0) ** 2) + np.sum(np.diff(y, axis=1) ** 2))

    ref = energy(yb)
    return energy(ya) / ref if ref > 0 else math.inf
