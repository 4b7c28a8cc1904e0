"""The clean-root test's picture of the set-up window: Xvfb's XWD screen file read as an image."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "installers" / "linux"))

from xwd_to_png import read_xwd  # noqa: E402  (a script's folder, not a package)


def test_a_true_colour_screen_file_is_read_pixel_for_pixel():
    width, height, line = 2, 2, 8
    name = b"screen\0"
    fields = [100 + len(name), 7, 2, 24, width, height, 0, 0, 32, 0, 32, 32, line, 4]
    fields += [0xFF0000, 0xFF00, 0xFF, 8, 256, 1, width, height, 0, 0, 0]
    colormap = bytes(12)
    # BGRX, least significant byte first: red, green / blue, white
    pixels = bytes([0, 0, 255, 0, 0, 255, 0, 0, 255, 0, 0, 0, 255, 255, 255, 0])
    image = read_xwd(struct.pack(">25I", *fields) + name + colormap + pixels)
    assert image.size == (2, 2)
    assert [image.getpixel(xy) for xy in ((0, 0), (1, 0), (0, 1), (1, 1))] == [
        (255, 0, 0),
        (0, 255, 0),
        (0, 0, 255),
        (255, 255, 255),
    ]
