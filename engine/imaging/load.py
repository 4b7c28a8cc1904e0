"""Reading a photo into a float32 sRGB array, its alpha and the metadata to write back.

Supported: JPEG (also CMYK and MPO), PNG, TIFF, WebP, BMP, GIF (first frame), and HEIC/HEIF
when the optional pillow-heif package is installed. 8- and 16-bit samples; see
`sixteen_bit` for the 16-bit limits. 16-bit colour keeps the pixels in their ICC profile
(Pillow's LittleCMS binding is 8-bit) and 16-bit grey ignores a grey profile. Rules, checked from the header before decoding:
at most `LoadLimits.max_pixels` pixels, each side at least `min_side` px (smaller images
carry too little to restore and break tiling: a 1x1 image is an error, not upscaled),
and a long side at most `max_aspect` times the short side.
"""

from __future__ import annotations

import contextlib
import logging
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageFile, ImageOps

from engine.errors import BadInputError
from engine.imaging import sixteen_bit
from engine.imaging.color import to_srgb
from engine.imaging.metadata import (
    ImageMetadata,
    icc_color_space,
    is_srgb,
    upright_exif,
    upright_xmp,
)

logger = logging.getLogger(__name__)

try:  # optional: HEIC/HEIF support
    from pillow_heif import register_heif_opener
except ImportError:  # pragma: no cover - depends on the environment
    HEIF_AVAILABLE = False
else:  # pragma: no cover
    register_heif_opener()
    HEIF_AVAILABLE = True

SUPPORTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "TIFF", "WEBP", "BMP", "GIF", "HEIF"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_DECODE_ERRORS = (OSError, SyntaxError, EOFError, ValueError, zlib.error, struct.error)
_truncation_lock = threading.Lock()


@dataclass(frozen=True)
class LoadLimits:
    """What `load_image` accepts."""

    max_pixels: int = 150_000_000
    """Largest width*height (decompression-bomb guard). Pillow's own guard,
    `PIL.Image.MAX_IMAGE_PIXELS`, is app-wide and errors above about 179 MP: raise it too
    before allowing more here."""
    min_side: int = 8
    """Smallest width and height in pixels."""
    max_aspect: float = 32.0
    """Largest ratio of the long side to the short side."""


