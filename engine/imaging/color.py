"""ICC colour conversions between an input's embedded profile and sRGB (8-bit, LittleCMS).

Decision: the engine works in sRGB. An 8-bit input with a non-sRGB profile is converted to
sRGB on load; on save the result is converted from sRGB back to the original profile and
that profile is embedded, so the restored file matches the original in colour-managed apps.
Relative colorimetric intent with black point compensation, the usual choice for photos.
"""

from __future__ import annotations

import io
import logging

from PIL import Image, ImageCms

logger = logging.getLogger(__name__)

_INTENT = ImageCms.Intent.RELATIVE_COLORIMETRIC
_FLAGS = ImageCms.Flags.BLACKPOINTCOMPENSATION


def _profile(icc_profile: bytes) -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))


def to_srgb(image: Image.Image, icc_profile: bytes) -> Image.Image:
    """Convert an RGB, L or CMYK image in `icc_profile` to an sRGB "RGB" image."""
    srgb = ImageCms.createProfile("sRGB")
    return ImageCms.profileToProfile(
        image, _profile(icc_profile), srgb, renderingIntent=_INTENT, outputMode="RGB", flags=_FLAGS
    )


def from_srgb(image: Image.Image, icc_profile: bytes) -> Image.Image:
    """Convert an sRGB "RGB" image into the RGB profile `icc_profile`."""
    srgb = ImageCms.createProfile("sRGB")
    return ImageCms.profileToProfile(
        image, srgb, _profile(icc_profile), renderingIntent=_INTENT, outputMode="RGB", flags=_FLAGS
    )
