"""Restore image files: read with metadata, run the pipeline, write the result atomically.

This is the file-level layer shared by `dreamclear restore` and (later) the engine process:
the pipeline works on tensors, this module owns paths, naming, alpha, metadata and maps.
Originals are never written to; an existing output is never replaced unless asked.
"""

from __future__ import annotations

import glob
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import EngineError, JobInterrupted, OutputError
from engine.imaging import io as image_io
from engine.imaging.atomic import atomic_write
from engine.imaging.map_picture import map_picture
from engine.protocol import RestoreOptionsMessage

logger = logging.getLogger(__name__)

# Formats we read but do not write: their results are saved as PNG.
WRITABLE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"}
IMAGE_SUFFIXES = WRITABLE_SUFFIXES | {".bmp", ".gif", ".heic", ".heif"}


@dataclass
class RestoreOptions:
    """Per-job settings; defaults are the published inference defaults."""

    upscale: int = 4
    steps: int = 50
    guidance_scale: float = 4.5
    seed: int | None = None
    sampler: str = "iddpm"
    prompt: str | None = None
    caption: str = "auto"
    color_fix: str = "wavelet"
    strength: float = 1.0
    """0..1: how much of the restoration to keep over the input's bicubic upscale (1: all)."""
    tile: int | str = "auto"
    save_map: bool = False
    output_format: str | None = None
    """Output suffix without dot (png, jpg, tiff, webp); None keeps the input's where writable."""
    bit_depth: int | None = None
    """8 or 16; None keeps 16 for 16-bit inputs saved as PNG/TIFF, else 8."""
    overwrite: bool = False
    skip_existing: bool = False
    """Skip an input whose result name is taken (before reading the input)."""
    min_short_side: int = 1024
    max_megapixels: float = 150.0
    """Inputs larger than this are refused before decoding (decompression-bomb guard)."""

    @classmethod
    def from_message(
        cls, message: RestoreOptionsMessage, min_short_side: int = 1024
    ) -> RestoreOptions:
        """The options of a `restore` request (or of the CLI, which builds the same message)."""
        return cls(
            upscale=message.upscale,
            steps=message.steps,
            guidance_scale=message.cfg,
            seed=message.seed,
            sampler=message.sampler,
            prompt=message.prompt,
            caption="none" if message.caption == "none" else "auto",
            color_fix=message.color_fix,
            strength=float(message.strength),
            tile=message.tile,
            save_map=message.save_map,
            output_format=message.output_format,
            overwrite=message.overwrite,
            skip_existing=message.skip_existing,
            min_short_side=min_short_side,
            max_megapixels=message.max_megapixels,
        )


@dataclass
class FileResult:
    input: Path
    output: Path | None = None
    map_path: Path | None = None
    seconds: float = 0.0
    skipped: bool = False
    """The result existed already (`skip_existing`); `output` names it."""
    error: str | None = None
    failure: EngineError | None = None
    """The error behind `error`, for callers that report its kind and hint (the engine)."""
    warnings: list[str] = field(default_factory=list)
    """What went wrong beside a result that was written (e.g. its map could not be saved)."""


def collect_inputs(patterns: Iterable[str]) -> tuple[list[Path], list[FileResult]]:
    """Expand files, folders (their images, not recursive) and globs, in a stable order.

    Returns the inputs and a failure for every pattern that names nothing, so a typo is
    reported like any other bad input instead of ending the run.
    """
    inputs: list[Path] = []
    missing: list[FileResult] = []
    seen: set[Path] = set()
    for pattern in patterns:
        path = Path(pattern).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.exists() or path.is_symlink():
            found = [path]
        else:
            found = sorted(Path(p) for p in glob.glob(str(path)) if Path(p).is_file())
        if not found:
            missing.append(
                FileResult(input=path, error=f"{pattern}: no such file, folder or matching image")
            )
        for item in found:
            key = item.resolve()
            if key not in seen:
                seen.add(key)
                inputs.append(item)
    return inputs, missing


