"""DreamClear real-world image restoration pipeline.

Defaults follow the published inference: bicubic upscale by the factor, short side raised to
>= 1024, sides rounded to multiples of 64 -> degradation remover -> caption -> T5 (120
tokens) -> VAE encode of the LQ image and of the reference (the remover's output) -> start
from the reference latent noised to t = 999 -> 50 respaced iDDPM steps with classifier-free
guidance 4.5 (learned null caption) over overlapping latent tiles (128, overlap 32, gaussian
blending at every step) -> VAE decode -> wavelet colour fix against the reference -> bicubic
resize to exactly factor x input. The VAE and the remover run on tiles too, so memory stays
nearly flat as images grow.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image
from torch import nn

from engine.cancel import CancelToken
from engine.devices import execution_device
from engine.errors import BadInputError, BadSettingError, OutOfMemory
from engine.imaging.tile_grid import TileBox, gaussian_weights, tile_grid
from engine.pipelines.color_fix import COLOR_FIXES, apply_color_fix
from engine.pipelines.components import RestoreComponents
from engine.pipelines.offload import module_tensor, pending_weight_bytes
from engine.pipelines.samplers import SAMPLER_NAMES, Sampler, make_sampler
from engine.pipelines.stage_plan import ProgressInfo, dreamclear_plan
from engine.pipelines.tile_budget import (
    auto_latent_tile,
    available_memory_bytes,
)
from engine.pipelines.tiled_apply import Partial
from engine.pipelines.tiled_remover import DEFAULT_REMOVER_TILE, remove_degradation_tiled
from engine.pipelines.tiled_vae import (
    DEFAULT_VAE_TILE,
    VAE_DOWNSAMPLE,
    decode_tiled,
    encode_tiled,
)

Stage = Literal["remove", "caption", "encode", "denoise", "decode", "colour"]
GUIDANCE_CHANNELS = {"published": 3, "all": 4}
"""How many epsilon channels classifier-free guidance acts on. The published sampler
(inherited from DiT) guides only the first 3 of the 4; "all" guides every epsilon channel."""
MIN_LATENT_TILE = 32
"""Out-of-memory retries never shrink the latent tile below this (or the starting tile)."""


@dataclass
class DegradationMaps:
    """What the MoAM blocks saw, per token, averaged over the sampling steps.

    router: (num_blocks, th, tw, 3) router weights over the 3 experts (sum 1; show as RGB).
    magnitude: (num_blocks, th, tw) magnitude of the degradation features.
    token_size_px: side of one token in pixels of the working image (VAE 8 x patch size).
    """

    router: torch.Tensor
    magnitude: torch.Tensor
    token_size_px: int

    @property
    def mean_router(self) -> torch.Tensor:
        """(th, tw, 3) router weights averaged over blocks."""
        return self.router.mean(dim=0)

    @property
    def mean_magnitude(self) -> torch.Tensor:
        """(th, tw) degradation magnitude averaged over blocks."""
        return self.magnitude.mean(dim=0)

    legend = (
        ("red", "expert 1 router weight"),
        ("green", "expert 2 router weight"),
        ("blue", "expert 3 router weight"),
    )
    """What the preview's colours mean."""
    picture_title = "DreamClear MoAM routing per 16 px token (averaged over blocks and steps)"

    @property
    def picture_legend(self) -> list[tuple[str | None, str]]:
        """Every channel of the map, its colour in the picture and its value scale."""
        rows: list[tuple[str | None, str]] = [
            (colour, f"{meaning}, 0 (dark) to 1 (full); the three sum to 1")
            for colour, meaning in self.legend
        ]
        rows.append((None, "magnitude of the degradation features: not drawn, see .map.npz"))
        return rows

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Everything, per block, as float32 arrays (saved as `.map.npz`)."""
        return {
            "router": self.router.float().cpu().numpy(),
            "magnitude": self.magnitude.float().cpu().numpy(),
            "token_size_px": np.asarray(self.token_size_px),
        }

    def preview_rgb(self) -> np.ndarray:
        """(th, tw, 3) in [0, 1]: block-averaged router weights, one colour per expert."""
        return self.mean_router.float().clamp(0, 1).cpu().numpy()


OnPreview = Callable[[Callable[[], torch.Tensor], tuple[int, int]], None]
"""`on_preview(render, output_size)`: a preview may be taken now; `render()` gives the result
so far, (1, 3, h, w) in [0, 1] at about the output's aspect, and costs time: call it only
when a preview is wanted. `output_size` is the final (height, width)."""


@dataclass
class RestoreOutput:
    """image: (1, 3, H, W) float32 in [0, 1], H x W = upscale x the input size.
    degradation_maps: with `return_maps=True`, else None.
    tile_grid: the tiles the restorer ran on, in its grid's units: DreamClear's latent tiles
        of the last denoising step (latent cells; x 8 for pixels), the starter's remover tiles
        (output pixels). One box covering the image when it fits one tile.
    timings: seconds per stage and "total".
    caption: the caption used.
    """

    image: torch.Tensor
    degradation_maps: DegradationMaps | None
    tile_grid: list[TileBox]
    timings: dict[str, float] = field(default_factory=dict)
    caption: str = ""


def working_size(height: int, width: int, upscale: float, min_short_side: int, multiple: int):
    """The published working size: scale by `upscale`, raise the short side to at least
    `min_short_side`, round each side to the nearest multiple of `multiple` (at least one)."""
    h, w = height * upscale, width * upscale
    short = min(h, w)
    if short < min_short_side:
        h, w = h * min_short_side / short, w * min_short_side / short
    return (
        max(multiple, int(np.round(h / multiple)) * multiple),
        max(multiple, int(np.round(w / multiple)) * multiple),
    )


def _resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(image.shape[-2:]) == size:
        return image
    return F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=True)


def _gaussian(height: int, width: int, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(gaussian_weights(height, width)).float().to(device)


class _MapAccumulator:
    """Stitches per-tile maps with the tile blending weights and sums them over steps."""

    def __init__(self, grid: tuple[int, int], device: torch.device) -> None:
        self.grid = grid
        self.device = device
        self.router: torch.Tensor | None = None
        self.magnitude: torch.Tensor | None = None
        self.steps = 0

    def begin_step(self) -> None:
        self._router: torch.Tensor | None = None
        self._magnitude: torch.Tensor | None = None
        self._total = torch.zeros(self.grid, device=self.device)

    def add_tile(self, box: TileBox, router: torch.Tensor, magnitude: torch.Tensor) -> None:
        """router (L, n, 3) and magnitude (L, n) of one tile, n = box tokens row-major."""
        blocks = router.shape[0]
        if self._router is None:
            self._router = torch.zeros((blocks, *self.grid, 3), device=self.device)
            self._magnitude = torch.zeros((blocks, *self.grid), device=self.device)
        rows, cols = box.slices
        size = (box.height, box.width)
        weight = _gaussian(*size, self.device)
        self._router[:, rows, cols] += (
            router.float().unflatten(1, size).to(self.device) * weight[..., None]
        )
        self._magnitude[:, rows, cols] += (
            magnitude.float().unflatten(1, size).to(self.device) * weight
        )
        self._total[rows, cols] += weight

    def end_step(self) -> None:
        router = self._router / self._total[..., None]
        magnitude = self._magnitude / self._total
        self.router = router if self.router is None else self.router + router
        self.magnitude = magnitude if self.magnitude is None else self.magnitude + magnitude
        self.steps += 1

    def result(self, token_size_px: int) -> DegradationMaps | None:
        if self.router is None:
            return None
        return DegradationMaps(
            router=(self.router / self.steps).cpu(),
            magnitude=(self.magnitude / self.steps).cpu(),
            token_size_px=token_size_px,
        )


def _to_pil(image: torch.Tensor) -> Image.Image:
    array = (image[0].float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, mode="RGB")


class DreamClearRestorePipeline:
    """Restore one image with DreamClear. Cancelling the `cancel` token passed to a call (from a
    callback or another thread) stops it within one tile; the call then raises `JobInterrupted`."""

    uses_captions = True
    """Restores read a caption (the starter's do not); the CLI says when none can be made."""

    def __init__(
        self,
        transformer: nn.Module,
        vae: nn.Module,
        text_encoder: Any,
        remover: nn.Module | None = None,
        captioner: Any | None = None,
    ) -> None:
        self.transformer = transformer
        self.vae = vae
        self.text_encoder = text_encoder
        self.remover = remover
        self.captioner = captioner

    @classmethod
    def from_components(cls, components: RestoreComponents) -> DreamClearRestorePipeline:
        return cls(
            components.transformer,
            components.vae,
            components.text_encoder,
            remover=components.remover,
            captioner=components.captioner,
        )

    @property
    def device(self) -> torch.device:
        """Where the transformer computes (its weights may be offloaded, see `offload`)."""
        return execution_device(self.transformer)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.transformer.parameters()).dtype

    @property
    def patch_size(self) -> int:
        return int(self.transformer.config.patch_size)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def check_inputs(
        self,
        image: torch.Tensor,
        *,
        upscale: float,
        min_short_side: int,
        size_multiple: int,
        num_inference_steps: int,
        guidance_scale: float,
        guidance_channels: str,
        sampler: str,
        prompt: str | None,
        caption: str,
        color_fix: str,
        tile_size: int | str,
        tile_overlap: int,
        vae_tile_size: int,
        remover_tile_size: int,
        min_tile_size: int,
    ) -> None:
        """Raise BadInputError / BadSettingError with a fix hint for anything that cannot work."""
        if (
            not isinstance(image, torch.Tensor)
            or image.ndim != 4
            or tuple(image.shape[:2]) != (1, 3)
        ):
            shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise BadInputError(
                f"expected one RGB image as a (1, 3, H, W) tensor, got {shape}",
                "convert the image to RGB and add a batch dimension",
            )
        if not image.is_floating_point():
            raise BadInputError(
                f"expected a float image in [0, 1], got {image.dtype}", "divide 8-bit images by 255"
            )
        if image.shape[-1] < 1 or image.shape[-2] < 1:
            raise BadInputError("the image is empty", "check the input file")
        if not bool(torch.isfinite(image).all()) or image.min() < 0 or image.max() > 1:
            raise BadInputError("image values must be finite and in [0, 1]", "clamp the image")
        if not upscale > 0:
            raise BadSettingError(f"upscale must be positive, got {upscale}", "use e.g. 4")
        if min_short_side < 0:
            raise BadSettingError("min_short_side must be >= 0", "use 1024 (published)")
        multiple = VAE_DOWNSAMPLE * self.patch_size
        if size_multiple <= 0 or size_multiple % multiple:
            raise BadSettingError(
                f"size_multiple must be a positive multiple of {multiple}, got {size_multiple}",
                "use 64 (published)",
            )
        if not 1 <= num_inference_steps <= 1000:
            raise BadSettingError(
                f"num_inference_steps must be in [1, 1000], got {num_inference_steps}",
                "use 50 (published)",
            )
        if not guidance_scale >= 0:
            raise BadSettingError(f"guidance_scale must be >= 0, got {guidance_scale}", "use 4.5")
        if guidance_channels not in GUIDANCE_CHANNELS:
            raise BadSettingError(
                f"unknown guidance_channels {guidance_channels!r}", "use 'published' or 'all'"
            )
        if sampler not in SAMPLER_NAMES:
            raise BadSettingError(f"unknown sampler {sampler!r}", f"use one of {SAMPLER_NAMES}")
        if prompt is None and caption not in ("auto", "none"):
            raise BadSettingError(
                f"unknown caption mode {caption!r}", "use 'auto', 'none' or pass prompt='...'"
            )
        if color_fix not in COLOR_FIXES:
            raise BadSettingError(f"unknown colour fix {color_fix!r}", f"use one of {COLOR_FIXES}")
        p = self.patch_size
        if tile_size != "auto" and (
            not isinstance(tile_size, int) or tile_size < 2 * p or tile_size % p
        ):
            raise BadSettingError(
                f"tile_size must be 'auto' or a multiple of {p} of at least {2 * p}, got {tile_size!r}",
                "use 'auto' or 128 (published)",
            )
        if tile_overlap < 0 or tile_overlap % p:
            raise BadSettingError(
                f"tile_overlap must be a non-negative multiple of {p}, got {tile_overlap}",
                "use 32 (published)",
            )
        if min_tile_size < 2 * p or min_tile_size % p:
            raise BadSettingError(
                f"min_tile_size must be a multiple of {p} of at least {2 * p}", "use 32"
            )
        if vae_tile_size < 2 * VAE_DOWNSAMPLE or vae_tile_size % VAE_DOWNSAMPLE:
            raise BadSettingError(
                f"vae_tile_size must be a multiple of {VAE_DOWNSAMPLE} pixels, got {vae_tile_size}",
                f"use {DEFAULT_VAE_TILE}",
            )
        if remover_tile_size < 64:
            raise BadSettingError(
                f"remover_tile_size must be at least 64 pixels, got {remover_tile_size}",
                f"use {DEFAULT_REMOVER_TILE}",
            )
        text_len = getattr(self.text_encoder, "max_length", None)
        null_len = self.transformer.null_caption_embedding.shape[0]
        if text_len is not None and text_len != null_len:
            raise BadSettingError(
                f"the text encoder makes {text_len} tokens but the model's null caption has {null_len}",
                "load a text encoder configured for this model",
            )

    def _auto_tile_size(self) -> int:
        config = self.transformer.config
        heads = int(getattr(config, "num_attention_heads", 16))
        head_dim = int(getattr(config, "attention_head_dim", 72))
        return auto_latent_tile(
            # With "model" offload the transformer's weights come onto the device after this.
            available_memory_bytes(self.device) - pending_weight_bytes(self.transformer),
            patch_size=self.patch_size,
            hidden_size=heads * head_dim,
            num_heads=heads,
            bytes_per_element=torch.finfo(self.dtype).bits // 8,
        )

    def _latent_tiles(self, height: int, width: int, tile: int, overlap: int) -> list[TileBox]:
        """Square tiles of side min(tile, h, w) (as published), on the patch grid.

        An overlap of more than half a (clipped) tile is cut to a quarter of it, which keeps
        the published ratio (32 of 128) and avoids a crowd of nearly identical tiles.
        """
        p = self.patch_size
        side = min(tile, height, width) // p * p
        if overlap > side // 2:
            overlap = side // 4
        overlap = overlap // p * p
        return tile_grid(height, width, side, overlap)

    def _denoise_step(
        self,
        x: torch.Tensor,
        timestep: int,
        tiles: list[TileBox],
        conditions: dict[str, torch.Tensor],
        guidance_scale: float,
        guided_channels: int,
        maps: _MapAccumulator | None,
        on_tile: Callable[[int, int], None],
        cancel: CancelToken,
    ) -> torch.Tensor | None:
        """Guided model output (1, 8, H, W) float32 for the whole latent, blended over tiles.

        Adds this step's maps to `maps`. Returns None when interrupted.
        """
        use_cfg = guidance_scale != 1.0
        batch = 2 if use_cfg else 1
        p = self.patch_size
        out = torch.zeros((1, 8, *x.shape[-2:]), dtype=torch.float32, device=x.device)
        total = torch.zeros(x.shape[-2:], dtype=torch.float32, device=x.device)
        if maps is not None:
            maps.begin_step()
        t = torch.full((batch,), timestep, dtype=torch.long, device=x.device)
        for index, box in enumerate(tiles, start=1):
            if cancel.cancelled:
                return None
            rows, cols = box.slices

            def tile_of(latent: torch.Tensor, rows=rows, cols=cols) -> torch.Tensor:
                return latent[..., rows, cols].to(self.dtype).expand(batch, -1, -1, -1)

            result = self.transformer(
                hidden_states=tile_of(x),
                timestep=t,
                encoder_hidden_states=conditions["text"][:batch],
                lq_latent=tile_of(conditions["lq"]),
                ref_latent=tile_of(conditions["ref"]),
                encoder_attention_mask=conditions["mask"][:batch],
                return_maps=maps is not None,
                return_dict=True,
            )
            sample = result.sample.float()
            guided = sample[:1].clone()
            if use_cfg:
                cond, uncond = sample[:1, :guided_channels], sample[1:, :guided_channels]
                guided[:, :guided_channels] = uncond + guidance_scale * (cond - uncond)
            weight = _gaussian(box.height, box.width, x.device)
            out[..., rows, cols] += guided * weight
            total[rows, cols] += weight
            if maps is not None:
                token_box = TileBox(box.top // p, box.left // p, box.height // p, box.width // p)
                # Maps of the conditional sample (index 0).
                maps.add_tile(
                    token_box, result.router_weights[:, 0], result.degradation_magnitude[:, 0]
                )
            on_tile(index, len(tiles))

        if maps is not None:
            maps.end_step()
        return out / total

    @torch.no_grad()
    def __call__(
        self,
        image: torch.Tensor,
        *,
        upscale: float = 4,
        min_short_side: int = 1024,
        size_multiple: int = 64,
        num_inference_steps: int = 50,
        guidance_scale: float = 4.5,
        guidance_channels: Literal["published", "all"] = "published",
        sampler: Literal["iddpm", "dpm++"] = "iddpm",
        generator: torch.Generator | None = None,
        prompt: str | None = None,
        caption: Literal["auto", "none"] = "auto",
        color_fix: Literal["wavelet", "adain", "none"] = "wavelet",
        tile_size: int | Literal["auto"] = "auto",
        tile_overlap: int = 32,
        min_tile_size: int = MIN_LATENT_TILE,
        vae_tile_size: int = DEFAULT_VAE_TILE,
        remover_tile_size: int = DEFAULT_REMOVER_TILE,
        return_maps: bool = False,
        callback_on_step_end: Callable[[Any, int, int, dict], dict | None] | None = None,
        on_progress: Callable[[ProgressInfo], None] | None = None,
        on_warning: Callable[[str], None] | None = None,
        on_preview: OnPreview | None = None,
        cancel: CancelToken | None = None,
    ) -> RestoreOutput:
        """Restore `image` (1, 3, h, w) float in [0, 1].

        Args:
            upscale: output is exactly round(upscale * h) x round(upscale * w).
            min_short_side, size_multiple: working size (published: 1024 and 64).
            num_inference_steps, guidance_scale: sampling steps and CFG scale.
            guidance_channels: "published" guides epsilon channels 0-2, "all" all four.
            sampler: "iddpm" (published) or "dpm++".
            generator: seeds the starting and sampling noise (reproducible results).
            prompt: a fixed caption; otherwise `caption` "auto" asks the captioner (the
                empty caption without one) and "none" uses the empty caption.
            color_fix: "wavelet" (published default), "adain" or "none".
            tile_size: latent tile side ("auto": from free memory, at most 128), tile_overlap:
                latent cells; min_tile_size: floor for the out-of-memory retries.
            vae_tile_size, remover_tile_size: pixel tiles of the VAE and the remover.
            return_maps: also return the MoAM degradation maps.
            callback_on_step_end: f(pipeline, step_index, timestep, {"latents": x}) after each
                step; may return {"latents": new_x}.
            on_progress: receives a `ProgressInfo` after each tile of each stage.
            on_warning: receives human-readable warnings (e.g. a tile size reduced).
            on_preview: offered the reference image after the remover and the decoded
                result so far after every decoder tile (see `OnPreview`).
            cancel: checked between stages and before every tile of every denoising step;
                once cancelled the call raises `JobInterrupted`.
        """
        # 0. Validate
        self.check_inputs(
            image,
            upscale=upscale,
            min_short_side=min_short_side,
            size_multiple=size_multiple,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            guidance_channels=guidance_channels,
            sampler=sampler,
            prompt=prompt,
            caption=caption,
            color_fix=color_fix,
            tile_size=tile_size,
            tile_overlap=tile_overlap,
            vae_tile_size=vae_tile_size,
            remover_tile_size=remover_tile_size,
            min_tile_size=min_tile_size,
        )
        cancel = cancel or CancelToken()
        device, p = self.device, self.patch_size
        timings: dict[str, float] = {}
        started = stage_started = time.perf_counter()
        captions = prompt is None and caption == "auto" and self.captioner is not None
        plan = dreamclear_plan(num_inference_steps, captions)

        def progress(stage: Stage, step: int = 1, steps: int = 1):
            def report(tile: int = 1, tiles: int = 1) -> None:
                if on_progress is not None:
                    on_progress(plan.info(stage, step, steps, tile, tiles))
                # The denoising loop checks before each tile itself, to say how far it got.
                if stage != "denoise":
                    cancel.raise_if_cancelled()

            return report

        def stage_done(name: str) -> None:
            nonlocal stage_started
            self._sync()
            now = time.perf_counter()
            timings[name] = now - stage_started
            stage_started = now

        # 1. Upscale to the working size (bicubic)
        in_h, in_w = image.shape[-2:]
        out_size = (round(in_h * upscale), round(in_w * upscale))
        work_size = working_size(in_h, in_w, upscale, min_short_side, size_multiple)
        lq = _resize(image.to(device=device, dtype=torch.float32), work_size).clamp_(0, 1)

        # 2. Degradation remover (tiled) -> the reference image
        if self.remover is not None:
            reference = remove_degradation_tiled(
                self.remover, lq, remover_tile_size, on_tile=progress("remove")
            ).to(device)
        else:
            reference = lq
            progress("remove")()
        stage_done("remove")
        if on_preview is not None:
            on_preview(lambda: reference, out_size)
        cancel.raise_if_cancelled()

        # 3. Caption
        if prompt is not None:
            text = prompt
        elif caption == "auto" and self.captioner is not None:
            text = self.captioner.caption(_to_pil(reference))
        else:
            text = ""
        progress("caption")()
        stage_done("caption")
        cancel.raise_if_cancelled()

        # 4. Encode: T5 caption, learned null caption, VAE latents of LQ and reference
        text_emb, text_mask = self.text_encoder([text])
        text_emb = text_emb.to(device=device, dtype=self.dtype)
        text_mask = text_mask.to(device=device)
        null_caption = module_tensor(self.transformer, "null_caption_embedding")
        null_emb = null_caption[None].to(device=device, dtype=self.dtype)
        conditions = {
            "text": torch.cat([text_emb, null_emb]),
            # The published sampler reuses the conditional mask for the null caption.
            "mask": torch.cat([text_mask, text_mask]),
        }
        encode_progress = progress("encode", 1, 2)
        conditions["lq"] = encode_tiled(self.vae, lq, vae_tile_size, on_tile=encode_progress).to(
            device
        )
        encode_progress = progress("encode", 2, 2)
        conditions["ref"] = encode_tiled(
            self.vae, reference, vae_tile_size, on_tile=encode_progress
        ).to(device)
        del lq  # the largest buffer not needed again: keep peak memory down on big images
        stage_done("encode")
        cancel.raise_if_cancelled()

        # 5. Start from the reference latent noised to the first timestep
        run_sampler: Sampler = make_sampler(sampler, num_inference_steps)
        noise = randn_tensor(
            conditions["ref"].shape, generator=generator, device=device, dtype=torch.float32
        )
        x = run_sampler.start(conditions["ref"], noise)
        lat_h, lat_w = x.shape[-2:]

        # 6. Denoise over latent tiles, blending the guided model output at every step
        tile = self._auto_tile_size() if tile_size == "auto" else tile_size
        first_tile, floor = tile, min(min_tile_size, tile)
        tiles = self._latent_tiles(lat_h, lat_w, tile, tile_overlap)
        maps = _MapAccumulator((lat_h // p, lat_w // p), device) if return_maps else None
        guided_channels = GUIDANCE_CHANNELS[guidance_channels]
        timesteps = [int(t) for t in run_sampler.timesteps]
        steps_done = 0
        for i, t in enumerate(timesteps):
            if cancel.cancelled:
                break
            on_tile = progress("denoise", i + 1, len(timesteps))
            while True:
                try:
                    model_output = self._denoise_step(
                        x,
                        t,
                        tiles,
                        conditions,
                        guidance_scale,
                        guided_channels,
                        maps,
                        on_tile,
                        cancel,
                    )
                    break
                except torch.OutOfMemoryError as error:
                    if tile <= floor:
                        raise OutOfMemory(
                            f"out of memory on {device} even with {tile}-cell latent tiles",
                            "close other programs using the device, use --device cpu, "
                            "or restore a smaller image",
                        ) from error
                    # Halve the tile (and the overlap with it) and redo this step.
                    tile = max(floor, tile // 2 // p * p)
                    overlap = tile_overlap * tile // first_tile // p * p
                    tiles = self._latent_tiles(lat_h, lat_w, tile, overlap)
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                    if on_warning is not None:
                        on_warning(
                            f"Out of memory while denoising; latent tiles reduced to {tile} "
                            f"({tile * VAE_DOWNSAMPLE} px) and the step retried."
                        )
            if model_output is None:
                break
            x = run_sampler.step(model_output, i, x, generator=generator)
            steps_done += 1
            if callback_on_step_end is not None:
                returned = callback_on_step_end(self, i, t, {"latents": x})
                if returned and "latents" in returned:
                    x = returned["latents"].float()
        cancel.raise_if_cancelled(
            f"restoration interrupted after {steps_done} of {len(timesteps)} steps"
        )
        stage_done("denoise")

        # 7. Decode (tiled)
        def offer_preview(partial: Partial) -> None:
            if on_preview is not None:
                on_preview(lambda: partial(reference), out_size)

        restored = decode_tiled(
            self.vae,
            x,
            vae_tile_size,
            on_tile=progress("decode"),
            on_partial=offer_preview if on_preview is not None else None,
        ).to(device)
        stage_done("decode")

        # 8. Colour fix against the reference, then resize to exactly upscale x input
        restored = apply_color_fix(color_fix, restored, reference).clamp_(0, 1)
        restored = _resize(restored, out_size).clamp_(0, 1)
        progress("colour")()
        stage_done("colour")
        timings["total"] = time.perf_counter() - started

        degradation_maps = maps.result(VAE_DOWNSAMPLE * p) if maps is not None else None
        return RestoreOutput(restored, degradation_maps, tiles, timings, text)
