"""The starter-gate task: a gate trained over two frozen restorers, exported beside them."""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.models.damage_features import DAMAGE_FEATURES, V2_FEATURE_COUNT
from engine.models.expert_gate import ExpertGate, GatedRestorer
from engine.models.starter import build_compact_restorer
from engine.pipelines.color_fix import wavelet_color_fix
from engine.pipelines.strength import upscale_input
from engine.restorers import load_restorer
from engine.weights import starter_io
from trainer.config import ConfigError, apply_overrides
from trainer.loop import train
from trainer.tasks.starter_gate import StarterGateTask, export_gate


@pytest.fixture
def experts_dir(tmp_path):
    """Two random Compact x4 restorers, the all-round and the gentle one."""
    folder = tmp_path / "experts"
    folder.mkdir()
    for seed, name in ((0, starter_io.RESTORER_FILE), (1, starter_io.GENTLE_RESTORER_FILE)):
        torch.manual_seed(seed)
        state = build_compact_restorer(num_feat=8, num_conv=2, scale=4).state_dict()
        save_file({k: v.contiguous() for k, v in state.items()}, folder / name)
    return folder


def _gate_config(make_starter_config, name, experts_dir, **settings):
    config = make_starter_config(name, **settings)
    config.task = "starter-gate"
    config.starter_gate.experts_from = experts_dir
    config.starter_gate.standardisation_crops = 4
    config.data.clean_fraction, config.data.single_stage_fraction = 0.3, 0.3
    return apply_overrides(config)


def test_the_gate_trains_over_frozen_experts_and_exports_beside_them(
    make_starter_config, experts_dir
):
    before = {p.name: load_file(p) for p in experts_dir.glob("*.safetensors")}
    config = _gate_config(make_starter_config, "gate", experts_dir, max_steps=4)
    export = train(config)

    out = config.checkpointing.output_dir
    header, *rows = (out / "losses.csv").read_text().splitlines()
    assert header.split(",") == ["step", "loss", "regret_db", "heavy_weight", "heavy_better"]
    assert len(rows) == 4
    metrics = (out / "validation" / "metrics.csv").read_text().splitlines()
    assert {"psnr_y", "psnr_y_gentle", "psnr_y_heavy", "heavy_weight"} <= set(metrics[0].split(","))
    # Only the gate trained: the experts' files are untouched and the gate moved between its
    # checkpoints (steps 2 and 4).
    for name, state in before.items():
        after = load_file(experts_dir / name)
        assert all(torch.equal(state[key], after[key]) for key in state)
    step_2, step_4 = (
        load_file(out / "checkpoints" / f"checkpoint_{i}" / "model.safetensors") for i in (0, 1)
    )
    assert any(not torch.equal(step_2[key], step_4[key]) for key in step_2)
    trained = ExpertGate.from_pretrained(export / starter_io.GATE_FOLDER)
    assert not torch.equal(trained.feature_std, torch.ones_like(trained.feature_std))

    # Copied beside the experts (with an estimator), the folder is a gated starter the engine runs.
    shutil.copytree(export / starter_io.GATE_FOLDER, experts_dir / starter_io.GATE_FOLDER)
    pipe = load_restorer(str(experts_dir), device="cpu").pipeline
    assert isinstance(pipe.restorer, GatedRestorer)
    assert pipe(torch.rand(1, 3, 20, 24), upscale=4).image.shape == (1, 3, 80, 96)


def test_a_resumed_gate_run_continues_from_its_checkpoint(make_starter_config, experts_dir):
    config = _gate_config(make_starter_config, "gate_resume", experts_dir, max_steps=2)
    train(config)
    config = _gate_config(make_starter_config, "gate_resume", experts_dir, max_steps=4)
    train(config, resume="latest")
    rows = (config.checkpointing.output_dir / "losses.csv").read_text().splitlines()[1:]
    assert [int(row.split(",")[0]) for row in rows] == [1, 2, 3, 4]


