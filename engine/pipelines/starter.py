"""The bundled starter restorer: fast on a CPU, with a per-token degradation estimate.

bicubic upscale to exactly factor x input (U) -> the starter restorer in tiles: v2 (Compact)
runs on the input itself at its native scale (x4) and its result is resampled to the asked
size when that differs; v1 (RRDBNet at scale 1) runs on U, as the degradation remover does ->
the degradation estimator on U, one value per 16 px token for each of blur, noise, JPEG and
downscaling, in tiles -> colour fix against U (wavelet by default, as DreamClear's).

Tiles are small (at most `STARTER_MAX_TILE` px, well under a second each on a 2-core CPU)
and sized by `fit_tiles` so that their overlap costs little (at most ~1.3x one pass); they
are blended as every tiled stage. An interrupt is checked between tiles and, on a busy CPU
where one tile takes seconds, before every layer of the networks (`interruptible`). It takes the DreamClear pipeline's keywords so callers
need not care which restorer they hold; the diffusion-only ones are accepted and ignored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.cancel import CancelToken
from engine.errors import BadSettingError
from engine.imaging.tile_fit import fit_tiles
from engine.imaging.tile_grid import TileBox
from engine.models.expert_gate import GatedRestorer
from engine.models.starter import SHUFFLE_FACTOR
from engine.pipelines.color_fix import COLOR_FIXES
from engine.pipelines.expert_color_fix import HeavyShare, expert_color_fix
from engine.pipelines.inputs import check_image_and_upscale
from engine.pipelines.interruptible import interruptible
from engine.pipelines.native_scale import resized, upscale_tiled
from engine.pipelines.restore import OnPreview, RestoreOutput
from engine.pipelines.stage_plan import ProgressInfo, starter_plan
from engine.pipelines.strength import upscale_input
from engine.pipelines.tiled_apply import OnGrid, OnTile, Partial, apply_tiled
from engine.pipelines.tiled_remover import remove_degradation_tiled

TOKEN_PX = 16
"""The estimator predicts one value per 16x16 output pixels."""
ESTIMATOR_TILE_TOKENS = 32
"""Estimator tiles of at most 32 tokens (512 px), overlapping by 4 tokens."""
ESTIMATOR_OVERLAP_TOKENS = 4
STARTER_MAX_TILE = 384
"""Restorer tiles of at most 384 px (~0.5 s each on 2 CPU cores), overlapping by 32 px."""
STARTER_MIN_TILE = 192
STARTER_TILE_OVERLAP = 32
"""Or an eighth of the tile when the tiles are capped below 256 px."""
NATIVE_MAX_TILE = 1024
"""v2 restorer tiles of at most 1024 output px (256 input px at x4, ~0.5 s on 2 CPU cores;
an interrupt is still checked before every layer)."""
NATIVE_MIN_TILE = 256
NATIVE_TILE_OVERLAP = 64
"""Output px (16 input px at x4): past the edge effects of a 16-convolution network."""
OnPreviewFill = Callable[[Partial, Callable[[], torch.Tensor]], None]
"""Offers a preview of a partial result, filled (lazily) with the plain upscale."""
MIN_MAP_SPEARMAN = 0.5
"""A channel whose measured Spearman (estimator vs the strengths applied, `bench estimator`,
tokens with detail) is below this is not shown: its map would be mostly noise (issue 15)."""


@dataclass
class StrengthMaps:
    """The starter's degradation estimate: strengths (C, th, tw) in [0, 1], one per token."""

    strengths: torch.Tensor
    channels: tuple[str, ...]
    token_size_px: int = TOKEN_PX
    spearman: dict[str, float] | None = None
    """The estimator's measured Spearman per channel; None: not measured, all shown."""

    @property
    def shown(self) -> tuple[str, ...]:
        """The channels reliable enough to show (all when the estimator was not measured)."""
        if self.spearman is None:
            return self.channels
        return tuple(c for c in self.channels if self.spearman.get(c, -1.0) >= MIN_MAP_SPEARMAN)

    @property
    def legend(self) -> tuple[tuple[str, str], ...]:
        """The preview shows the first three shown channels as red, green and blue."""
        return tuple(zip(("red", "green", "blue"), self.shown[:3], strict=False))

    picture_title = "Starter degradation estimate per 16 px token"

    @property
    def picture_legend(self) -> list[tuple[str | None, str]]:
        """Every channel of the map, its colour in the picture and its value scale."""
        drawn = dict((channel, colour) for colour, channel in self.legend)
        entries: list[tuple[str | None, str]] = []
        for channel in self.channels:
            if channel in drawn:
                entries.append(
                    (drawn[channel], f"{channel} strength, 0 (none, dark) to 1 (strongest, full)")
                )
            elif channel in self.shown:
                entries.append((None, f"{channel} strength, 0 to 1: not drawn, see .map.npz"))
            else:
                entries.append((None, f"{channel}: not shown, {self.unreliable_reason(channel)}"))
        return entries

    def unreliable_reason(self, channel: str) -> str:
        value = (self.spearman or {}).get(channel)
        measured = "not measured" if value is None else f"Spearman {value:.2f}"
        return f"the estimator reads it too poorly ({measured} < {MIN_MAP_SPEARMAN})"

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "strengths": self.strengths.float().cpu().numpy(),
            "channels": np.asarray(self.channels),
            "token_size_px": np.asarray(self.token_size_px),
        }
        if self.spearman is not None:
            # The desktop hides what is unreliable from these, and says why.
            arrays["spearman"] = np.asarray(
                [self.spearman.get(c, np.nan) for c in self.channels], dtype=np.float32
            )
            arrays["min_spearman"] = np.asarray(MIN_MAP_SPEARMAN, dtype=np.float32)
        return arrays

    def preview_rgb(self) -> np.ndarray:
        """(th, tw, 3) in [0, 1]: the first three shown channels as red, green and blue
        (blur, noise and JPEG for an estimator not measured); black where fewer."""
        rows = [self.channels.index(c) for c in self.shown[:3]]
        planes = self.strengths[rows].float().clamp(0, 1)
        if len(rows) < 3:
            planes = torch.cat([planes, planes.new_zeros(3 - len(rows), *planes.shape[1:])])
        return planes.permute(1, 2, 0).cpu().numpy()