@dataclass(frozen=True)
class LoadedImage:
    """A decoded photo, upright (EXIF orientation applied once) and in sRGB when it had a profile.

    rgb: float32 (H, W, 3) in [0, 1]. alpha: float32 (H, W) in [0, 1], or None.
    bit_depth: 8 or 16, bits per sample of the source. mode: the source's Pillow mode
    ("RGB", "I;16", "P", "CMYK"...). format: Pillow's format name ("PNG", "JPEG"...).
    """

    path: Path
    rgb: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    mode: str
    format: str
    metadata: ImageMetadata

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the upright image."""
        return self.rgb.shape[1], self.rgb.shape[0]


def _bad(path: Path, problem: str, hint: str) -> BadInputError:
    return BadInputError(f"{path}: {problem}", hint=hint)


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise _bad(path, "is a folder, not an image file", "pass an image file")
    if not path.exists():
        raise _bad(path, "file not found", "check the path and file name")
    if path.stat().st_size == 0:
        raise _bad(path, "file is empty (0 bytes)", "the file was not saved or copied completely")


@contextlib.contextmanager
def _strict_decoding() -> Iterator[None]:
    """Make Pillow reject truncated files and keep its bomb warnings to itself."""
    with _truncation_lock, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = saved


def _open(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
    except PermissionError:
        raise _bad(path, "permission denied", "check that you may read the file") from None
    except Image.DecompressionBombError:
        raise _bad(
            path,
            f"image has more pixels than Pillow's limit ({Image.MAX_IMAGE_PIXELS * 2} px)",
            "downscale it first",
        ) from None
    except Image.UnidentifiedImageError:
        raise _bad(
            path,
            "not an image file, or a format that cannot be read",
            "use JPEG, PNG, TIFF, WebP, BMP, GIF" + (", HEIC" if HEIF_AVAILABLE else ""),
        ) from None
    except _DECODE_ERRORS as error:
        raise _bad(
            path, f"cannot read the image header ({error})", "the file may be damaged"
        ) from None
    if image.format not in SUPPORTED_FORMATS:
        image.close()
        raise _bad(path, f"{image.format} images are not supported", "convert it to PNG or JPEG")
    return image


def _check_size(path: Path, width: int, height: int, limits: LoadLimits) -> None:
    if width * height > limits.max_pixels:
        raise _bad(
            path,
            f"image is {width}x{height} ({width * height / 1e6:.0f} MP), over the limit of "
            f"{limits.max_pixels / 1e6:.0f} MP",
            "downscale or crop it first, or raise the pixel limit",
        )
    if min(width, height) < limits.min_side:
        raise _bad(
            path,
            f"image is {width}x{height}, smaller than the minimum of {limits.min_side} px a side",
            "use a larger image",
        )
    if max(width, height) > limits.max_aspect * min(width, height):
        raise _bad(
            path,
            f"image is {width}x{height}, longer than {limits.max_aspect:g}:1",
            "crop it to a less extreme aspect ratio",
        )


def _decode(path: Path, image: Image.Image) -> Image.Image:
    try:
        image.load()
    except _DECODE_ERRORS as error:
        raise _bad(
            path, f"image data is damaged or truncated ({error})", "re-export or re-copy the file"
        ) from None
    return image


def _split_alpha(image: Image.Image) -> tuple[Image.Image, np.ndarray | None]:
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode in ("L", "1") and "transparency" in image.info:
        image = image.convert("LA")
    if image.mode not in _ALPHA_MODES:
        return image, None
    alpha = np.asarray(image.getchannel("A"), dtype=np.float32) / 255.0
    color_mode = "RGB" if image.mode in ("RGBA", "RGBa", "PA") else "L"
    return image.convert(color_mode), alpha


def _to_float_rgb(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        grey = np.clip(np.asarray(image, dtype=np.float32) / 65535.0, 0.0, 1.0)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode == "F":
        grey = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
        return np.repeat(grey[:, :, None], 3, axis=2)
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def _icc_for_output(path: Path, icc: bytes | None) -> tuple[bytes | None, str]:
    """The profile bytes and colour space, or (None, "") when the profile is unusable."""
    if not icc:
        return None, ""
    try:
        return icc, icc_color_space(icc)
    except (OSError, ImageCms.PyCMSError) as error:
        logger.warning("%s: ignoring an unreadable ICC profile (%s)", path, error)
        return None, ""


def _apply_icc(
    path: Path, image: Image.Image, icc: bytes | None
) -> tuple[Image.Image, ImageMetadata]:
    """Convert 8-bit pixels to sRGB; returns the image and the ICC part of the metadata."""
    icc, space = _icc_for_output(path, icc)
    if icc is None:
        return image, ImageMetadata()
    keep = icc if space == "RGB" else None  # an RGB result cannot carry a CMYK/grey profile
    if space == "RGB" and is_srgb(icc):
        return image, ImageMetadata(icc_profile=keep, icc_applied=False)
    expected = {"RGB": ("RGB",), "GRAY": ("L",), "CMYK": ("CMYK",)}.get(space, ())
    if image.mode not in expected:
        logger.warning(
            "%s: ICC profile (%s) does not match mode %s; ignored", path, space, image.mode
        )
        return image, ImageMetadata()
    try:
        converted = to_srgb(image, icc)
    except ImageCms.PyCMSError as error:
        logger.warning("%s: cannot apply the ICC profile (%s); assuming sRGB", path, error)
        return image, ImageMetadata()
    return converted, ImageMetadata(icc_profile=keep, icc_applied=keep is not None)


def _load_16bit_color(path: Path, image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    high = ImageOps.exif_transpose(image)
    with sixteen_bit.open_low_bytes(path) as low_file:
        low = ImageOps.exif_transpose(_decode(path, low_file))
    pixels = sixteen_bit.join_bytes(high, low).astype(np.float32) / 65535.0
    alpha = pixels[:, :, 3].copy() if pixels.shape[2] == 4 else None
    return np.ascontiguousarray(pixels[:, :, :3]), alpha


def load_image(path: Path | str, limits: LoadLimits | None = None) -> LoadedImage:
    """Read an image file; every problem with the file is a BadInputError naming it."""
    path = Path(path)
    limits = limits or LoadLimits()
    # 1. file checks and header
    _check_file(path)
    with _strict_decoding(), _open(path) as image:
        _check_size(path, image.width, image.height, limits)
        image.seek(0)  # first frame of an animation
        source_mode, source_format = image.mode, image.format or ""
        deep_color = sixteen_bit.is_16bit_color(image)  # from the tiles, so before decoding
        _decode(path, image)  # before metadata: PNG keeps EXIF after the pixel data
        # 2. metadata (orientation reset: the pixels are made upright below)
        exif = upright_exif(image.getexif())
        xmp = upright_xmp(image.info.get("xmp"))
        icc = image.info.get("icc_profile")
        # 3. pixels
        if deep_color:
            rgb, alpha = _load_16bit_color(path, image)
            # LittleCMS through Pillow is 8-bit only: 16-bit pixels stay in their profile,
            # which is embedded again on save (tagging, no conversion).
            icc, space = _icc_for_output(path, icc)
            colour = ImageMetadata(icc_profile=icc if space == "RGB" else None)
            bit_depth = 16
        else:
            upright = ImageOps.exif_transpose(image)
            bit_depth = 16 if upright.mode.startswith("I") else 8
            upright, alpha = _split_alpha(upright)
            if bit_depth == 8:
                upright, colour = _apply_icc(path, upright, icc)
            else:
                colour = ImageMetadata()
            rgb = _to_float_rgb(upright)
    metadata = ImageMetadata(
        exif=exif, icc_profile=colour.icc_profile, icc_applied=colour.icc_applied, xmp=xmp
    )
    logger.debug(
        "loaded %s: %s %s %d-bit %dx%d",
        path,
        source_format,
        source_mode,
        bit_depth,
        rgb.shape[1],
        rgb.shape[0],
    )
    return LoadedImage(
        path=path,
        rgb=np.ascontiguousarray(rgb, dtype=np.float32),
        alpha=alpha,
        bit_depth=bit_depth,
        mode=source_mode,
        format=source_format,
        metadata=metadata,
    )
