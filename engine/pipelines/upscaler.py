"""A user's own upscaler (any spandrel image model: Real-ESRGAN, Compact, SwinIR, HAT, DAT, ...).

input -> the model at its native scale, in overlapping tiles of the input (blended like every
tiled stage, `apply_tiled`; each tile padded as the model requires by spandrel's descriptor)
-> resampled (bicubic with antialias) to exactly the asked scale when that differs from the
model's, with a warning saying so. The model's colours are its own: no colour fix, no
degradation map (a plain upscaler estimates nothing). It takes the DreamClear pipeline's
keywords, as the starter's pipeline does, so callers need not care which restorer they hold.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from engine.cancel import CancelToken
from engine.imaging.tile_grid import TileBox
from engine.pipelines.inputs import check_image_and_upscale
from engine.pipelines.interruptible import interruptible
from engine.pipelines.native_scale import resized, upscale_tiled
from engine.pipelines.restore import OnPreview, RestoreOutput
from engine.pipelines.stage_plan import UPSCALER_PLAN, ProgressInfo
from engine.pipelines.strength import upscale_input
from engine.pipelines.tiled_apply import Partial

UPSCALER_MAX_TILE = 512
"""Output pixels per tile side at most (128 input px at x4): a few seconds per tile for a large
model on 2 CPU cores, so a job stops soon after it is asked to."""
UPSCALER_MIN_TILE = 256
UPSCALER_TILE_OVERLAP = 32
"""Output pixels of overlap (8 input px at x4): beyond the receptive edge effects of the
convolutional upscalers, and a window's worth for the transformer ones."""


class UpscalerRestorePipeline:
    """`UpscalerRestorePipeline(descriptor, name)(image, upscale=4)` -> `RestoreOutput`.

    `descriptor`: a spandrel `ImageModelDescriptor` (its `scale` is the native scale).
    """

    captioner = None

    def __init__(self, descriptor: Any, name: str) -> None:
        self.descriptor = descriptor.eval()
        self.name = name
        self.scale = int(descriptor.scale)

    @property
    def device(self) -> torch.device:
        return self.descriptor.device

    @torch.no_grad()
    def __call__(
        self,
        image: torch.Tensor,
        *,
        upscale: float = 4,
        remover_tile_size: int = UPSCALER_MAX_TILE,
        return_maps: bool = False,
        on_progress: Callable[[ProgressInfo], None] | None = None,
        on_warning: Callable[[str], None] | None = None,
        on_preview: OnPreview | None = None,
        cancel: CancelToken | None = None,
        **_other_options: Any,
    ) -> RestoreOutput:
        """Upscale `image` (1, 3, h, w) float in [0, 1] to round(upscale * h) x round(upscale * w).

        `remover_tile_size` caps the tiles in output pixels (the out-of-memory retry halves
        it). Diffusion and starter options (steps, caption, colour fix, ...) are accepted and
        ignored; `return_maps` gives no map.
        """
        # 0. Validate
        check_image_and_upscale(image, upscale)
        cancel = cancel or CancelToken()
        started = time.perf_counter()
        in_h, in_w = image.shape[-2:]
        out_size = (round(in_h * upscale), round(in_w * upscale))
        native_size = (in_h * self.scale, in_w * self.scale)

        def on_tile(tile: int, tiles: int) -> None:
            if on_progress is not None:
                on_progress(UPSCALER_PLAN.info("remove", 1, 1, tile, tiles))
            cancel.raise_if_cancelled()

        # 1. The model at its native scale, in tiles laid out in input pixels
        grid: list[TileBox] = []
        lq = image.to(self.device)

        def run(pixels: torch.Tensor) -> torch.Tensor:
            # spandrel pads to the model's size requirements, crops back and clamps to [0, 1];
            # it runs in inference mode, whose tensors callers could not blend in place.
            return self.descriptor(pixels.to(dtype=self.descriptor.dtype)).clone()

        def offer_preview(partial: Partial) -> None:
            if on_preview is not None:
                on_preview(
                    lambda: resized(partial(upscale_input(lq, native_size)), out_size), out_size
                )

        with interruptible(self.descriptor.model, cancel):
            native = upscale_tiled(
                run,
                lq,
                scale=self.scale,
                max_tile=min(remover_tile_size, UPSCALER_MAX_TILE),
                min_tile=UPSCALER_MIN_TILE,
                overlap=UPSCALER_TILE_OVERLAP,
                grid_factor=upscale,
                on_tile=on_tile,
                on_grid=grid.extend,
                on_partial=offer_preview if on_preview is not None else None,
            )

        # 2. To exactly the asked size
        if native_size != out_size and on_warning is not None:
            on_warning(
                f"{self.name} upscales x{self.scale}; its result was resampled (bicubic) "
                f"to the x{upscale:g} asked for"
            )
        restored = resized(native, out_size)
        timings = {"total": time.perf_counter() - started}
        return RestoreOutput(restored.clamp_(0, 1), None, grid, timings)
