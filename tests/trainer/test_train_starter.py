"""The starter task trains, validates, checkpoints and exports loadable weights."""

from __future__ import annotations

import logging

import spandrel
import torch
from safetensors.torch import load_file

from engine.models.starter import (
    STARTER_CHANNELS,
    DegradationEstimator,
    build_starter_restorer,
)
from trainer import checkpoints
from trainer.checkpoints import read_csv
from trainer.loop import train


def test_restorer_is_spandrel_loadable_at_scale_one():
    torch.manual_seed(0)
    restorer = build_starter_restorer(num_feat=8, num_block=1).eval()
    descriptor = spandrel.ModelLoader().load_from_state_dict(restorer.state_dict())
    assert descriptor.scale == 1
    image = torch.rand(1, 3, 40, 56)
    with torch.no_grad():
        assert restorer(image).shape == image.shape
        torch.testing.assert_close(descriptor.model(image), restorer(image))


def test_estimator_shapes_and_range():
    estimator = DegradationEstimator(channels=8).eval()
    with torch.no_grad():
        maps = estimator(torch.rand(2, 3, 64, 40))
    assert maps.shape == (2, len(STARTER_CHANNELS), 4, 3)
    assert float(maps.min()) >= 0.0 and float(maps.max()) <= 1.0


def test_starter_trains_and_exports(make_starter_config, caplog):
    config = make_starter_config(max_steps=4)
    with caplog.at_level(logging.WARNING, logger="trainer.data"):
        export = train(config)
    # The corrupt file and the 20 px photo are skipped, with a count.
    assert "Skipped 2 of 4 photos" in caplog.text

    out = config.checkpointing.output_dir
    losses = read_csv(out / "losses.csv")
    assert [int(row["step"]) for row in losses] == [1, 2, 3, 4]
    metrics = read_csv(out / "validation" / "metrics.csv")
    assert [int(row["step"]) for row in metrics] == [4]
    assert {"psnr_y", "psnr_y_bicubic", "map_mae"} <= set(metrics[0])
    assert (out / "validation" / "step_000004" / "bridge.png").is_file()
    # keep_last = 2 of the checkpoints at steps 2 and 4; each carries the config.
    kept = checkpoints.complete_checkpoints(out)
    assert [checkpoints.read_marker(folder)["step"] for folder in kept] == [2, 4]
    assert all((folder / "train-config.toml").is_file() for folder in kept)

    state = load_file(export / "restorer.safetensors")
    descriptor = spandrel.ModelLoader().load_from_state_dict(state)
    assert descriptor.scale == 1
    trained = load_file(kept[-1] / "model.safetensors")
    torch.testing.assert_close(
        descriptor.model.state_dict()["model.0.weight"], trained["model.0.weight"]
    )
    estimator = DegradationEstimator.from_pretrained(export / "estimator")
    assert estimator.config.channels == 8
    assert (export / "train-config.toml").is_file()
