"""Shared fixtures: tiny seeded models built in code, saved once per test session."""

from __future__ import annotations

import os

import pytest

# Tests never reach the network; the hub libraries must not try.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny DreamClear model folder in our layout, as `dreamclear models create-tiny` makes."""
    from engine.models.tiny_components import build_tiny_components
    from engine.weights.components_io import save_components

    folder = tmp_path_factory.mktemp("models") / "tiny-dreamclear"
    save_components(build_tiny_components(seed=0), folder)
    return folder


@pytest.fixture(scope="session")
def tiny_sdxl_dir(tmp_path_factory):
    """A tiny random SDXL in diffusers layout, as `dreamclear genir tiny-base` writes it."""
    from engine.genir.tiny_base import save_tiny_sdxl

    return save_tiny_sdxl(tmp_path_factory.mktemp("models") / "tiny-sdxl", seed=0)


@pytest.fixture
def no_network(monkeypatch):
    """Hub downloads meet a machine without a network (and not in HF_HUB_OFFLINE mode)."""
    import socket

    from huggingface_hub import constants

    from engine.weights import hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    for name in hub.PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)

    def unreachable(address, timeout):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(hub.socket, "create_connection", unreachable)


@pytest.fixture(scope="session")
def make_finetune_run():
    """make(folder, base, pairs=2, **finetune): see `_make_finetune_run`."""
    return _make_finetune_run


def _make_finetune_run(folder, base, *, pairs: int = 2, **finetune):
    """A GenIR run on the tiny base with `pairs` 64 px pairs written directly (no SDEdit),
    its `finetune` section small enough for a CPU (overridden by `finetune`)."""
    import dataclasses

    import numpy as np
    from PIL import Image

    from engine.genir.config import load_config
    from engine.genir.pairs_stage import pair_files
    from engine.genir.run_folder import CONFIG_NAME, init_run
    from engine.typed_config import to_toml

    images = folder / "images"
    images.mkdir(parents=True)
    run = folder / "run"
    init_run(run, images=images, base_model=base, seed=1)
    rng = np.random.default_rng(0)
    for index in range(pairs):
        positive, negative, caption = pair_files(run, f"photo{index}.png")
        for path in (positive, negative, caption):
            path.parent.mkdir(parents=True, exist_ok=True)
        for path in (positive, negative):
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
        caption.write_text(f"a photo number {index}\n", encoding="utf-8")
    config = load_config(run / CONFIG_NAME)
    small = {
        "steps": 2,
        "batch_size": 2,
        "resolution": 64,
        "vectors_per_token": 2,
        "lora_rank": 4,
        "checkpoint_every": 1,
        **finetune,
    }
    config.finetune = dataclasses.replace(config.finetune, **small)
    (run / CONFIG_NAME).write_text(to_toml(config), encoding="utf-8")
    return run
