"""The starter's colour fix, applied where its gentle restorer worked and not on heavy damage.

The wavelet fix keeps the restored detail and takes the low frequencies from the plain upscale
of the input. That suits the gentle restorer, a small L1-trained net that drifts in colour on
photos unlike its training crops. Where the gate hands a tile to the all-round restorer, the
input's low frequencies are part of the damage (noise blotches, JPEG colour blocks, colour
shifts), and the all-round restorer has learned to remove them: putting them back cost the
v2.5 starter 0.13 dB a crop on heavy damage on the training photos (256 px, in-sample) and
0.94 dB on one held-out photo (wood, 512 px). So the fix is blended out by the heavy expert's
share of each pixel, as the restorers themselves are blended (docs/decisions.md, "Starter
v2.6").
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from engine.pipelines.color_fix import apply_color_fix

HeavyShare = Callable[[], torch.Tensor]
"""() -> (1, 1, H, W) in [0, 1]: how much of each output pixel the heavy expert made."""


def expert_color_fix(
    color_fix: str,
    restored: torch.Tensor,
    reference: torch.Tensor,
    heavy_share: HeavyShare | None,
) -> torch.Tensor:
    """`apply_color_fix` on the gentle expert's share of `restored` (1, 3, H, W); where
    `heavy_share` is 1 the result keeps `restored`'s own colours. Without a share (a starter
    with one restorer) the fix applies everywhere. The share is computed only if needed."""
    fixed = apply_color_fix(color_fix, restored, reference)
    if color_fix == "none" or heavy_share is None:
        return fixed
    share = heavy_share().clamp(0, 1)
    return fixed if float(share.max()) == 0.0 else torch.lerp(fixed, restored.float(), share)
