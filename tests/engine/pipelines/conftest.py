"""Tiny seeded components for the pipeline tests (CPU, float32)."""

from __future__ import annotations

import pytest

from engine.models.tiny_components import build_tiny_components
from engine.pipelines.restore import DreamClearRestorePipeline


@pytest.fixture(scope="module")
def components():
    return build_tiny_components(seed=0)


@pytest.fixture
def pipe(components):
    return DreamClearRestorePipeline.from_components(components)
