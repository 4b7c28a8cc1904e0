"""The generator states a checkpoint keeps survive their trip through JSON exactly."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from engine.errors import CheckpointError
from trainer.training_state import reading, rng_state, set_rng_state


def draws() -> tuple[float, ...]:
    return (
        random.random(),
        random.gauss(0.0, 1.0),
        float(np.random.rand()),
        float(np.random.randn()),
        float(torch.rand(())),
    )


def test_generator_states_round_trip_through_json():
    draws()  # leaves a cached gaussian in Python's and NumPy's generators
    state = json.loads(json.dumps(rng_state()))
    expected = draws()
    draws()
    set_rng_state(state)
    assert draws() == expected


def test_a_malformed_state_names_its_file(tmp_path):
    path = tmp_path / "random_states_0.json"
    with (
        pytest.raises(CheckpointError, match=r"random_states_0\.json") as caught,
        reading(path, "the generator states"),
    ):
        set_rng_state({"python": [1, 2]})
    assert "--resume" in caught.value.hint
