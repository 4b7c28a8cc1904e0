"""Tiny seeded components for the pipeline tests (CPU, float32), and a random starter."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from engine.models.starter import (
    DegradationEstimator,
    build_compact_restorer,
    build_starter_restorer,
)
from engine.models.tiny_components import build_tiny_components
from engine.pipelines.restore import DreamClearRestorePipeline
from engine.weights import starter_io


@pytest.fixture(scope="module")
def components():
    return build_tiny_components(seed=0)


@pytest.fixture
def pipe(components):
    return DreamClearRestorePipeline.from_components(components)


@pytest.fixture(scope="module")
def starter_dir(tmp_path_factory):
    """A randomly initialised starter (restorer and estimator) saved in the bundled layout."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("starter")
    restorer = build_starter_restorer(num_feat=8, num_block=1)
    save_file({k: v.contiguous() for k, v in restorer.state_dict().items()},
              folder / starter_io.RESTORER_FILE)  # fmt: skip
    DegradationEstimator(channels=8, num_layers=1).save_pretrained(
        folder / starter_io.ESTIMATOR_FOLDER
    )
    return folder


@pytest.fixture(scope="module")
def compact_starter_dir(tmp_path_factory):
    """A randomly initialised v2 starter (Compact x4 restorer, estimator), bundled layout."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("compact-starter")
    restorer = build_compact_restorer(num_feat=8, num_conv=2, scale=4)
    save_file({k: v.contiguous() for k, v in restorer.state_dict().items()},
              folder / starter_io.RESTORER_FILE)  # fmt: skip
    DegradationEstimator(channels=8, num_layers=1).save_pretrained(
        folder / starter_io.ESTIMATOR_FOLDER
    )
    return folder


@pytest.fixture
def gate_saying():
    """`gate_saying(logit)`: a starter gate whose every weight is sigmoid(decisiveness x logit)."""
    from engine.models.expert_gate import ExpertGate

    def make(logit: float) -> ExpertGate:
        gate = ExpertGate()
        with torch.no_grad():
            gate.head.weight.zero_()
            gate.head.bias.fill_(logit)
        return gate

    return make
