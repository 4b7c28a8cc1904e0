"""The input checks every restore pipeline starts with (the starter's, a user's upscaler's)."""

from __future__ import annotations

import torch

from engine.errors import BadInputError, BadSettingError


def check_image_and_upscale(image: object, upscale: float) -> None:
    """One RGB image as a (1, 3, H, W) tensor and a positive upscale, else a clear error."""
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or tuple(image.shape[:2]) != (1, 3):
        raise BadInputError(
            "expected one RGB image as a (1, 3, H, W) tensor", "convert the image to RGB"
        )
    if not upscale > 0:
        raise BadSettingError(f"upscale must be positive, got {upscale}", "use e.g. 4")
