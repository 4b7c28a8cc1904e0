"""Colour correction of the restored image against the reference (the remover's output).

The diffusion model can drift in colour; both fixes take the colours from the reference:
- `wavelet`: split both images with a 5-level a-trous wavelet (B3-like [1, 2, 1] / 4
  kernel, dilation 1, 2, 4, 8, 16, replicate padding); keep the output's detail bands and
  the reference's residual low band. The detail bands telescope, so the result is
  output - low(output) + low(reference), and since the low band is linear, it is computed
  as output - low(output - reference): one low band instead of two.
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
WAVELET_HALO = 2**WAVELET_LEVELS
"""Pixels of context a tile needs so its centre is exact: the five blurs reach 1+2+...+16 = 31."""
ADAIN_EPS = 1e-5
DEFAULT_COLOR_FIX_TILE = 1024


def _atrous_blur(image: torch.Tensor, dilation: int) -> torch.Tensor:
    """The [1, 2, 1] / 4 kernel at `dilation`, once along each axis (it is separable), as
    shifted sums: a dilated depthwise convolution is several times slower on a CPU."""
    height, width = image.shape[-2:]
    padded = F.pad(image, (dilation,) * 4, mode="replicate")
    rows = padded[..., :height, :] + 2 * padded[..., dilation : dilation + height, :]
    rows += padded[..., 2 * dilation : 2 * dilation + height, :]
    both = rows[..., :width] + 2 * rows[..., dilation : dilation + width]
    both += rows[..., 2 * dilation : 2 * dilation + width]
    return both / 16


def wavelet_low_frequency(image: torch.Tensor, levels: int = WAVELET_LEVELS) -> torch.Tensor:
    """The residual low band after `levels` a-trous smoothing passes."""
    low = image.float()
    for level in range(levels):
        low = _atrous_blur(low, 2**level)
    return low


def wavelet_color_fix(output: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Output's high frequencies plus the reference's low frequencies."""
    output = output.float()
    return output - wavelet_low_frequency(output - reference.float())


def wavelet_color_fix_tiled(
    output: torch.Tensor, reference: torch.Tensor, tile_size: int = DEFAULT_COLOR_FIX_TILE
) -> torch.Tensor:
    """`wavelet_color_fix`, exactly, computed tile by tile so temporaries stay tile-sized.

    Each tile is processed with `WAVELET_HALO` pixels of real context around it (clipped at
    the image border, where replicate padding then acts as on the whole image), and only its
    centre is kept: the blurs never see a tile edge that is not an image edge.
    """
    height, width = output.shape[-2:]
    if height <= tile_size and width <= tile_size:
        return wavelet_color_fix(output, reference)
    result = torch.empty(output.shape, dtype=torch.float32, device=output.device)
    for top in range(0, height, tile_size):
        for left in range(0, width, tile_size):
            bottom, right = min(top + tile_size, height), min(left + tile_size, width)
            y0, x0 = max(top - WAVELET_HALO, 0), max(left - WAVELET_HALO, 0)
            y1, x1 = min(bottom + WAVELET_HALO, height), min(right + WAVELET_HALO, width)
            fixed = wavelet_color_fix(output[..., y0:y1, x0:x1], reference[..., y0:y1, x0:x1])
            result[..., top:bottom, left:right] = fixed[
                ..., top - y0 : bottom - y0, left - x0 : right - x0
            ]
    return result


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
        return wavelet_color_fix_tiled(output, reference)
    if name == "adain":
        return adain_color_fix(output, reference)
    if name == "none":
        return output.float()
    raise ValueError(f"unknown colour fix {name!r}; choose one of {', '.join(COLOR_FIXES)}")
