"""Fixtures for the weights tests: a store in a temporary folder, small fake weight files
(right keys and layouts, a few bytes of tensors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.weights.store import ModelStore


def write_dreamclear_pth(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "base_model.x_embedder.proj.weight": torch.zeros(2, 2),
        "controlnet_lq.0.copied_block.attn.qkv.weight": torch.zeros(2, 2),
        "am_lq.0.gate.0.weight": torch.zeros(2),
    }
    torch.save({"state_dict": state}, path)
    return path


def tiny_swinir():
    """A DiffBIR-like SwinIR (pixel-unshuffle 8, same-size output), about 0.2 M parameters."""
    from engine.models.published_sizes import diffbir_swinir

    torch.manual_seed(0)
    return diffbir_swinir(embed_dim=12, depths=[1], num_heads=[2]).eval()


def write_swinir_ckpt(path: Path) -> Path:
    """The DiffBIR layout: Sequential(PixelUnshuffle, Conv2d) names, 'module.' prefixes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {}
    for key, value in tiny_swinir().state_dict().items():
        key = key.replace("conv_first.", "conv_first.1.")
        state[f"module.{key}"] = value
    torch.save({"state_dict": state}, path)
    return path


def write_vae_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL"}))
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(4)}, folder / "diffusion_pytorch_model.safetensors")
    return folder


def write_t5_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "t5"}))
    (folder / "spiece.model").write_bytes(b"fake")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(4)}, folder / "model.safetensors")
    return folder


@pytest.fixture
def store(tmp_path) -> ModelStore:
    return ModelStore(tmp_path / "store")


@pytest.fixture
def fakes():
    """The writers above, for tests: fakes.dreamclear_pth(path), fakes.swinir_ckpt(path)..."""

    class Fakes:
        dreamclear_pth = staticmethod(write_dreamclear_pth)
        swinir_ckpt = staticmethod(write_swinir_ckpt)
        vae_folder = staticmethod(write_vae_folder)
        t5_folder = staticmethod(write_t5_folder)
        swinir = staticmethod(tiny_swinir)

    return Fakes
