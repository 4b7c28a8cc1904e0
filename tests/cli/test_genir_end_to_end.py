"""GenIR end to end through the real command line, each verb its own process as a user runs
it: tiny-base, init, pairs, finetune, prompts, generate 8, the classifier, filter, export,
then `dreamclear train` two steps on the export; and `genir run` doing all of it in one call.

The stages were built apart and meet only here: each test would fail if one stage's output
stopped being what the next reads (learned tokens and LoRA into generation, generated images
into the filter, verdicts into the export, the export into the trainer).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.genir.config import load_config
from engine.typed_config import to_toml

ROOT = Path(__file__).resolve().parents[2]
IMAGES = 8


def dreamclear(*args: str | Path, timeout: int = 300) -> str:
    """Run `python -m dreamclear.cli ARGS` as a user would; its stdout (stderr on failure)."""
    # One torch thread: on a busy machine two spin-wait (docs/genir.md, "The tiny base").
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "dreamclear.cli", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{args}: {result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("e2e") / "base"
    assert "written to" in dreamclear("genir", "tiny-base", folder)
    return folder


def photos(folder: Path, count: int = 3) -> Path:
    """`count` 64 px positives, each with its caption in a sidecar NAME.txt."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        pixels = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"photo{index}.png")
        (folder / f"photo{index}.txt").write_text(f"a photo number {index}\n", encoding="utf-8")
    return folder


def new_run(tmp_path: Path, base: Path) -> Path:
    """`genir init`, then genir.toml made as small as a CPU test allows."""
    run = tmp_path / "run"
    dreamclear("genir", "init", run, "--images", photos(tmp_path / "photos"), "--base", base)
    config = load_config(run / "genir.toml")
    config.pairs = dataclasses.replace(config.pairs, size=64, min_side=64, steps=2)
    config.finetune = dataclasses.replace(
        config.finetune,
        steps=2,
        batch_size=2,
        resolution=64,
        vectors_per_token=2,
        lora_rank=4,
        sample_images=0,
    )
    config.prompts = dataclasses.replace(config.prompts, count=IMAGES)
    config.generation = dataclasses.replace(config.generation, resolution=64, steps=2)
    config.filter = dataclasses.replace(
        config.filter,
        quality_threshold=0.0,  # a two-step classifier decides nothing: every image passes
        max_faces=IMAGES,  # nor is a random model's noise what the face detector is tested on
        classifier_steps=2,
        classifier_batch_size=2,
        classifier_crop=32,
        classifier_width=8,
    )
    (run / "genir.toml").write_text(to_toml(config), encoding="utf-8")
    return run


def check_finished(run: Path) -> None:
    """Every stage done, each stage's files as the next one reads them."""
    learned = json.loads((run / "finetune" / "learned_prompts.json").read_text())
    assert learned["cross_attention"] == "lora" and len(learned["positive_tokens"]) == 2
    assert (run / "finetune" / "pytorch_lora_weights.safetensors").is_file()
    images = sorted((run / "generate" / "images").glob("*.png"))
    assert [p.name for p in images] == [f"{key:06d}.png" for key in range(IMAGES)]
    verdicts = [json.loads(line) for line in (run / "filter" / "verdicts.jsonl").open()]
    assert [v["key"] for v in verdicts] == list(range(IMAGES))
    assert all(v["accepted"] for v in verdicts)
    manifest = (run / "export" / "manifest.jsonl").read_text().splitlines()
    assert len(manifest) == IMAGES
    status = json.loads(dreamclear("genir", "status", run, "--json"))
    assert {s["name"]: s["state"] for s in status["stages"]} == {
        name: "done"
        for name in ("prompts", "pairs", "finetune", "generate", "classifier", "filter", "export")
    }
    assert status["next"] is None and status["stage_reached"] == "export"


@pytest.mark.slow
def test_every_verb_in_turn_then_train_two_steps_on_the_export(tmp_path, tiny_base):
    run = new_run(tmp_path, tiny_base)
    assert "3 pairs" in dreamclear("genir", "pairs", run)
    assert "exported to" in dreamclear("genir", "finetune", run)
    assert f"{IMAGES} prompts" in dreamclear("genir", "prompts", run)
    assert f"{IMAGES} of {IMAGES} images" in dreamclear("genir", "generate", run)
    dreamclear("train", run / "genir.toml", "--task", "quality-classifier")
    assert f"{IMAGES} of {IMAGES} images kept" in dreamclear("genir", "filter", run)
    starter = run / "export" / "train-starter.toml"
    assert f"dreamclear train {starter}" in dreamclear("genir", "export", run)
    check_finished(run)

    dreamclear("train", starter, "--max-steps", "2")
    assert (run / "train" / "export" / "restorer.safetensors").is_file()


@pytest.mark.slow
def test_genir_run_does_every_stage_of_a_fresh_run_in_one_call(tmp_path, tiny_base):
    run = new_run(tmp_path, tiny_base)
    out = dreamclear("genir", "run", run)
    assert out == "ran: prompts, pairs, finetune, generate, classifier, filter, export\n"
    check_finished(run)
    assert dreamclear("genir", "run", run) == "every stage was done already\n"
