"""torchvision backbones of the learned metrics, built without weights (they come from the store)."""

from __future__ import annotations

import torch
from torch import nn

VGG16_TAPS = (3, 8, 15, 22, 29)
"""Indices in `vgg16().features` of relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3."""
VGG16_POOLS = (4, 9, 16, 23)
VGG16_CHANNELS = (64, 128, 256, 512, 512)


def vgg16_trunk() -> nn.Sequential:
    """`vgg16().features` up to relu5_3 (keys `features.N.*` match torchvision's files).

    Built from torchvision's layer list alone: the classifier (100 M parameters) is never made.
    """
    from torchvision.models.vgg import cfgs, make_layers

    trunk = make_layers(cfgs["D"])[: VGG16_TAPS[-1] + 1]
    for layer in trunk:
        if isinstance(layer, nn.ReLU):
            layer.inplace = False
    return trunk


def inception_v3_trunk() -> nn.Module:
    """torchvision's Inception-v3 up to the 2048-d average pool (no classifier, no aux head)."""
    from torchvision.models import inception_v3

    model = inception_v3(weights=None, aux_logits=False, init_weights=False)
    model.fc = nn.Identity()
    return model


def frozen(module: nn.Module) -> nn.Module:
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
