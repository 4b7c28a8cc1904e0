"""The single operations a degradation is built from: blur, resize, noise, JPEG, quantise.

All take and return float images (C, H, W) in [0, 1] on any device. Random numbers come from a
CPU `torch.Generator` passed in and are moved to the image's device afterwards, so a seed gives
the same picture on CPU and GPU. JPEG is a real Pillow encode/decode round trip on 8-bit
pixels: exact but CPU-side (the image makes a trip to the host and back).
"""

from __future__ import annotations

import io
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from engine.degradation.kernels import gaussian_taps

ResizeMode = Literal["area", "bilinear", "bicubic", "nearest-exact"]
RESIZE_MODES: tuple[ResizeMode, ...] = ("area", "bilinear", "bicubic")

_LUMA = (0.299, 0.587, 0.114)


def _pad_mode(image: torch.Tensor, pad: int) -> str:
    # Reflect needs the pad to be smaller than the image; tiny intermediates fall back.
    return "reflect" if pad < min(image.shape[-2:]) else "replicate"


def filter2d(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Convolve each channel of `image` (C, H, W) with a square odd `kernel` (k, k)."""
    channels = image.shape[0]
    pad = kernel.shape[-1] // 2
    padded = F.pad(image[None], (pad, pad, pad, pad), mode=_pad_mode(image, pad))
    weight = kernel.to(image).flip(-1, -2).expand(channels, 1, *kernel.shape)
    return F.conv2d(padded, weight, groups=channels)[0]


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable isotropic gaussian blur (sigma in pixels; 0 returns the image)."""
    if sigma <= 0:
        return image
    taps = gaussian_taps(sigma).to(image)
    channels, pad = image.shape[0], taps.numel() // 2
    out = image[None]
    for weight, padding in (
        (taps.view(1, 1, 1, -1), (pad, pad, 0, 0)),
        (taps.view(1, 1, -1, 1), (0, 0, pad, pad)),
    ):
        out = F.pad(out, padding, mode=_pad_mode(image, pad))
        out = F.conv2d(out, weight.expand(channels, 1, *weight.shape[2:]), groups=channels)
    return out[0]


def resize(image: torch.Tensor, size: tuple[int, int], mode: ResizeMode) -> torch.Tensor:
    """Resize (C, H, W) to `size` = (height, width) like Real-ESRGAN (no antialias, no clamp)."""
    if tuple(image.shape[-2:]) == size:
        return image
    align = {} if mode in ("area", "nearest-exact") else {"align_corners": False}
    return F.interpolate(image[None], size=size, mode=mode, **align)[0]


def gaussian_noise(
    image: torch.Tensor, sigma: float, *, gray: bool, generator: torch.Generator
) -> torch.Tensor:
    """Additive gaussian noise, `sigma` in 8-bit units; gray noise is the same in all channels."""
    channels, height, width = image.shape
    noise = torch.randn((1 if gray else channels, height, width), generator=generator)
    return (noise * (sigma / 255.0)).to(image).expand_as(image)


def poisson_noise(
    image: torch.Tensor, scale: float, *, gray: bool, generator: torch.Generator
) -> torch.Tensor:
    """Shot noise scaled by `scale`; photon count = 2**ceil(log2(number of 8-bit levels))."""
    source = image.detach().cpu()
    if gray:
        weights = torch.tensor(_LUMA, dtype=source.dtype).view(3, 1, 1)
        source = (source * weights).sum(0, keepdim=True)
    source = torch.clamp((source * 255.0).round(), 0, 255) / 255.0
    levels = 2.0 ** np.ceil(np.log2(max(len(torch.unique(source)), 1)))
    counts = torch.poisson(source * levels, generator=generator) / levels
    return ((counts - source) * scale).to(image).expand_as(image)


def jpeg(image: torch.Tensor, quality: int) -> torch.Tensor:
    """Encode as JPEG at `quality` (1-100, 4:2:0 chroma) with Pillow and decode again."""
    pixels = to_uint8(image).permute(1, 2, 0).cpu().numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=int(quality), subsampling=2)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        out = np.asarray(decoded.convert("RGB"))
    return torch.from_numpy(out.copy()).permute(2, 0, 1).to(image) / 255.0


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    return torch.clamp((image * 255.0).round(), 0, 255).to(torch.uint8)


def quantise(image: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and round to the 8-bit grid, as a saved photo would be."""
    return to_uint8(image).to(image.dtype) / 255.0
