"""Strength: how much of a restoration to keep, blended with the plain upscale of its input.

output = U + strength * (restored - U), where U is the input upscaled to the output size by
`upscale_input` (bicubic with antialias, the starter pipeline's own first step). Strength 1
is the restoration unchanged, 0 the bicubic upscale; in between some of the original's fine
texture (grain, skin) comes back, which a restorer trained for heavy damage smooths away on a
clean photo. It runs after either pipeline (engine/restore_files.py), so both get it alike.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from engine.errors import BadSettingError


def upscale_input(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(1, 3, h, w) -> a new (1, 3, *size) float tensor in [0, 1]: bicubic with antialias."""
    upscaled = F.interpolate(
        image.float(), size=size, mode="bicubic", align_corners=False, antialias=True
    )
    return upscaled.clamp_(0, 1)


def check_strength(value: object) -> None:
    """BadSettingError unless `value` is a finite number from 0 to 1 (a bool is not one)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= 1
    ):
        raise BadSettingError(
            f"option strength={value!r} is not a number from 0 to 1",
            hint="1 keeps the whole restoration, 0 gives the plain upscale; e.g. 0.7",
        )


def apply_strength(restored: torch.Tensor, image: torch.Tensor, strength: float) -> torch.Tensor:
    """Blend `restored` (1, 3, H, W) float32 with `image` (1, 3, h, w) upscaled to H x W.

    In place: `restored` becomes the blend and is returned, so a 16 MP result needs one more
    image-sized tensor (the upscale) and nothing else. Strength 1 returns `restored` untouched.
    """
    check_strength(strength)
    if strength == 1:
        return restored
    upscaled = upscale_input(image.to(restored.device), tuple(restored.shape[-2:]))
    # lerp towards the upscale by 1 - strength: exactly U at strength 0, one fused pass.
    return restored.lerp_(upscaled, 1.0 - strength)
