"""GenIR tests: run folders in temporary folders; one torch thread for the tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.genir.run_folder import init_run


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Two threads' OpenMP spin-waits make a tiny SDXL step about ten times slower on a busy
    machine (measured: 0.05 s against 0.1 to 1.1 s for a 2-step 64 px generation)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def images(tmp_path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("a.png", "b.JPG", "notes.txt"):
        (folder / name).write_bytes(b"x")
    return folder


@pytest.fixture
def base(tmp_path) -> Path:
    """A folder that looks like a diffusers model (only the config is checked)."""
    folder = tmp_path / "base"
    folder.mkdir()
    (folder / "model_index.json").write_text("{}")
    return folder


@pytest.fixture
def run(tmp_path, images, base) -> Path:
    folder = tmp_path / "run"
    init_run(folder, images=images, base_model=base, seed=5)
    return folder