class StarterRestorePipeline:
    """`StarterRestorePipeline(restorer, estimator)(image)` -> `RestoreOutput`."""

    captioner = None  # the starter needs no caption

    def __init__(
        self,
        restorer: nn.Module,
        estimator: nn.Module | None,
        channels: tuple[str, ...],
        channel_spearman: dict[str, float] | None = None,
        restorer_scale: int = 1,
    ):
        """`restorer_scale`: the restorer's native scale (spandrel's descriptor says it); 1
        means it takes the bicubic upscale (v1), more that it upscales by itself (v2)."""
        self.restorer = restorer.eval()
        self.restorer_scale = restorer_scale
        self.estimator = estimator.eval() if estimator is not None else None
        self.channels = channels
        self.channel_spearman = channel_spearman

    @property
    def device(self) -> torch.device:
        return next(self.restorer.parameters()).device

    @torch.no_grad()
    def __call__(
        self,
        image: torch.Tensor,
        *,
        upscale: float = 4,
        remover_tile_size: int = STARTER_MAX_TILE,
        color_fix: str = "wavelet",
        return_maps: bool = False,
        on_progress: Callable[[ProgressInfo], None] | None = None,
        on_warning: Callable[[str], None] | None = None,
        on_preview: OnPreview | None = None,
        cancel: CancelToken | None = None,
        **_diffusion_options: Any,
    ) -> RestoreOutput:
        """Restore `image` (1, 3, h, w) float in [0, 1] to round(upscale * h) x round(upscale * w).

        `remover_tile_size` caps the restorer's tiles (the out-of-memory retry halves it).
        `on_preview(render, output_size)` is offered the result so far after every restorer
        tile: `render()` gives it (1, 3, H, W), finished tiles restored and the rest the
        plain upscale; call it only when a preview is wanted. Diffusion options (steps,
        guidance, sampler, seed, caption, latent tiles) are accepted so one call serves both
        restorers, and ignored here.
        """
        # 0. Validate
        check_image_and_upscale(image, upscale)
        if color_fix not in COLOR_FIXES:
            raise BadSettingError(f"unknown colour fix {color_fix!r}", f"use one of {COLOR_FIXES}")
        cancel = cancel or CancelToken()
        started = time.perf_counter()

        estimating = return_maps and self.estimator is not None
        plan = starter_plan(estimate=estimating)

        def report(stage: str) -> Callable[[int, int], None]:
            def on_tile(tile: int, tiles: int) -> None:
                if on_progress is not None:
                    on_progress(plan.info(stage, 1, 1, tile, tiles))
                cancel.raise_if_cancelled()

            return on_tile

        # 1. Upscale to exactly the output size (bicubic, as the strength blend does)
        in_h, in_w = image.shape[-2:]
        out_size = (round(in_h * upscale), round(in_w * upscale))
        lq = upscale_input(image.to(self.device), out_size)

        # 2. Restore in tiles, keeping the pixel tiles it ran on for the client's tile overlay
        tiles: list[TileBox] = []

        def offer_preview(partial: Partial, fill: Callable[[], torch.Tensor]) -> None:
            # `fill` (the plain upscale where no tile is yet) is made only if a preview is.
            on_preview(lambda: resized(partial(fill()), out_size), out_size)

        previews = offer_preview if on_preview is not None else None

        with interruptible(self.restorer, cancel):
            if self.restorer_scale == 1:
                restored = self._restore_upscaled(
                    lq, remover_tile_size, report("remove"), tiles.extend, previews
                )
            else:
                restored = self._restore_native(
                    image.to(self.device),
                    upscale,
                    remover_tile_size,
                    report("remove"),
                    tiles.extend,
                    previews,
                )
                restored = resized(restored, out_size)

        # 3. Estimate the degradations per token
        maps = None
        if estimating:
            with interruptible(self.estimator, cancel):
                maps = StrengthMaps(
                    self.estimate(lq, report("estimate")),
                    self.channels,
                    spearman=self.channel_spearman,
                )

        # 4. Colours from the input: a small L1-trained net drifts in colour on photos unlike
        # its training crops; the wavelet fix keeps its detail and the input's low frequencies.
        # Not where the gate took the all-round restorer: there they are the damage.
        share = self._heavy_share(image, remover_tile_size, out_size)
        restored = expert_color_fix(color_fix, restored, lq, share)
        report("colour")(1, 1)
        timings = {"total": time.perf_counter() - started}
        return RestoreOutput(restored.clamp_(0, 1), maps, tiles, timings)

    def _restore_upscaled(
        self,
        lq: torch.Tensor,
        remover_tile_size: int,
        on_tile: OnTile,
        on_grid: OnGrid,
        previews: OnPreviewFill | None,
    ) -> torch.Tensor:
        """v1: the restorer on the bicubic upscale `lq`, in tiles of the output."""
        max_tile = min(remover_tile_size, STARTER_MAX_TILE)
        overlap = min(STARTER_TILE_OVERLAP, max_tile // 8)
        tile = fit_tiles(
            *lq.shape[-2:],
            max_tile=max_tile,
            min_tile=min(max_tile, STARTER_MIN_TILE),
            overlap=overlap,
            multiple=SHUFFLE_FACTOR,
        )
        return remove_degradation_tiled(
            self.restorer,
            lq,
            tile,
            tile_overlap=overlap,
            size_multiple=SHUFFLE_FACTOR,
            on_tile=on_tile,
            on_grid=on_grid,
            on_partial=(lambda partial: previews(partial, lambda: lq)) if previews else None,
        )

    def _native_tiles(self, remover_tile_size: int) -> dict[str, int]:
        """The v2 restorer's tiling: the same for its pass and for the heavy share's."""
        return {
            "scale": self.restorer_scale,
            "max_tile": min(remover_tile_size, NATIVE_MAX_TILE),
            "min_tile": NATIVE_MIN_TILE,
            "overlap": NATIVE_TILE_OVERLAP,
        }

    def _heavy_share(
        self,
        image: torch.Tensor,
        remover_tile_size: int,
        out_size: tuple[int, int],
    ) -> HeavyShare | None:
        """For two experts behind a gate (v2.1 on): () -> the heavy expert's share of each
        output pixel, from the gate tile by tile, blended as the restored tiles were."""
        gated = self.restorer
        if self.restorer_scale == 1 or not isinstance(gated, GatedRestorer):
            return None

        def share() -> torch.Tensor:
            weights = upscale_tiled(
                gated.heavy_weight,
                image.to(self.device),
                out_channels=1,
                **self._native_tiles(remover_tile_size),
            )
            return resized(weights, out_size)

        return share

    def _restore_native(
        self,
        image: torch.Tensor,
        upscale: float,
        remover_tile_size: int,
        on_tile: OnTile,
        on_grid: OnGrid,
        previews: OnPreviewFill | None,
    ) -> torch.Tensor:
        """v2: the restorer on the input itself, at its native scale, in tiles of the input."""
        scale = self.restorer_scale
        native_size = (image.shape[-2] * scale, image.shape[-1] * scale)
        return upscale_tiled(
            # Clamped as spandrel clamps the upscalers it runs.
            lambda pixels: self.restorer(pixels).clamp_(0, 1),
            image,
            grid_factor=upscale,
            **self._native_tiles(remover_tile_size),
            on_tile=on_tile,
            on_grid=on_grid,
            on_partial=(
                (lambda partial: previews(partial, lambda: upscale_input(image, native_size)))
                if previews
                else None
            ),
        )

    def estimate(
        self, lq: torch.Tensor, on_tile: Callable[[int, int], None] | None = None
    ) -> torch.Tensor:
        """(1, 3, H, W) upscaled LQ -> (C, ceil(H/16), ceil(W/16)) strengths in [0, 1].

        The image is reflect-padded to whole tokens and run in tiles of at most 32 tokens.
        """
        height, width = lq.shape[-2:]
        pad_h, pad_w = -height % TOKEN_PX, -width % TOKEN_PX
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        padded = F.pad(lq, (0, pad_w, 0, pad_h), mode=mode) if pad_h or pad_w else lq
        tokens_h, tokens_w = padded.shape[-2] // TOKEN_PX, padded.shape[-1] // TOKEN_PX
        tile = fit_tiles(
            tokens_h,
            tokens_w,
            max_tile=ESTIMATOR_TILE_TOKENS,
            min_tile=ESTIMATOR_TILE_TOKENS // 2,
            overlap=ESTIMATOR_OVERLAP_TOKENS,
        )
        strengths = apply_tiled(
            self.estimator,
            padded,
            tile=tile,
            overlap=ESTIMATOR_OVERLAP_TOKENS,
            in_unit=TOKEN_PX,
            out_unit=1,
            out_channels=len(self.channels),
            on_tile=on_tile,
        )
        return strengths[0].clamp_(0, 1)
