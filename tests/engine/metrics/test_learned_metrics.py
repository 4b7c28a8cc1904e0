"""LPIPS, DISTS and FID load their weights from the store: exercised with random weights.

The real-weight tests run only where the weights are in the default model store.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from dreamclear_studio_resources import resource_path
from engine.errors import CheckpointError, ModelNotInstalledError
from engine.metrics.dists import DISTSMetric
from engine.metrics.fid import InceptionFeatures, fid_from_features, frechet_distance
from engine.metrics.lpips import LPIPS
from engine.metrics.weights import (
    DISTS,
    INCEPTION_FID,
    LPIPS_VGG,
    metric_weights_installed,
)


def _images(seed: int, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    a = torch.rand(2, 3, size, size, generator=generator)
    return a, (a + 0.2 * torch.rand(a.shape, generator=generator)).clamp(0, 1)


def _save_backbone_and_head(model: torch.nn.Module, folder, head: dict) -> None:
    """As the files come: torchvision's backbone as safetensors, the metric's head as a .pth."""
    folder.mkdir(parents=True)
    backbone = {
        k: v.contiguous() for k, v in model.state_dict().items() if k.startswith("features.")
    }
    save_file(backbone, str(folder / "vgg16.safetensors"))
    torch.save(head, folder / "head.pth")


def test_lpips_loads_from_the_store_and_scores(tmp_path):
    torch.manual_seed(0)
    reference = LPIPS().eval()
    for lin in reference.lins:
        lin.weight.data.abs_()  # LPIPS's heads are non-negative
    head = {f"lin{k}.model.1.weight": lin.weight.detach() for k, lin in enumerate(reference.lins)}
    _save_backbone_and_head(reference, tmp_path / LPIPS_VGG, head)
    assert metric_weights_installed(LPIPS_VGG, tmp_path)

    loaded = LPIPS.from_store(tmp_path)
    a, b = _images(0)
    with torch.no_grad():
        distance = loaded(a, b)
        assert torch.allclose(distance, reference(a, b))
        assert distance.shape == (2,) and (distance > 0).all()
        assert torch.allclose(loaded(a, a), torch.zeros(2), atol=1e-6)


def test_dists_loads_from_the_store_and_scores(tmp_path):
    torch.manual_seed(0)
    reference = DISTSMetric().eval()
    reference.alpha.data.uniform_(0.01, 1)
    reference.beta.data.uniform_(0.01, 1)
    _save_backbone_and_head(
        reference,
        tmp_path / DISTS,
        {"alpha": reference.alpha.detach(), "beta": reference.beta.detach()},
    )
    loaded = DISTSMetric.from_store(tmp_path)
    a, b = _images(1)
    with torch.no_grad():
        distance = loaded(a, b)
        assert torch.allclose(distance, reference(a, b))
        assert (distance > 0).all()
        assert torch.allclose(loaded(a, a), torch.zeros(2), atol=1e-5)


def test_missing_and_wrong_weights_say_so(tmp_path):
    with pytest.raises(ModelNotInstalledError, match="lpips-vgg"):
        LPIPS.from_store(tmp_path)
    folder = tmp_path / LPIPS_VGG
    folder.mkdir()
    save_file({"features.0.weight": torch.zeros(1)}, str(folder / "other.safetensors"))
    with pytest.raises(CheckpointError, match="lack"):
        LPIPS.from_store(tmp_path)
    (folder / "broken.pth").write_bytes(b"not a pickle")
    with pytest.raises(CheckpointError, match="cannot read"):
        LPIPS.from_store(tmp_path)


def test_frechet_distance_of_diagonal_gaussians_is_closed_form():
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    var1, var2 = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 4.0, 1.0])
    expected = 1 + 0 + 4 + float((var1 + var2 - 2 * (var1 * var2).sqrt()).sum())
    got = frechet_distance(mu1, torch.diag(var1), mu2, torch.diag(var2))
    assert got == pytest.approx(expected, abs=1e-9)


def test_frechet_distance_matches_the_eigenvalues_of_the_covariance_product():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((50, 4)), rng.standard_normal((40, 4)) @ rng.standard_normal((4, 4))
    c1, c2 = np.cov(x.T), np.cov(y.T)
    # tr((c1 c2)^(1/2)) = sum of square roots of the (real, non-negative) eigenvalues of c1 c2.
    trace_root = np.sqrt(np.linalg.eigvals(c1 @ c2).real.clip(0)).sum()
    diff = x.mean(0) - y.mean(0)
    expected = diff @ diff + np.trace(c1) + np.trace(c2) - 2 * trace_root
    got = fid_from_features(torch.from_numpy(x), torch.from_numpy(y))
    assert got == pytest.approx(expected, rel=1e-8)
    assert fid_from_features(torch.from_numpy(x), torch.from_numpy(x)) == pytest.approx(0, abs=1e-6)


def test_inception_features_load_from_the_store(tmp_path):
    torch.manual_seed(0)
    reference = InceptionFeatures().state_dict()
    folder = tmp_path / INCEPTION_FID
    folder.mkdir()
    state = {k.removeprefix("inception."): v for k, v in reference.items()}
    state["fc.weight"] = torch.zeros(1000, 2048)  # torchvision's files carry the classifier
    torch.save(state, folder / "inception_v3.pth")
    loaded = InceptionFeatures.from_store(tmp_path)
    assert all(torch.equal(v, reference[k]) for k, v in loaded.state_dict().items())
    with torch.no_grad():
        assert loaded(torch.rand(1, 3, 40, 40)).shape == (1, 2048)


@pytest.mark.real_weights
@pytest.mark.parametrize("metric", [LPIPS, DISTSMetric])
def test_real_weights_score_a_degraded_photo(metric):
    name = LPIPS_VGG if metric is LPIPS else DISTS
    if not metric_weights_installed(name):
        pytest.skip(f"{name} weights are not in the model store")
    from engine.imaging.io import load_image

    photo = load_image(resource_path("photos", "wood.jpg"))
    clean = torch.from_numpy(photo.rgb[:128, :128].transpose(2, 0, 1).copy())[None].float()
    blurred = torch.nn.functional.avg_pool2d(clean, 5, stride=1, padding=2, count_include_pad=False)
    model = metric.from_store()
    with torch.no_grad():
        assert model(clean, clean).item() == pytest.approx(0, abs=1e-5)
        assert 0.05 < model(clean, blurred).item() < 1
