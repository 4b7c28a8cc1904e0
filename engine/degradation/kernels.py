"""Blur kernels of the Real-ESRGAN degradation model, and one number saying how much they blur.

Kernels are small (size, size) float32 tensors that sum to 1, built in float64 for accuracy.
The gaussian family shares one rotated covariance `Sigma` (standard deviations `sigma_x`,
`sigma_y`, rotation `theta`) and differs in how the quadratic form `q = x^T Sigma^-1 x` falls off:

- gaussian:    exp(-q / 2)
- generalized: exp(-q**beta / 2)      (beta < 1: heavy tails, beta > 1: flatter top)
- plateau:     1 / (1 + q**beta)

The sinc kernel is the ideal circular low-pass filter with cutoff `cutoff` (radians per pixel,
pi = Nyquist), truncated to the kernel size; it rings like an over-sharpened or resampled photo.

`equivalent_sigma` turns any kernel into the standard deviation of the gaussian that keeps as
much energy (sum of squared taps): a gaussian of std s has sum k^2 = 1 / (4 pi s^2), an ideal
low-pass with cutoff w has 1 / (4 pi (1 / w)^2). A single tap (no blur) scores 1 / sqrt(4 pi),
so `excess_sigma` subtracts that floor in quadrature: it is 0 for no blur and about `sigma`
for a gaussian, whatever the kernel's shape.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

GaussianFamily = Literal["gaussian", "generalized", "plateau"]

NO_BLUR_SIGMA = 1.0 / math.sqrt(4.0 * math.pi)
"""`equivalent_sigma` of a single-tap kernel (about 0.28 px)."""


def _grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be a positive odd number, got {size}")
    axis = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    return xx, yy


def gaussian_family_kernel(
    size: int,
    sigma_x: float,
    sigma_y: float,
    theta: float,
    *,
    family: GaussianFamily = "gaussian",
    beta: float = 1.0,
) -> torch.Tensor:
    """A rotated (anisotropic) kernel of the gaussian family; isotropic when sigma_x == sigma_y.

    `sigma_x`, `sigma_y` are in pixels (> 0), `theta` in radians; `beta` (> 0) shapes the
    generalized and plateau kernels and is ignored for the plain gaussian.
    """
    if sigma_x <= 0 or sigma_y <= 0 or beta <= 0:
        raise ValueError(f"sigmas and beta must be > 0, got {sigma_x}, {sigma_y}, {beta}")
    xx, yy = _grid(size)
    cos, sin = math.cos(theta), math.sin(theta)
    # Coordinates in the kernel's own axes, so q = (u / sigma_x)^2 + (v / sigma_y)^2.
    u = cos * xx + sin * yy
    v = -sin * xx + cos * yy
    q = (u / sigma_x) ** 2 + (v / sigma_y) ** 2
    if family == "gaussian":
        kernel = torch.exp(-0.5 * q)
    elif family == "generalized":
        kernel = torch.exp(-0.5 * q**beta)
    elif family == "plateau":
        kernel = 1.0 / (1.0 + q**beta)
    else:
        raise ValueError(f"unknown kernel family {family!r}")
    return (kernel / kernel.sum()).float()


def sinc_kernel(size: int, cutoff: float) -> torch.Tensor:
    """The circular low-pass (2-D sinc) kernel: cutoff * J1(cutoff * r) / (2 pi r), normalised."""
    if not 0 < cutoff <= math.pi:
        raise ValueError(f"sinc cutoff must be in (0, pi], got {cutoff}")
    xx, yy = _grid(size)
    r = torch.sqrt(xx**2 + yy**2)
    safe_r = torch.where(r == 0, torch.ones_like(r), r)
    kernel = cutoff * torch.special.bessel_j1(cutoff * safe_r) / (2 * math.pi * safe_r)
    # The limit at r = 0 of the expression above.
    kernel = torch.where(r == 0, torch.full_like(r, cutoff**2 / (4 * math.pi)), kernel)
    return (kernel / kernel.sum()).float()


def equivalent_sigma(kernel: torch.Tensor) -> float:
    """Std (pixels) of the gaussian with the same energy as `kernel` (see the module doc)."""
    energy = float((kernel.double() ** 2).sum())
    return 1.0 / math.sqrt(4.0 * math.pi * energy)


def excess_sigma(kernel: torch.Tensor) -> float:
    """How much `kernel` blurs beyond a single tap, in pixels (0 for no blur)."""
    return math.sqrt(max(equivalent_sigma(kernel) ** 2 - NO_BLUR_SIGMA**2, 0.0))


def gaussian_taps(sigma: float) -> torch.Tensor:
    """A 1-D gaussian (float32, sums to 1) reaching 3 sigma, for fast separable blurs."""
    radius = max(1, math.ceil(3.0 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    taps = torch.exp(-0.5 * (x / sigma) ** 2)
    return (taps / taps.sum()).float()
