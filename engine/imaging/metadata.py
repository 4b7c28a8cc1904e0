"""Metadata carried from an input photo to its restored copy: EXIF, ICC profile and XMP.

EXIF is stored with its orientation already reset to 1 ("upright"), because the loader
applies the orientation to the pixels exactly once; writing the original tag back would
make viewers rotate the restored photo a second time. Tags that describe the old file's
layout (strip offsets, bit depth, ...) are dropped so they cannot contradict the new file.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass

from PIL import Image, ImageCms

logger = logging.getLogger(__name__)

ORIENTATION_TAG = 0x0112
_EXIF_IFD_TAG = 0x8769
_GPS_IFD_TAG = 0x8825
# TIFF/EXIF IFD0 tags that describe the pixel layout of the file they came from.
_LAYOUT_TAGS = frozenset(
    {256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 317, 320, 322, 323, 324, 325, 338, 339}
    | {513, 514, 530, 531, 532, 700, 34675}
)
_XMP_ORIENTATION = re.compile(rb'(tiff:Orientation(?:="|>))\d(["<])')


@dataclass(frozen=True)
class ImageMetadata:
    """What `save_image` writes back next to the restored pixels.

    exif: serialized EXIF (`Image.Exif.tobytes()`, "Exif\\0\\0" prefix), orientation 1, or None.
    icc_profile: the input's RGB ICC profile bytes, or None (then the pixels are sRGB).
    icc_applied: True when the loader converted the pixels from `icc_profile` to sRGB, so the
        writer converts them back; False when the pixels are still in `icc_profile`'s space.
    xmp: XMP packet bytes (orientation reset to 1), or None.
    """

    exif: bytes | None = None
    icc_profile: bytes | None = None
    icc_applied: bool = False
    xmp: bytes | None = None


def upright_exif(source: Image.Exif | bytes | None) -> bytes | None:
    """EXIF with orientation 1 and layout tags dropped, or None when there is none."""
    if isinstance(source, bytes):
        parsed = Image.Exif()
        parsed.load(source)
        source = parsed
    if not source:
        return None
    exif = Image.Exif()
    for tag, value in source.items():
        if tag in (_EXIF_IFD_TAG, _GPS_IFD_TAG):
            exif[tag] = source.get_ifd(tag)
        elif tag not in _LAYOUT_TAGS:
            exif[tag] = value
    if ORIENTATION_TAG in exif:
        exif[ORIENTATION_TAG] = 1
    return exif.tobytes()


def upright_xmp(xmp: bytes | str | None) -> bytes | None:
    """XMP bytes with any tiff:Orientation set to 1 (Photoshop mirrors the EXIF tag there)."""
    if not xmp:
        return None
    data = xmp.encode("utf-8") if isinstance(xmp, str) else bytes(xmp)
    return _XMP_ORIENTATION.sub(rb"\g<1>1\g<2>", data)


def icc_color_space(icc_profile: bytes) -> str:
    """The profile's data colour space as in its header ("RGB", "GRAY", "CMYK", ...)."""
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
    return profile.profile.xcolor_space.strip()


def is_srgb(icc_profile: bytes) -> bool:
    """Whether the profile calls itself sRGB (then converting to sRGB would only add rounding)."""
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
    return "srgb" in (ImageCms.getProfileDescription(profile) or "").lower()


def srgb_profile_bytes() -> bytes:
    """A built-in sRGB profile, embedded when the original profile cannot be written back."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
