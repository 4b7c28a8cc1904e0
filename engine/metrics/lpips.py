"""LPIPS v0.1 with the VGG16 backbone (Zhang et al. 2018): our implementation, their weights.

The store folder `lpips-vgg/` holds torchvision's VGG16 ImageNet weights (`features.*`) and
LPIPS's linear heads (`lin{k}.model.1.weight`, as in the authors' `weights/v0.1/vgg.pth`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from engine.metrics.backbones import VGG16_CHANNELS, VGG16_TAPS, frozen, vgg16_trunk
from engine.metrics.weights import LPIPS_VGG, load_into, load_metric_weights

# LPIPS's input scaling, for images in [-1, 1].
_SHIFT = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
_SCALE = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)


class LPIPS(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = vgg16_trunk()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in VGG16_CHANNELS)

    @classmethod
    def from_store(cls, store_root: str | Path | None = None) -> LPIPS:
        state = load_metric_weights(LPIPS_VGG, store_root)
        state = {_official_key(k): v for k, v in state.items()}
        model = cls()
        load_into(model, state, LPIPS_VGG)
        return frozen(model)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """a, b: (B,3,H,W) RGB in [0, 1] -> (B,) distances (0 for identical images)."""
        if a.shape != b.shape or a.ndim != 4 or a.shape[1] != 3:
            raise ValueError(
                f"expected two (B,3,H,W) images of one shape, got {a.shape}, {b.shape}"
            )
        # 1. both images through the backbone in one batch
        x = torch.cat([a, b]).to(self.lins[0].weight.dtype) * 2 - 1
        x = (x - _SHIFT.to(x)) / _SCALE.to(x)
        distance = torch.zeros(a.shape[0], device=a.device, dtype=x.dtype)
        taps = iter(self.lins)
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in VGG16_TAPS:
                # 2. unit-normalise channels, weight the squared differences, average over space
                fa, fb = _unit(x).chunk(2)
                distance += next(taps)((fa - fb) ** 2).mean(dim=(1, 2, 3))
        return distance


def _unit(features: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return features / (features.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


def _official_key(key: str) -> str:
    """`lin3.model.1.weight` (the authors' files) -> `lins.3.weight`."""
    if key.startswith("lin") and key.endswith(".model.1.weight") and key[3].isdigit():
        return f"lins.{key[3]}.weight"
    return key
