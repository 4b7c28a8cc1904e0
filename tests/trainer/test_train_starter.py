"""The starter task trains, validates, checkpoints and exports loadable weights."""

from __future__ import annotations

import logging

import pytest
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
from trainer.config import ConfigError
from trainer.loop import train
from trainer.tasks import build_task


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
    with caplog.at_level(logging.WARNING, logger="trainer.photos"):
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


def test_validation_reports_estimator_rank_correlation_from_the_start(make_starter_config):
    config = make_starter_config("spearman", max_steps=2)
    config.validation.at_start = True
    train(config)
    rows = read_csv(config.checkpointing.output_dir / "validation" / "metrics.csv")
    assert [int(row["step"]) for row in rows] == [0, 2]
    for channel in STARTER_CHANNELS:
        assert -1.0 <= float(rows[-1][f"spearman_{channel}"]) <= 1.0


def test_estimator_only_fine_tune_keeps_the_restorer(make_starter_config):
    base = make_starter_config("base", max_steps=2)
    base_export = train(base)

    config = make_starter_config("estimator_only", max_steps=2)
    config.starter.init_from = base_export
    config.starter.train_restorer = False
    config.starter.estimator_context_layers = 0
    export = train(config)

    # The restorer is the one it started from; the estimator started there too, then trained.
    torch.testing.assert_close(
        load_file(export / "restorer.safetensors"),
        load_file(base_export / "restorer.safetensors"),
    )
    started = DegradationEstimator.from_pretrained(base_export / "estimator").state_dict()
    tuned = DegradationEstimator.from_pretrained(export / "estimator").state_dict()
    assert any(not torch.equal(started[key], tuned[key]) for key in started)
    losses = read_csv(config.checkpointing.output_dir / "losses.csv")
    assert "l1" not in losses[0] and float(losses[0]["map_mse"]) > 0


def test_restorer_only_fine_tune_keeps_the_estimator_and_skips_its_data(make_starter_config):
    base_export = train(make_starter_config("base_r", max_steps=2))

    config = make_starter_config("restorer_only", max_steps=2)
    config.starter.init_from = base_export
    config.starter.train_estimator = False
    task_data = build_task(config).train_dataset()[0]
    assert "lq" in task_data and "lq_varying" not in task_data
    export = train(config)

    started = DegradationEstimator.from_pretrained(base_export / "estimator").state_dict()
    kept = DegradationEstimator.from_pretrained(export / "estimator").state_dict()
    assert all(torch.equal(started[key], kept[key]) for key in started)
    assert any(
        not torch.equal(a, b)
        for a, b in zip(
            load_file(base_export / "restorer.safetensors").values(),
            load_file(export / "restorer.safetensors").values(),
            strict=True,
        )
    )
    losses = read_csv(config.checkpointing.output_dir / "losses.csv")
    assert "map_mse" not in losses[0] and float(losses[0]["l1"]) > 0


def test_init_from_a_model_of_other_sizes_names_the_field(make_starter_config):
    base_export = train(make_starter_config("small", max_steps=1))
    config = make_starter_config("wider", max_steps=1)
    config.starter.init_from = base_export
    config.starter.num_feat = 16
    with pytest.raises(ConfigError, match=r"starter\.init_from"):
        train(config)


def test_estimator_context_layers_export_and_reload(make_starter_config):
    config = make_starter_config("context", max_steps=1)
    config.starter.estimator_context_layers = 2
    export = train(config)
    estimator = DegradationEstimator.from_pretrained(export / "estimator")
    assert estimator.config.context_layers == 2
    with torch.no_grad():
        assert estimator(torch.rand(1, 3, 64, 64)).shape == (1, len(STARTER_CHANNELS), 4, 4)


def test_max_minutes_stops_early_with_a_checkpoint_and_an_export(make_starter_config):
    config = make_starter_config("timed", max_steps=1000)
    config.max_minutes = 1e-4  # 6 ms: over after the first step
    export = train(config)
    out = config.checkpointing.output_dir
    steps = [int(row["step"]) for row in read_csv(out / "losses.csv")]
    assert steps == [1]
    assert [checkpoints.read_marker(f)["step"] for f in checkpoints.complete_checkpoints(out)] == [
        1
    ]
    assert [int(row["step"]) for row in read_csv(out / "validation" / "metrics.csv")] == [1]
    assert (export / "restorer.safetensors").is_file()


