"""Alpha channels, resized apart from the RGB the model restores."""

from __future__ import annotations

import numpy as np
from PIL import Image


def upscale_alpha(alpha: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an HxW float alpha in [0, 1] to `size` = (width, height), bicubic, clipped.

    Returns float32 (height, width) in [0, 1], ready to join the restored RGB.
    """
    if alpha.ndim != 2:
        raise ValueError(f"alpha must be HxW, got shape {alpha.shape}")
    width, height = size
    resized = Image.fromarray(np.ascontiguousarray(alpha, dtype=np.float32)).resize(
        (width, height), Image.Resampling.BICUBIC
    )
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)
