"""The DreamClear stage harness at tiny size on the CPU: every stage reported, JSON shape."""

from __future__ import annotations

import json

import pytest
import torch

from engine.bench import stage_report, stages


@pytest.fixture(scope="module")
def report():
    config = stages.HarnessConfig(
        size="tiny",
        resolutions=(64,),
        runs=(stages.RunSpec("iddpm", 2), stages.RunSpec("dpm++", 1)),
        published_load=True,
    )
    return stages.run(config)


def test_every_stage_of_both_arrangements_is_timed(report):
    assert [(r.arrangement, r.sampler, r.steps) for r in report.runs] == [
        ("ours", "iddpm", 2),
        ("ours", "dpm++", 1),
        ("published", "iddpm", 2),
        ("published", "dpm++", 1),
    ]
    for run in report.runs:
        assert set(run.stages) == set(stages.STAGES)
        assert run.stages["denoise step"].calls == run.steps
        assert all(row.seconds > 0 and row.peak_bytes > 0 for row in run.stages.values())
        assert 0 < run.first_step_seconds <= run.stages["denoise step"].seconds
        assert run.total_seconds >= sum(row.seconds for row in run.stages.values()) * 0.9
    assert report.runs[0].resolution == 64


def test_ours_loads_bf16_from_the_saved_folder_with_t5_on_the_cpu(report):
    ours, published = report.loads
    assert (ours.arrangement, published.arrangement) == ("ours", "published")
    assert ours.transformer_dtype == "bfloat16" and published.transformer_dtype == "float32"
    assert ours.text_encoder_device == "cpu"
    assert set(ours.parts) == {"transformer", "vae", "text encoder", "remover"}
    assert ours.transformer_bytes * 2 == published.transformer_bytes
    assert ours.seconds > 0 and ours.peak_bytes > 0


def test_report_is_json_and_a_table(report):
    data = json.loads(json.dumps(report.to_json()))
    assert set(data) == {"config", "machine", "transformer_parameters", "notes", "loads", "runs"}
    run = data["runs"][0]
    assert set(run["stages"]["remover"]) == {"seconds", "calls", "peak_bytes", "cpu_seconds"}
    assert {"first_step_seconds", "mean_step_seconds", "peak_bytes"} <= set(run)
    table = stage_report.format_report(report)
    assert "| ours | 64 | iddpm:2 |" in table and "| published | 64 | dpm++:1 |" in table


def test_separate_cfg_and_math_attention_give_the_batched_sdpa_result():
    """The harness's comparison switches change the speed, not the restore."""
    from engine.models.tiny_components import build_tiny_components
    from engine.pipelines.restore import DreamClearRestorePipeline

    pipeline = DreamClearRestorePipeline.from_components(build_tiny_components())
    image = stages.input_image(64, 4)
    results = {}
    for cfg, attention in (("batched", "auto"), ("separate", "auto"), ("batched", "math")):
        config = stages.HarnessConfig(cfg=cfg, attention=attention)
        meter = stages.StageMeter("cpu")
        with torch.inference_mode(), stages._instrumented(pipeline, meter, config, False):
            results[cfg, attention] = pipeline(
                image,
                upscale=4,
                min_short_side=0,
                num_inference_steps=2,
                caption="none",
                generator=torch.Generator().manual_seed(0),
                callback_on_step_end=lambda *a, meter=meter: meter.close("denoise step"),
            ).image
    reference = results["batched", "auto"]
    for key, image in results.items():
        torch.testing.assert_close(image, reference, atol=1e-5, rtol=0, msg=str(key))


@pytest.mark.slow
def test_compile_runs_at_tiny_size():
    report = stages.run(
        stages.HarnessConfig(
            resolutions=(64,),
            runs=(stages.RunSpec("iddpm", 2),),
            arrangements=("ours",),
            compile=True,
        )
    )
    assert report.runs[0].stages["denoise step"].calls == 2


def test_targets_table_reads_the_reports(report):
    from engine.bench import targets

    data = report.to_json()
    table = targets.format_targets(data, data)
    assert "Tiny size" in table
    assert "| 64 px x4, 2 iDDPM steps, end to end (model loaded) | <= 6 s |" in table
    assert "1-step DPM-Solver++" in table and "peak VRAM, 64 px output / 64 px" in table
    assert "model load" in table and "Our load by part: transformer" in table


def test_cli_writes_the_table_and_json(tmp_path, capsys):
    from dreamclear.cli import main

    path = tmp_path / "stages.json"
    argv = ["bench", "stages", "--resolution", "64", "--steps", "iddpm:1"]
    assert main([*argv, "--arrangements", "ours", "--json", str(path)]) == 0
    assert "| ours | 64 | iddpm:1 |" in capsys.readouterr().out
    assert json.loads(path.read_text())["runs"][0]["steps"] == 1


@pytest.mark.parametrize("steps", ["ddim:20", "iddpm:0", "iddpm"])
def test_cli_refuses_bad_step_lists(steps, capsys):
    from dreamclear.cli import main

    with pytest.raises(SystemExit):
        main(["bench", "stages", "--steps", steps])
    assert "SAMPLER:STEPS" in capsys.readouterr().err


def test_gpu_check_script_parses_its_arguments():
    import subprocess

    script = "scripts/gpu_check.sh"
    assert "--dry-run" in subprocess.run([script, "--help"], capture_output=True, text=True).stdout
    bad = subprocess.run([script, "--bogus"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown argument" in bad.stderr


def test_random_t5_is_made_on_meta_and_filled_in_bf16():
    """The path that builds T5-XXL's encoder without 19 GB of fp32, at a small size."""
    from transformers import T5Config

    from engine.bench.stage_models import T5_XXL, random_t5

    config = T5Config(
        **{**T5_XXL, "d_model": 64, "d_ff": 128, "num_layers": 2, "num_heads": 4, "d_kv": 16}
    )
    encoder = random_t5(config, torch.bfloat16)
    assert encoder.dtype == torch.bfloat16 and encoder.device.type == "cpu"
    embeddings, mask = encoder(["a photo of a house"])
    assert embeddings.shape == (1, 120, 64) and bool(torch.isfinite(embeddings).all())
    assert int(mask.sum()) == 6