def test_estimator_learning_rate_is_its_own_optimiser_group(make_starter_config):
    from trainer.loop import build_optimizer
    from trainer.tasks import build_task

    config = make_starter_config("rates", max_steps=1)
    config.starter.estimator_learning_rate = 3e-3
    task = build_task(config)
    restorer, estimator = models = task.build(torch.device("cpu"))
    optimizer = build_optimizer(config, task, models)
    rates = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    assert {rates[id(p)] for p in restorer.parameters()} == {1e-3}
    assert {rates[id(p)] for p in estimator.parameters()} == {3e-3}


def _ema_run(make_starter_config, name: str, max_steps: int):
    config = make_starter_config(name, max_steps=max_steps)
    config.starter.ema_decay = 0.5
    return config


def test_weight_average_is_exported_and_resumes_exactly(make_starter_config):
    straight = _ema_run(make_starter_config, "ema_straight", 4)
    export = train(straight)
    last = checkpoints.complete_checkpoints(straight.checkpointing.output_dir)[-1]
    trained, averaged = (
        load_file(last / name) for name in ("model.safetensors", "model_2.safetensors")
    )
    exported = load_file(export / "restorer.safetensors")
    torch.testing.assert_close(exported, averaged)
    assert any(not torch.equal(trained[key], averaged[key]) for key in trained)

    train(_ema_run(make_starter_config, "ema_split", 2))
    split = _ema_run(make_starter_config, "ema_split", 4)
    resumed = train(split, resume="latest")
    torch.testing.assert_close(load_file(resumed / "restorer.safetensors"), exported)


def test_estimator_only_data_skips_the_standard_degradation(photos_dir):
    from trainer.data import DegradedCrops
    from trainer.photos import load_photos

    photos = load_photos(photos_dir, min_side=48)
    kwargs = dict(crop_min=48, crop_max=48, scale=4, seed=0, samples_per_epoch=2)
    both = DegradedCrops(photos, spatially_varying=True, **kwargs)[0]
    varying_only = DegradedCrops(photos, spatially_varying=True, standard=False, **kwargs)[0]
    assert "lq" in both and "lq" not in varying_only
    # The spatially varying draw does not depend on whether the standard one was made.
    assert torch.equal(both["lq_varying"], varying_only["lq_varying"])


def test_init_from_a_folder_without_weights_names_the_field(make_starter_config, tmp_path):
    config = make_starter_config("empty_init", max_steps=1)
    config.starter.init_from = tmp_path
    with pytest.raises(ConfigError, match=r"starter\.init_from.*restorer"):
        train(config)
    assert not checkpoints.complete_checkpoints(config.checkpointing.output_dir)


def test_the_progress_bar_counts_to_the_time_budget_not_max_steps(make_starter_config, capfd):
    config = make_starter_config("bar", max_steps=1_000_000)
    config.max_minutes = 0.03  # about 2 s
    train(config)
    bar = capfd.readouterr().err.replace("\r", "\n").splitlines()
    totals = [int(line.split("/")[1].split()[0]) for line in bar if "train starter" in line]
    assert totals and totals[-1] < 1_000_000


def test_clean_fraction_mixes_in_crops_that_are_only_downscaled(photos_dir):
    from engine.degradation.second_order import downscale_clean
    from trainer.data import DegradedCrops
    from trainer.photos import load_photos

    photos = load_photos(photos_dir, min_side=48)
    kwargs = dict(
        crop_min=48, crop_max=48, scale=4, seed=0, samples_per_epoch=12, spatially_varying=False
    )
    plain, none_clean, all_clean, half = (
        DegradedCrops(photos, **kwargs, **extra)
        for extra in ({}, {"clean_fraction": 0.0}, {"clean_fraction": 1.0}, {"clean_fraction": 0.5})
    )

    def is_clean(sample) -> bool:
        return torch.equal(sample["lq"], downscale_clean(sample["hq"], 4))

    # 0 keeps the sample stream of runs made before the option existed.
    assert all(torch.equal(plain[i]["lq"], none_clean[i]["lq"]) for i in range(12))
    assert not any(is_clean(plain[i]) for i in range(12))
    assert all(is_clean(all_clean[i]) for i in range(12))
    kinds = [is_clean(half[i]) for i in range(12)]
    assert any(kinds) and not all(kinds)
