"""Tiny training runs on a few small photos, in temporary folders."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from dreamclear_studio_resources import resource_path
from trainer.config import TrainConfig, load_config

PHOTOS = resource_path("photos")
TRAIN_PHOTOS = ("aqua.jpg", "dune.jpg")
VALIDATION_PHOTO = "bridge.jpg"


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a shared CPU the OpenMP spin-waits of two
    threads make a step several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def photos_dir(tmp_path_factory) -> Path:
    """Three bundled photos shrunk to 160 px high (two to train on, one held out), a corrupt
    file and a photo too small to crop: both must be skipped with a warning."""
    folder = tmp_path_factory.mktemp("photos")
    for name in (*TRAIN_PHOTOS, VALIDATION_PHOTO):
        with Image.open(PHOTOS / name) as image:
            image.thumbnail((1024, 160))
            image.save(folder / name, quality=95)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    Image.new("RGB", (20, 20)).save(folder / "tiny.png")
    return folder


def write_config(folder: Path, text: str) -> Path:
    path = folder / "train.toml"
    path.write_text(text, encoding="utf-8")
    return path


def starter_config(
    photos_dir: Path, output_dir: Path, max_steps: int = 6, checkpoint_every: int = 2
) -> TrainConfig:
    """A starter run small enough for a few steps a second on one CPU core."""
    text = f"""
task = "starter"
max_steps = {max_steps}
seed = 3

[data]
photos = "{photos_dir}"
validation_photos = ["{VALIDATION_PHOTO}"]
crop_min = 32
crop_max = 48
batch_size = 2
samples_per_epoch = 6

[optimisation]
learning_rate = 1e-3

[checkpointing]
output_dir = "{output_dir}"
checkpoint_every = {checkpoint_every}
keep_last = 2

[validation]
every = 4
num_images = 1
crop = 64

[starter]
num_feat = 8
num_block = 1
estimator_channels = 8
"""
    return load_config(write_config(output_dir.parent, text))


@pytest.fixture(scope="session")
def make_starter_config(photos_dir, tmp_path_factory):
    """make(name, max_steps=N, checkpoint_every=M): the config of run `name` (same name, same
    folder), also written to `<run folder>/train.toml` for the command line."""
    folders: dict[str, Path] = {}

    def make(name: str = "run", **settings) -> TrainConfig:
        if name not in folders:
            folders[name] = tmp_path_factory.mktemp(name)
        return starter_config(photos_dir, folders[name] / "out", **settings)

    return make
