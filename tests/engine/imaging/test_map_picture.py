"""The `.map.png` picture: the output's aspect, sharp token blocks, a legend of every channel."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from engine.imaging.map_picture import PICTURE_LONG_SIDE, map_picture, picture_size
from engine.models.starter import STARTER_CHANNELS
from engine.pipelines.starter import StrengthMaps
from engine.restore_files import save_degradation_map


def test_small_outputs_are_enlarged_and_large_ones_reduced_keeping_the_aspect():
    assert picture_size(192, 96) == (512, 256)
    assert picture_size(4000, 3000) == (1024, 768)
    assert picture_size(700, 600) == (700, 600)


def test_tokens_become_sharp_blocks_over_a_legend_strip():
    rgb = np.zeros((2, 3, 3), np.float32)
    rgb[0, 0] = (1, 0, 0)  # the top-left token red
    rows = [("red", "blur"), ("green", "noise"), ("blue", "jpeg"), (None, "scale: not drawn")]
    picture = map_picture(rgb, (200, 300), "title", rows)
    height, width = picture_size(200, 300)
    assert (height, width) == (341, PICTURE_LONG_SIDE[0])
    body = picture[:height, :width]
    assert (body[: height // 2 - 1, : width // 3 - 1] == (255, 0, 0)).all()
    assert (body[height // 2 + 1 :, :] == 0).all()
    strip = picture[height:]
    assert strip.shape[0] >= 5 * 20  # the title and one line per channel
    assert (strip == (255, 0, 0)).all(axis=-1).any()  # the red swatch
    assert (strip == (0, 0, 255)).all(axis=-1).any()  # the blue swatch


def test_the_saved_starter_picture_lists_every_channel(tmp_path):
    strengths = torch.rand(len(STARTER_CHANNELS), 12, 8, generator=torch.Generator().manual_seed(0))
    maps = StrengthMaps(strengths, STARTER_CHANNELS)
    legend = maps.picture_legend
    assert [row[0] for row in legend] == ["red", "green", "blue", None]
    assert all(channel in text for channel, (_, text) in zip(STARTER_CHANNELS, legend, strict=True))
    assert all("0" in text and "1" in text for _, text in legend)  # the value scale
    save_degradation_map(maps, tmp_path / "photo_x4.png", overwrite=False, output_size=(192, 128))
    with Image.open(tmp_path / "photo_x4.map.png") as picture:
        width, height = picture.size
    assert width == 480 and height > 512  # 512 x 341 tokens widened for the legend, plus it
