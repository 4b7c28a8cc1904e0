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