def test_experts_from_must_hold_both_restorers(make_starter_config, experts_dir):
    (experts_dir / starter_io.GENTLE_RESTORER_FILE).unlink()
    with pytest.raises(ConfigError, match=r"starter_gate\.experts_from"):
        _gate_config(make_starter_config, "gate_bad", experts_dir)


def test_a_gate_with_every_statistic_and_a_hidden_layer_trains_and_exports_as_configured(
    make_starter_config, experts_dir, tmp_path
):
    config = _gate_config(make_starter_config, "gate_mlp", experts_dir, max_steps=2)
    config.starter_gate.features, config.starter_gate.hidden_units = len(DAMAGE_FEATURES), 8
    export = train(apply_overrides(config))
    gate = ExpertGate.from_pretrained(export / starter_io.GATE_FOLDER)
    assert gate.config.num_features == len(DAMAGE_FEATURES) and gate.hidden.out_features == 8
    # Exported again later, from its checkpoint alone: the sizes come from the run's saved
    # config, which is read as data (its experts folder may be gone by then).
    shutil.rmtree(experts_dir)
    again = export_gate(config.checkpointing.output_dir, tmp_path / "again")
    reloaded = ExpertGate.from_pretrained(again / starter_io.GATE_FOLDER)
    lq = torch.rand(2, 3, 24, 24)
    torch.testing.assert_close(reloaded(lq), gate(lq))


def test_a_v2_gate_run_keeps_its_eight_statistics_and_no_hidden_layer(
    make_starter_config, experts_dir
):
    export = train(_gate_config(make_starter_config, "gate_v2", experts_dir, max_steps=1))
    gate = ExpertGate.from_pretrained(export / starter_io.GATE_FOLDER)
    assert gate.config.num_features == V2_FEATURE_COUNT and gate.hidden is None


@pytest.mark.parametrize("features", [0, len(DAMAGE_FEATURES) + 1])
def test_a_feature_count_the_gate_lacks_is_the_configs_error(
    make_starter_config, experts_dir, features
):
    config = _gate_config(make_starter_config, "gate_bad_features", experts_dir, max_steps=1)
    config.starter_gate.features = features
    with pytest.raises(ConfigError, match=r"starter_gate\.features"):
        train(apply_overrides(config))


def test_the_gate_can_judge_the_gentle_restorer_colour_fixed_as_the_pipeline_shows_it(
    make_starter_config, experts_dir
):
    config = _gate_config(make_starter_config, "gate_fix", experts_dir, max_steps=1)
    config.starter_gate.gentle_color_fix = "wavelet"
    task = StarterGateTask(config)
    task.build(torch.device("cpu"))
    lq = torch.rand(2, 3, 12, 16)
    gentle, heavy = task.experts(lq)
    raw_gentle = task.gentle(lq).clamp(0, 1)
    expected = wavelet_color_fix(raw_gentle, upscale_input(lq, (48, 64)))
    torch.testing.assert_close(gentle, expected)
    assert not torch.allclose(gentle, raw_gentle, atol=1e-3)
    # The all-round restorer's result is judged raw: the pipeline keeps its own colours.
    torch.testing.assert_close(heavy, task.heavy(lq))


def test_an_earlier_gate_config_compares_the_raw_results(make_starter_config, experts_dir):
    config = _gate_config(make_starter_config, "gate_raw", experts_dir, max_steps=1)
    assert config.starter_gate.gentle_color_fix == "none"
    task = StarterGateTask(config)
    task.build(torch.device("cpu"))
    lq = torch.rand(1, 3, 12, 12)
    torch.testing.assert_close(task.experts(lq)[0], task.gentle(lq))


def test_a_colour_fix_the_engine_lacks_is_the_configs_error(make_starter_config, experts_dir):
    config = _gate_config(make_starter_config, "gate_bad_fix", experts_dir, max_steps=1)
    config.starter_gate.gentle_color_fix = "sepia"
    with pytest.raises(ConfigError, match=r"starter_gate\.gentle_color_fix"):
        train(apply_overrides(config))
