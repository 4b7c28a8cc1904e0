"""16-bit-per-channel colour images, which Pillow has no image mode for.

Reading: Pillow decodes 16-bit RGB(A) PNG and TIFF into 8-bit "RGB"/"RGBA" by keeping the
high byte of each sample. We run Pillow's own decoder a second time with the byte order of
the raw mode swapped, which keeps the low byte instead, and join the two. This reuses
Pillow's PNG unfiltering, interlacing and TIFF decompression, so it is exact.

Writing: a minimal PNG encoder (IHDR, iCCP, eXIf, iTXt XMP, IDAT via zlib, IEND; filter 0)
and a minimal baseline TIFF writer (one Deflate strip, Pillow's IFD serializer for tags and
EXIF sub-IFDs). No extra dependency (tifffile is not installed).

Limits: 16-bit grey+alpha PNGs and 16-bit CMYK/YCbCr TIFFs are read at 8 bits (Pillow has
no unpacker for them); 16-bit grey ("I;16") is handled natively by Pillow.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, TiffTags
from PIL.TiffImagePlugin import ImageFileDirectory_v2

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_EXIF_PREFIX = b"Exif\x00\x00"


def _rawmode(tile: object) -> str:
    args = tile.args  # type: ignore[attr-defined]
    return args[0] if isinstance(args, tuple) else args


def is_16bit_color(image: Image.Image) -> bool:
    """Whether Pillow is about to truncate 16-bit RGB/RGBA samples of this opened image."""
    return (
        image.mode in ("RGB", "RGBA")
        and bool(image.tile)
        and all(f"{image.mode};16" in _rawmode(t) for t in image.tile)
    )


def _swapped(rawmode: str) -> str:
    order = rawmode[-1]
    if order == "N":
        order = "L" if sys.byteorder == "little" else "B"
    return rawmode[:-1] + ("B" if order == "L" else "L")


def open_low_bytes(path: Path) -> Image.Image:
    """Open `path` again so that loading it yields the low byte of each 16-bit sample."""
    image = Image.open(path)
    tiles = []
    for tile in image.tile:
        args = tile.args
        rawmode = _swapped(_rawmode(tile))
        tiles.append(
            tile._replace(args=(rawmode, *args[1:]) if isinstance(args, tuple) else rawmode)
        )
    image.tile = tiles
    return image


def join_bytes(high: Image.Image, low: Image.Image) -> np.ndarray:
    """HxWxC uint16 from two decoded 8-bit images holding the high and low bytes."""
    return (np.asarray(high).astype(np.uint16) << 8) | np.asarray(low)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def encode_png16(
    pixels: np.ndarray,
    *,
    exif: bytes | None = None,
    icc_profile: bytes | None = None,
    xmp: bytes | None = None,
) -> bytes:
    """A 16-bit RGB (HxWx3) or RGBA (HxWx4) PNG file from uint16 pixels."""
    height, width, channels = pixels.shape
    color_type = {3: 2, 4: 6}[channels]
    rows = pixels.astype(">u2").reshape(height, width * channels).view(np.uint8)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1)
    chunks = [_png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0))]
    if icc_profile:
        chunks.append(_png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc_profile)))
    if exif:
        chunks.append(_png_chunk(b"eXIf", exif.removeprefix(_EXIF_PREFIX)))
    if xmp:
        chunks.append(_png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + xmp))
    chunks.append(_png_chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)))
    chunks.append(_png_chunk(b"IEND", b""))
    return _PNG_SIGNATURE + b"".join(chunks)


def _exif_tags(ifd: ImageFileDirectory_v2, exif: bytes) -> None:
    parsed = Image.Exif()
    parsed.load(exif)
    for tag, value in parsed.items():
        if tag in (0x8769, 0x8825):
            ifd[tag] = parsed.get_ifd(tag)
        elif tag not in ifd:
            ifd[tag] = value


def encode_tiff16(
    pixels: np.ndarray,
    *,
    exif: bytes | None = None,
    icc_profile: bytes | None = None,
    xmp: bytes | None = None,
) -> bytes:
    """A little-endian 16-bit RGB/RGBA TIFF (one Deflate strip) from HxWxC uint16 pixels."""
    height, width, channels = pixels.shape
    strip = zlib.compress(pixels.astype("<u2").tobytes(), 6)
    ifd = ImageFileDirectory_v2(prefix=b"II")
    ifd[256], ifd[257] = width, height
    ifd[258] = (16,) * channels
    ifd.tagtype[258] = TiffTags.SHORT
    ifd[259] = 8  # Adobe Deflate
    ifd[262] = 2  # RGB
    ifd[277], ifd[278], ifd[284] = channels, height, 1
    if channels == 4:
        ifd[338] = 2  # unassociated alpha
    # Pillow's serializer moves StripOffsets past the IFD and its data: 0 means "right after".
    ifd[273] = 0
    ifd.tagtype[273] = TiffTags.LONG
    ifd[279] = len(strip)
    ifd.tagtype[279] = TiffTags.LONG
    if icc_profile:
        ifd[34675] = icc_profile
        ifd.tagtype[34675] = TiffTags.UNDEFINED
    if xmp:
        ifd[700] = xmp
        ifd.tagtype[700] = TiffTags.BYTE
    if exif:
        _exif_tags(ifd, exif)
    header = b"II*\x00" + struct.pack("<I", 8)
    return header + ifd.tobytes(8) + strip
