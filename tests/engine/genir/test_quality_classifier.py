"""The quality classifier: crops, save/load, the error without one, and that it learns an easy
sharp-vs-blurred split in a short fit."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from genir_runs import blurred, sharp_texture
from PIL import Image

from engine.errors import BadSettingError, CheckpointError
from engine.genir.quality_classifier import (
    ClassifierShape,
    QualityClassifier,
    grid_crops,
    image_pixels,
    load_classifier,
    predict,
    random_crops,
    save_classifier,
    to_batch,
)


def test_grid_crops_reach_the_corners_and_small_images_are_enlarged():
    pixels = np.arange(100 * 60 * 3, dtype=np.uint32).reshape(100, 60, 3).astype(np.uint8)
    crops = grid_crops(pixels, 32, 3)
    assert len(crops) == 9 and all(c.shape == (32, 32, 3) for c in crops)
    assert (crops[0] == pixels[:32, :32]).all() and (crops[-1] == pixels[-32:, -32:]).all()
    small = image_pixels(Image.new("RGB", (40, 20)), 64)
    assert min(small.shape[:2]) == 64 and small.shape[1] == 128
    rng = np.random.default_rng(0)
    assert to_batch(random_crops(pixels, 16, 4, rng)).shape == (4, 3, 16, 16)


def test_save_then_load_gives_the_same_probabilities(tmp_path):
    torch.manual_seed(0)
    model = QualityClassifier(8).eval()
    shape = ClassifierShape(width=8, crop=32, grid=2)
    save_classifier(
        tmp_path / "classifier", model, shape, validation={"accuracy": 0.75}, settings={"a": 1}
    )
    info = json.loads((tmp_path / "classifier" / "quality_classifier.json").read_text())
    assert info["validation"]["accuracy"] == 0.75 and info["crop"] == 32
    loaded = load_classifier(tmp_path)
    image = sharp_texture(3)
    assert loaded.probability(image) == pytest.approx(predict(model, shape, image), abs=1e-6)
    assert 0.0 <= loaded.probability(image) <= 1.0


def test_a_run_without_a_classifier_names_the_train_command(tmp_path):
    with pytest.raises(BadSettingError) as error:
        load_classifier(tmp_path)
    assert "--task quality-classifier" in error.value.hint
    folder = tmp_path / "classifier"
    folder.mkdir()
    (folder / "quality_classifier.json").write_text('{"kind": "other"}')
    (folder / "quality_classifier.safetensors").write_bytes(b"x")
    with pytest.raises(CheckpointError):
        load_classifier(tmp_path)


def test_learns_sharp_against_blurred_in_a_short_fit():
    torch.manual_seed(0)
    shape = ClassifierShape(width=8, crop=32, grid=2)
    model = QualityClassifier(shape.width)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    train = [sharp_texture(s) for s in range(12)]
    for _ in range(60):
        crops, labels = [], []
        for image in rng.choice(len(train), 4, replace=False):
            for pixels, label in (
                (np.asarray(train[image]), 1.0),
                (np.asarray(blurred(train[image])), 0.0),
            ):
                crops += random_crops(pixels, shape.crop, 2, rng)
                labels += [label, label]
        loss = F.binary_cross_entropy_with_logits(model(to_batch(crops)), torch.tensor(labels))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    held_out = [sharp_texture(s) for s in range(50, 60)]
    correct = sum(predict(model, shape, image) >= 0.5 for image in held_out)
    correct += sum(predict(model, shape, blurred(image)) < 0.5 for image in held_out)
    assert correct / 20 >= 0.9
