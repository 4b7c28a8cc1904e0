"""Tiny random upscalers of several spandrel architectures, saved as a user's files would be."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from engine.models.reference_upscalers import TINY_UPSCALERS, save_upscaler, tiny_upscaler


@pytest.fixture(scope="session")
def upscaler_files(tmp_path_factory) -> dict[str, Path]:
    """ "compact-x4.safetensors", "compact-x4.pth", ... for every tiny architecture."""
    folder = tmp_path_factory.mktemp("upscalers")
    files = {}
    for name in TINY_UPSCALERS:
        for suffix in (".safetensors", ".pth"):
            files[name + suffix] = save_upscaler(tiny_upscaler(name), folder / f"{name}{suffix}")
    return files


class Payload:
    """Stands for arbitrary code a malicious pickle would run."""

    def __reduce__(self):
        return (print, ("this pickle ran code",))


@pytest.fixture
def unsafe_pth(tmp_path) -> Path:
    """A real upscaler's tensors plus a pickled object: torch.load(weights_only=True) refuses."""
    state = tiny_upscaler("compact-x4").state_dict()
    path = tmp_path / "unsafe.pth"
    with path.open("wb") as file:
        torch.save({"params_ema": state, "extra": Payload()}, file, pickle_module=pickle)
    return path
