"""Writing a restored photo: PNG, JPEG, TIFF or WebP, 8 or 16 bits, metadata kept, atomically.

Colour: when the input was converted from its ICC profile to sRGB on load
(`ImageMetadata.icc_applied`), an 8-bit result is converted from sRGB back to that profile
and the profile is embedded. A 16-bit result cannot be converted back at 16-bit precision
(Pillow's LittleCMS binding is 8-bit), so it stays sRGB and an sRGB profile is embedded.
A profile that was never applied (sRGB, or a 16-bit input) is embedded as it is.
16-bit RGB PNG and TIFF are written by our own encoders (`sixteen_bit`); Pillow has no mode
for them. JPEG cannot hold alpha: it is dropped with a warning.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, PngImagePlugin

from engine.errors import BadSettingError, OutputError
from engine.imaging import sixteen_bit
from engine.imaging.atomic import atomic_write, check_output_folder
from engine.imaging.color import from_srgb
from engine.imaging.metadata import ImageMetadata, srgb_profile_bytes, upright_exif, upright_xmp

logger = logging.getLogger(__name__)

_FORMATS = {
    "png": "PNG",
    "jpg": "JPEG",
    "jpeg": "JPEG",
    "tif": "TIFF",
    "tiff": "TIFF",
    "webp": "WEBP",
}
_SIXTEEN_BIT_FORMATS = frozenset({"PNG", "TIFF"})


def output_format(path: Path, format: str | None = None) -> str:
    """Pillow's name of the format to write, from `format` or else the file extension."""
    key = (format or path.suffix.lstrip(".")).lower()
    if key not in _FORMATS:
        raise BadSettingError(
            f"{path}: cannot save as '{key or 'no extension'}'",
            hint="use a .png, .jpg, .tif or .webp file name",
        )
    return _FORMATS[key]


def _check_arrays(rgb: np.ndarray, alpha: np.ndarray | None) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be HxWx3, got shape {rgb.shape}")
    if alpha is not None and alpha.shape != rgb.shape[:2]:
        raise ValueError(f"alpha must be {rgb.shape[:2]}, got shape {alpha.shape}")


def _check_target(path: Path, input_path: Path | str | None) -> None:
    check_output_folder(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder", hint="give a file name to save to")
    if input_path is not None and path.exists() and os.path.samefile(path, input_path):
        raise OutputError(
            f"{path}: this is the input file; it is never overwritten",
            hint="choose another output name or folder",
        )


def _quantize(values: np.ndarray, bit_depth: int) -> np.ndarray:
    top = 65535 if bit_depth == 16 else 255
    dtype = np.uint16 if bit_depth == 16 else np.uint8
    return (np.clip(np.nan_to_num(values), 0.0, 1.0) * top + 0.5).astype(dtype)


def _colour_for_output(
    rgb8: np.ndarray | None, metadata: ImageMetadata, bit_depth: int
) -> tuple[np.ndarray | None, bytes | None]:
    """The (possibly converted) 8-bit pixels and the ICC profile to embed."""
    icc = metadata.icc_profile
    if not icc or not metadata.icc_applied:
        return rgb8, icc
    if bit_depth == 16:
        return rgb8, srgb_profile_bytes()
    assert rgb8 is not None
    return np.asarray(from_srgb(Image.fromarray(rgb8), icc)), icc


def _pillow_writer(
    image: Image.Image, fmt: str, metadata: ImageMetadata, icc: bytes | None, quality: int
) -> Callable[[BinaryIO], None]:
    options: dict[str, object] = {}
    if metadata.exif:
        options["exif"] = metadata.exif
    if icc:
        options["icc_profile"] = icc
    if fmt == "PNG" and metadata.xmp:
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", metadata.xmp.decode("utf-8", "replace"))
        options["pnginfo"] = info
    elif fmt in ("JPEG", "WEBP") and metadata.xmp:
        options["xmp"] = metadata.xmp
    elif fmt == "TIFF":
        options["compression"] = "tiff_deflate"
        if metadata.xmp:
            options["tiffinfo"] = {700: metadata.xmp}
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
    return lambda file: image.save(file, fmt, **options)


def _sixteen_bit_writer(
    pixels: np.ndarray, fmt: str, metadata: ImageMetadata, icc: bytes | None
) -> Callable[[BinaryIO], None]:
    encode = sixteen_bit.encode_png16 if fmt == "PNG" else sixteen_bit.encode_tiff16
    return lambda file: file.write(
        encode(pixels, exif=metadata.exif, icc_profile=icc, xmp=metadata.xmp)
    )


def save_image(
    rgb: np.ndarray,
    path: Path | str,
    *,
    alpha: np.ndarray | None = None,
    format: str | None = None,
    bit_depth: int = 8,
    quality: int = 95,
    metadata: ImageMetadata | None = None,
    overwrite: bool = False,
    input_path: Path | str | None = None,
) -> Path:
    """Write float32 (H, W, 3) RGB in [0, 1] (sRGB), plus optional (H, W) alpha, to `path`.

    `format` defaults to the extension ("png", "jpg"/"jpeg", "tif"/"tiff", "webp");
    `bit_depth` 16 only for PNG and TIFF; `quality` for JPEG and WebP. The file appears
    complete or not at all; an existing file is replaced only with `overwrite`, and
    `input_path` (the file the result was made from) is never written onto.
    Raises OutputError (cannot write) or BadSettingError (format/bit-depth mismatch).
    """
    path = Path(path)
    metadata = metadata or ImageMetadata()
    # The pixels are upright: never let a stale orientation rotate them again.
    metadata = dataclasses.replace(
        metadata, exif=upright_exif(metadata.exif), xmp=upright_xmp(metadata.xmp)
    )
    # 1. validate
    _check_arrays(rgb, alpha)
    fmt = output_format(path, format)
    if bit_depth not in (8, 16):
        raise BadSettingError(f"bit depth must be 8 or 16, got {bit_depth}", hint="use 8 or 16")
    if bit_depth == 16 and fmt not in _SIXTEEN_BIT_FORMATS:
        raise BadSettingError(
            f"{path}: {fmt} cannot store 16 bits per channel",
            hint="save as PNG or TIFF, or use 8 bits",
        )
    _check_target(path, input_path)
    if alpha is not None and fmt == "JPEG":
        logger.warning("%s: JPEG has no alpha channel; transparency is dropped", path)
        alpha = None
    # 2. pixels and colour
    rgb8, icc = _colour_for_output(
        _quantize(rgb, 8) if bit_depth == 8 else None, metadata, bit_depth
    )
    if bit_depth == 16:
        channels = [rgb] if alpha is None else [rgb, alpha[:, :, None]]
        pixels = _quantize(np.concatenate(channels, axis=2), 16)
        write = _sixteen_bit_writer(pixels, fmt, metadata, icc)
    else:
        assert rgb8 is not None
        image = Image.fromarray(rgb8)
        if alpha is not None:
            image.putalpha(Image.fromarray(_quantize(alpha, 8)))
        write = _pillow_writer(image, fmt, metadata, icc, quality)
    # 3. atomic write
    atomic_write(path, write, overwrite=overwrite)
    return path
