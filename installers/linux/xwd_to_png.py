"""Convert Xvfb's screen file (`Xvfb -fbdir DIR` keeps DIR/Xvfb_screen0 in XWD format) to PNG:
`python xwd_to_png.py Xvfb_screen0 OUT.png`. For test-clean-root.sh, which takes the set-up
window's picture this way: the environment (and its Qt) does not exist yet at that moment.
Reads the one layout Xvfb writes: a ZPixmap of 24 or 32 bits per pixel, true colour.
"""

import struct
import sys

from PIL import Image


def read_xwd(data: bytes) -> Image.Image:
    fields = struct.unpack(">25I", data[:100])
    header_size, _version, pixmap_format = fields[0], fields[1], fields[2]
    width, height, byte_order = fields[4], fields[5], fields[7]
    bits_per_pixel, bytes_per_line, colours = fields[11], fields[12], fields[19]
    if pixmap_format != 2 or bits_per_pixel not in (24, 32):
        raise ValueError(
            f"not a true-colour ZPixmap (format {pixmap_format}, {bits_per_pixel} bpp)"
        )
    start = header_size + 12 * colours
    pixels = data[start : start + height * bytes_per_line]
    raw = ("BGRX" if byte_order == 0 else "XRGB") if bits_per_pixel == 32 else "BGR"
    return Image.frombuffer("RGB", (width, height), pixels, "raw", raw, bytes_per_line, 1)


if __name__ == "__main__":
    with open(sys.argv[1], "rb") as file:
        read_xwd(file.read()).save(sys.argv[2])
