"""Colour correction of the restored image against the reference (the remover's output).

The diffusion model can drift in colour; both fixes take the colours from the reference:
- `wavelet`: split both images with a 5-level a-trous wavelet (B3-like [1, 2, 1] / 4
  kernel, dilation 1, 2, 4, 8, 16, replicate padding); keep the output's detail bands and
  the reference's residual low band. The detail bands telescope, so the result is
  output - low(output) + low(reference).
- `adain`: match each channel's mean and standard deviation to the reference's.
- `none`: unchanged.
Images are (B, C, H, W); the maths runs in float32.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

ColorFix = Literal["wavelet", "adain", "none"]
COLOR_FIXES: tuple[str, ...] = ("wavelet", "adain", "none")

WAVELET_LEVELS = 5
ADAIN_EPS = 1e-5


def _atrous_blur(image: torch.Tensor, dilation: int) -> torch.Tensor:
    channels = image.shape[1]
    k1 = torch.tensor([0.25, 0.5, 0.25], dtype=image.dtype, device=image.device)
    kernel = torch.outer(k1, k1).expand(channels, 1, 3, 3)
    padded = F.pad(image, (dilation,) * 4, mode="replicate")
    return F.conv2d(padded, kernel, groups=channels, dilation=dilation)


def wavelet_low_frequency(image: torch.Tensor, levels: int = WAVELET_LEVELS) -> torch.Tensor:
    """The residual low band after `levels` a-trous smoothing passes."""
    low = image.float()
    for level in range(levels):
        low = _atrous_blur(low, 2**level)
    return low


def wavelet_color_fix(output: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Output's high frequencies plus the reference's low frequencies."""
    output = output.float()
    return output - wavelet_low_frequency(output) + wavelet_low_frequency(reference)


def adain_color_fix(output: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per-channel mean/std of `output` set to those of `reference`."""

    def mean_std(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = x.float().flatten(2)
        std = (flat.var(dim=2) + ADAIN_EPS).sqrt()
        return flat.mean(dim=2)[..., None, None], std[..., None, None]

    out_mean, out_std = mean_std(output)
    ref_mean, ref_std = mean_std(reference)
    return (output.float() - out_mean) / out_std * ref_std + ref_mean


def apply_color_fix(name: str, output: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Apply the named fix; `reference` must have the output's shape."""
    if output.shape != reference.shape:
        raise ValueError(f"shape mismatch: output {output.shape}, reference {reference.shape}")
    if name == "wavelet":
        return wavelet_color_fix(output, reference)
    if name == "adain":
        return adain_color_fix(output, reference)
    if name == "none":
        return output.float()
    raise ValueError(f"unknown colour fix {name!r}; choose one of {', '.join(COLOR_FIXES)}")
