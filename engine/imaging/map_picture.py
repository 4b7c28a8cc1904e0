"""The picture of a degradation map (`NAME.map.png`): readable without the app.

The maps hold one value per token; the picture scales them up (nearest neighbour, so every
token stays a sharp block) to the output's aspect, with its long side between
`PICTURE_LONG_SIDE` pixels, and adds a legend strip below that names every channel, its colour
and its value scale. The tokens cover the whole output: token (row, col) spans output rows
[row * H / th, (row + 1) * H / th), as the desktop's overlay reads them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PICTURE_LONG_SIDE = (512, 1024)
"""The picture's long side: at least the first (small outputs are enlarged), at most the
second (large ones are reduced)."""
COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}
ROW_PX = 20
MIN_LEGEND_WIDTH = 480
BACKGROUND = (32, 32, 32)
TEXT = (235, 235, 235)

LegendRow = tuple[str | None, str]
"""(colour name or None for a channel not in the colours, what it shows and its scale)."""


def picture_size(height: int, width: int) -> tuple[int, int]:
    low, high = PICTURE_LONG_SIDE
    long_side = max(height, width)
    scale = min(max(long_side, low), high) / long_side
    return max(1, round(height * scale)), max(1, round(width * scale))


def map_picture(
    rgb: np.ndarray, output_size: tuple[int, int], title: str, rows: Sequence[LegendRow]
) -> np.ndarray:
    """(th, tw, 3) in [0, 1] -> (h, w, 3) uint8: the tokens at the output's aspect over a
    legend strip with `title` and one line per row of `rows`."""
    tokens_h, tokens_w = rgb.shape[:2]
    height, width = picture_size(*output_size)
    rows_at = np.minimum((np.arange(height) + 0.5) * tokens_h / height, tokens_h - 1).astype(int)
    cols_at = np.minimum((np.arange(width) + 0.5) * tokens_w / width, tokens_w - 1).astype(int)
    tokens = (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)[rows_at][:, cols_at]

    canvas_w = max(width, MIN_LEGEND_WIDTH)
    strip_h = ROW_PX * (len(rows) + 1) + 8
    canvas = Image.new("RGB", (canvas_w, height + strip_h), BACKGROUND)
    canvas.paste(Image.fromarray(tokens, "RGB"), (0, 0))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=13)
    top = height + 4
    draw.text((6, top), title, fill=TEXT, font=font)
    for index, (colour, text) in enumerate(rows, start=1):
        y = top + index * ROW_PX
        if colour is not None:
            draw.rectangle((6, y + 2, 20, y + 16), fill=COLOURS[colour], outline=TEXT)
            text = f"{colour}: {text}"
        draw.text((28, y), text, fill=TEXT, font=font)
    return np.asarray(canvas)