def prepare_output_folder(folder: Path) -> None:
    """Create the output folder if needed and prove it is writable, before any work."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".dreamclear-write-test-{time.monotonic_ns()}"
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise OutputError(
            f"cannot write to the output folder {folder}: {error.strerror or error}",
            hint="choose another folder with -o, or fix its permissions",
        ) from error


def output_path_for(input_path: Path, folder: Path, options: RestoreOptions) -> Path:
    """`photo.jpg` -> `folder/photo_x4.jpg`; a free name unless overwriting was asked for."""
    stem, suffix = _output_name(input_path, options)
    if options.overwrite:
        return folder / f"{stem}{suffix}"
    return image_io.unique_output_path(folder, stem, suffix)


def existing_result(input_path: Path, folder: Path, options: RestoreOptions) -> Path | None:
    """The result `photo.jpg` would be written as (`folder/photo_x4.jpg`), if it exists."""
    stem, suffix = _output_name(input_path, options)
    path = folder / f"{stem}{suffix}"
    return path if path.is_file() else None


def _output_name(input_path: Path, options: RestoreOptions) -> tuple[str, str]:
    suffix = f".{options.output_format}" if options.output_format else input_path.suffix.lower()
    if suffix not in WRITABLE_SUFFIXES:
        suffix = ".png"
    return f"{input_path.stem}_x{options.upscale}", suffix


def _to_tensor(rgb: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].float()


def _to_array(image) -> np.ndarray:
    return image[0].float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def save_degradation_map(
    maps, result_path: Path, overwrite: bool, output_size: tuple[int, int]
) -> Path:
    """Write the maps beside the result: `.map.npz` (all values, raw) and a `.map.png` picture
    of them at the output's (height, width) aspect with a legend (`engine.imaging.map_picture`).
    """
    npz_path = result_path.with_name(result_path.stem + ".map.npz")
    png_path = result_path.with_name(result_path.stem + ".map.png")
    for path in (npz_path, png_path):
        if path.exists() and not overwrite:
            raise OutputError(f"{path} already exists", hint="pass --overwrite to replace it")
    arrays = maps.to_arrays()
    atomic_write(npz_path, lambda file: np.savez_compressed(file, **arrays), overwrite=overwrite)
    picture = map_picture(maps.preview_rgb(), output_size, maps.picture_title, maps.picture_legend)
    image_io.save_image(picture.astype(np.float32) / 255, png_path, overwrite=overwrite)
    return npz_path


def restore_file(
    pipeline: Callable,
    input_path: Path,
    output_folder: Path,
    options: RestoreOptions,
    *,
    pipeline_kwargs: dict | None = None,
) -> FileResult:
    """Restore one file. User errors come back in `FileResult.error`; nothing half-written.
    With `skip_existing`, a file whose result exists is not read at all (`skipped`)."""
    started = time.perf_counter()
    result = FileResult(input=input_path)
    if options.skip_existing:
        done = existing_result(input_path, output_folder, options)
        if done is not None:
            result.output, result.skipped = done, True
            return result
    try:
        limits = image_io.LoadLimits(max_pixels=int(options.max_megapixels * 1e6))
        loaded = image_io.load_image(input_path, limits)
        output_path = output_path_for(input_path, output_folder, options)
        generator = None
        if options.seed is not None:
            import torch

            generator = torch.Generator().manual_seed(options.seed)
        image = _to_tensor(loaded.rgb)
        restored = pipeline(
            image,
            upscale=options.upscale,
            num_inference_steps=options.steps,
            guidance_scale=options.guidance_scale,
            sampler=options.sampler,
            generator=generator,
            prompt=options.prompt,
            caption=options.caption,
            color_fix=options.color_fix,
            tile_size=options.tile,
            min_short_side=options.min_short_side,
            return_maps=options.save_map,
            **(pipeline_kwargs or {}),
        )
        from engine.pipelines.strength import apply_strength

        rgb = _to_array(apply_strength(restored.image.float(), image, options.strength))
        alpha = None
        if loaded.alpha is not None:
            alpha = image_io.upscale_alpha(loaded.alpha, (rgb.shape[1], rgb.shape[0]))
        bit_depth = options.bit_depth or (
            16 if loaded.bit_depth > 8 and output_path.suffix in {".png", ".tif", ".tiff"} else 8
        )
        image_io.save_image(
            rgb,
            output_path,
            alpha=alpha,
            bit_depth=bit_depth,
            metadata=loaded.metadata,
            overwrite=options.overwrite,
            input_path=input_path,
        )
        result.output = output_path
        if options.save_map and restored.degradation_maps is not None:
            # The image is written: a map that cannot be saved is a warning, not a failure,
            # so the job's state agrees with the disk and a re-run does not restore it again.
            try:
                result.map_path = save_degradation_map(
                    restored.degradation_maps, output_path, options.overwrite, rgb.shape[:2]
                )
            except EngineError as error:
                result.warnings.append(f"{output_path}: the degradation map was not saved: {error}")
    except JobInterrupted:
        raise
    except EngineError as error:
        result.error = str(error) if str(input_path) in str(error) else f"{input_path}: {error}"
        result.failure = error
    result.seconds = time.perf_counter() - started
    return result
