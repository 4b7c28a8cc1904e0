"""Stage 2's samples and status, without a model: prompts, crops, size conditioning, and
what `genir status` reads from RUN/finetune."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from engine.errors import BadSettingError
from engine.genir.finetune_data import DualPromptPairs, pair_samples, resize_and_crop
from engine.genir.pairs_stage import pair_files
from engine.genir.run_folder import run_status
from engine.genir.tiny_base import build_byte_level_tokenizer

POSITIVE, NEGATIVE = ["<genir-pos-0>"], ["<genir-neg-0>"]


def _pairs(run, count: int = 2, size=(96, 80)) -> None:
    for index in range(count):
        positive, negative, caption = pair_files(run, f"p{index}.png")
        for path in (positive, negative, caption):
            path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (index * 50, 0, 0)).save(positive)
        Image.new("RGB", size, (0, index * 50, 0)).save(negative)
        caption.write_text(f"scene {index}\n")


def test_each_pair_gives_a_positive_and_a_negative_sample(run):
    _pairs(run)
    samples = pair_samples(run, POSITIVE, NEGATIVE)
    assert [(s.prompt, s.positive) for s in samples] == [
        ("<genir-pos-0>, scene 0", True),
        ("<genir-neg-0>, scene 0", False),
        ("<genir-pos-0>, scene 1", True),
        ("<genir-neg-0>, scene 1", False),
    ]
    assert all(s.image.parent.name == ("positive" if s.positive else "negative") for s in samples)


def test_no_pairs_is_a_clear_error(run):
    with pytest.raises(BadSettingError, match="no pairs") as raised:
        pair_samples(run, POSITIVE, NEGATIVE)
    assert "genir pairs" in raised.value.hint


def test_samples_are_a_function_of_seed_epoch_and_index(run):
    _pairs(run)
    tokenizers = (build_byte_level_tokenizer("<|endoftext|>"), build_byte_level_tokenizer("!"))
    data = DualPromptPairs(pair_samples(run, POSITIVE, NEGATIVE), tokenizers, 64, seed=3)
    first = [data[i] for i in range(len(data))]
    again = [data[i] for i in range(len(data))]
    for a, b in zip(first, again, strict=True):
        assert all(torch.equal(a[key], b[key]) for key in a)
    assert sorted(int(s["positive"]) for s in first) == [0, 0, 1, 1]  # each sample once
    data.set_epoch(1)  # another order and other crops

    def summary(samples):
        return [(s["input_ids"].tolist(), s["time_ids"].tolist()) for s in samples]

    assert summary(data[i] for i in range(len(data))) != summary(first)
    sample = first[0]
    assert sample["pixels"].shape == (3, 64, 64)
    assert float(sample["pixels"].min()) >= -1.0 and float(sample["pixels"].max()) <= 1.0
    # Original (h, w) = (80, 96); shorter side 80 -> 64, so the resized width is 77.
    height, width, top, left, target_h, target_w = sample["time_ids"].tolist()
    assert (height, width, target_h, target_w) == (80, 96, 64, 64)
    assert top == 0 and 0 <= left <= 77 - 64


def test_the_crop_reports_its_top_left():
    pixels = np.zeros((40, 100, 3), dtype=np.uint8)
    pixels[:, 60:] = 255
    image = Image.fromarray(pixels)
    crop, (top, left) = resize_and_crop(image, 40, np.random.default_rng(1))
    assert top == 0
    white = (crop[0] > 0).float().mean(dim=0)  # per column
    assert torch.equal(white > 0.5, torch.arange(40) + left >= 60)


def test_status_reads_the_finetune_folder(run):
    _pairs(run)
    marker = run / "finetune" / "train" / "checkpoints" / "checkpoint_0" / "trainer-state.json"
    marker.parent.mkdir(parents=True)
    marker.write_text(json.dumps({"step": 5, "batches_seen": 5}))
    status = run_status(run)
    assert status.stage == "finetune (partial)"
    assert status.counts["finetune steps done"] == 5
    assert status.counts["finetune exported"] == 0
    (run / "finetune" / "learned_prompts.json").write_text("{}")
    status = run_status(run)
    assert status.stage == "finetune" and status.counts["finetune exported"] == 1
