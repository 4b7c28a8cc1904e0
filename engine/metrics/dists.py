"""DISTS (Ding et al. 2020): structure and texture similarity of VGG16 features.

Our implementation; the store folder `dists/` holds torchvision's VGG16 ImageNet weights
(`features.*`) and the authors' `alpha` and `beta` (each (1, 1475, 1, 1), in their weights.pt).
The VGG max pools are replaced by L2 pooling (Hanning window), as in the paper.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from engine.metrics.backbones import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    VGG16_CHANNELS,
    VGG16_POOLS,
    VGG16_TAPS,
    frozen,
    vgg16_trunk,
)
from engine.metrics.weights import DISTS, load_into, load_metric_weights

CHANNELS = (3, *VGG16_CHANNELS)
C1 = C2 = 1e-6


class DISTSMetric(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = vgg16_trunk()
        self.alpha = nn.Parameter(torch.full((1, sum(CHANNELS), 1, 1), 0.1))
        self.beta = nn.Parameter(torch.full((1, sum(CHANNELS), 1, 1), 0.1))
        # Hanning(5)[1:-1] = (0.5, 1, 0.5), outer product, normalised.
        taps = torch.tensor([0.5, 1.0, 0.5])
        window = taps[:, None] * taps[None, :]
        self.register_buffer("l2_window", window / window.sum(), persistent=False)

    @classmethod
    def from_store(cls, store_root: str | Path | None = None) -> DISTSMetric:
        model = cls()
        load_into(model, load_metric_weights(DISTS, store_root), DISTS)
        return frozen(model)

    def _l2_pool(self, x: torch.Tensor) -> torch.Tensor:
        window = self.l2_window.to(x).expand(x.shape[1], 1, 3, 3)
        return (F.conv2d(x * x, window, stride=2, padding=1, groups=x.shape[1]) + 1e-12).sqrt()

    def _stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = [x]
        h = (x - IMAGENET_MEAN.to(x)) / IMAGENET_STD.to(x)
        for index, layer in enumerate(self.features):
            h = self._l2_pool(h) if index in VGG16_POOLS else layer(h)
            if index in VGG16_TAPS:
                outputs.append(h)
        return outputs

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """a, b: (B,3,H,W) RGB in [0, 1] -> (B,) distances (0 for identical images)."""
        if a.shape != b.shape or a.ndim != 4 or a.shape[1] != 3:
            raise ValueError(
                f"expected two (B,3,H,W) images of one shape, got {a.shape}, {b.shape}"
            )
        dtype = self.alpha.dtype
        stages = self._stages(torch.cat([a, b]).to(dtype))
        total = self.alpha.sum() + self.beta.sum()
        alphas = torch.split(self.alpha / total, CHANNELS, dim=1)
        betas = torch.split(self.beta / total, CHANNELS, dim=1)
        structure = texture = torch.zeros(a.shape[0], 1, 1, 1, device=a.device, dtype=dtype)
        for features, alpha, beta in zip(stages, alphas, betas, strict=True):
            fa, fb = features.chunk(2)
            mean_a, mean_b = fa.mean((2, 3), keepdim=True), fb.mean((2, 3), keepdim=True)
            luminance = (2 * mean_a * mean_b + C1) / (mean_a**2 + mean_b**2 + C1)
            var_a = ((fa - mean_a) ** 2).mean((2, 3), keepdim=True)
            var_b = ((fb - mean_b) ** 2).mean((2, 3), keepdim=True)
            cov = (fa * fb).mean((2, 3), keepdim=True) - mean_a * mean_b
            contrast = (2 * cov + C2) / (var_a + var_b + C2)
            structure = structure + (alpha * luminance).sum(1, keepdim=True)
            texture = texture + (beta * contrast).sum(1, keepdim=True)
        return 1 - (structure + texture).flatten()
