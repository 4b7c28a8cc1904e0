"""The starter's map carries its estimator's measured Spearman per channel (validation.json),
so what cannot be read reliably is left out of the picture and hidden by the desktop."""

from __future__ import annotations

import json
import shutil

import numpy as np
import torch

from engine.pipelines.starter import MIN_MAP_SPEARMAN, StrengthMaps
from engine.restorers import load_restorer
from engine.weights import starter_io

MEASURED = {"noise": 0.945, "jpeg": 0.953, "scale": 0.41, "blur": -0.19}


def test_measured_channels_travel_into_the_map_file(starter_dir, tmp_path):
    folder = tmp_path / "starter"
    shutil.copytree(starter_dir, folder)
    (folder / starter_io.ESTIMATOR_FOLDER / starter_io.VALIDATION_FILE).write_text(
        json.dumps({"format": 1, "spearman_detail": MEASURED})
    )
    pipe = load_restorer(str(folder), device="cpu").pipeline
    maps = pipe(torch.rand(1, 3, 12, 16), upscale=4, return_maps=True).degradation_maps
    assert maps.shown == ("noise", "jpeg")
    arrays = maps.to_arrays()
    assert arrays["spearman"].tolist() == [
        np.float32(MEASURED[c]) for c in ("blur", "noise", "jpeg", "scale")
    ]
    assert float(arrays["min_spearman"]) == MIN_MAP_SPEARMAN
    # The picture draws noise and JPEG (red, green); blur's noise is not painted.
    rgb = maps.preview_rgb()
    np.testing.assert_allclose(rgb[..., 0], maps.strengths[1].numpy())
    assert not rgb[..., 2].any()
    legend = dict((text.split(" ")[0].rstrip(":"), colour) for colour, text in maps.picture_legend)
    assert legend["noise"] == "red" and legend["blur"] is None
    assert any("not shown" in text and "-0.19" in text for _, text in maps.picture_legend)


def test_an_unmeasured_estimator_shows_every_channel():
    maps = StrengthMaps(torch.rand(4, 2, 2), ("blur", "noise", "jpeg", "scale"))
    assert maps.shown == maps.channels
    assert set(maps.to_arrays()) == {"strengths", "channels", "token_size_px"}
