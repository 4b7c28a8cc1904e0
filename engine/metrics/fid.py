"""FID: the Frechet distance between Gaussians fitted to Inception-v3 pool features.

The backbone is torchvision's Inception-v3 (store folder `inception-fid/`, torchvision's
ImageNet weights). Scores are comparable between our own runs, not to pytorch-fid's or the
TensorFlow FID's numbers: those use the 2015 TF graph's weights and slightly different pools.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from engine.metrics.backbones import IMAGENET_MEAN, IMAGENET_STD, frozen, inception_v3_trunk
from engine.metrics.weights import INCEPTION_FID, load_into, load_metric_weights

INPUT_SIZE = 299
FEATURES = 2048


class InceptionFeatures(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inception = inception_v3_trunk()

    @classmethod
    def from_store(cls, store_root: str | Path | None = None) -> InceptionFeatures:
        model = cls()
        state = {
            f"inception.{k}": v for k, v in load_metric_weights(INCEPTION_FID, store_root).items()
        }
        load_into(model, state, INCEPTION_FID)
        return frozen(model)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) RGB in [0, 1] -> (B, 2048) pool features (resized to 299 x 299)."""
        x = images.to(next(self.parameters()).dtype)
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        return self.inception((x - IMAGENET_MEAN.to(x)) / IMAGENET_STD.to(x))


def frechet_distance(
    mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor
) -> float:
    """|mu1 - mu2|^2 + tr(cov1 + cov2 - 2 (cov1 cov2)^(1/2)), in float64.

    tr((cov1 cov2)^(1/2)) is the sum of the square roots of the eigenvalues of the symmetric
    s1 cov2 s1 with s1 = cov1^(1/2); both come from `eigh`, so no scipy.linalg.sqrtm.
    """
    mu1, mu2, cov1, cov2 = (t.double() for t in (mu1, mu2, cov1, cov2))
    values, vectors = torch.linalg.eigh(cov1)
    root1 = vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T
    middle = root1 @ cov2 @ root1
    trace_root = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    return float((mu1 - mu2).pow(2).sum() + cov1.trace() + cov2.trace() - 2 * trace_root)


def fid_from_features(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """FID between two sets of features (N, D) and (M, D); N, M >= 2."""
    if min(len(features_a), len(features_b)) < 2:
        raise ValueError("FID needs at least two images on each side")
    a, b = features_a.double(), features_b.double()
    return frechet_distance(a.mean(0), torch.cov(a.T), b.mean(0), torch.cov(b.T))
