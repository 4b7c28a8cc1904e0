"""The learning-rate schedule: a cosine decay to a floor from a chosen step, a pure function of
the step, so a resumed run or a new phase of a run folder lands on the rate its config says."""

from __future__ import annotations

import itertools
import math

import pytest

from trainer.config import ConfigError, OptimisationConfig, validate
from trainer.loop import Trainer
from trainer.lr_schedule import learning_rate_factor


def test_cosine_falls_from_the_set_rate_to_its_floor_after_the_decay_start():
    opt = OptimisationConfig(schedule="cosine", decay_from_step=100, final_learning_rate_ratio=0.1)
    assert learning_rate_factor(opt, 0, 300) == 1.0
    assert learning_rate_factor(opt, 100, 300) == 1.0
    assert learning_rate_factor(opt, 200, 300) == pytest.approx(0.55)  # halfway: (1 + 0.1) / 2
    assert learning_rate_factor(opt, 300, 300) == pytest.approx(0.1)
    assert learning_rate_factor(opt, 400, 300) == pytest.approx(0.1)  # a --max-steps past it
    factors = [learning_rate_factor(opt, step, 300) for step in range(100, 301)]
    assert all(a >= b for a, b in itertools.pairwise(factors))


def test_constant_keeps_the_set_rate():
    opt = OptimisationConfig(schedule="constant", decay_from_step=0)
    assert {learning_rate_factor(opt, step, 10) for step in range(12)} == {1.0}


def test_config_refuses_a_decay_that_never_happens_or_a_floor_outside_0_to_1(make_starter_config):
    config = make_starter_config("schedule_checks", max_steps=4)
    config.optimisation.schedule = "cosine"
    config.optimisation.decay_from_step = 4
    with pytest.raises(ConfigError, match=r"optimisation\.decay_from_step"):
        validate(config)
    config.optimisation.decay_from_step = 0
    config.optimisation.final_learning_rate_ratio = 1.5
    with pytest.raises(ConfigError, match=r"optimisation\.final_learning_rate_ratio"):
        validate(config)


def _rates(trainer: Trainer) -> list[float]:
    return [group["lr"] for group in trainer.optimizer.param_groups]


def test_a_run_decays_and_a_later_phase_trains_at_its_own_rate(make_starter_config):
    config = make_starter_config("schedule_run", max_steps=4, checkpoint_every=2)
    config.optimisation.schedule = "cosine"
    config.optimisation.final_learning_rate_ratio = 0.0
    first = Trainer(config)
    first.run()
    # The last of steps 0..3 ran at the rate of step 3: cos(pi * 3/4) on the way to 0.
    expected = config.optimisation.learning_rate * 0.5 * (1 + math.cos(math.pi * 3 / 4))
    assert _rates(first) == pytest.approx([expected] * len(_rates(first)))

    # Phase 2 continues the folder at a constant, lower rate: the saved optimiser state would
    # bring back the decayed rate, but the rate is the new config's.
    phase2 = make_starter_config("schedule_run", max_steps=6, checkpoint_every=2)
    phase2.optimisation.learning_rate = 5e-4
    second = Trainer(phase2, resume="latest")
    assert second.progress.step == 4
    second.run()
    assert _rates(second) == pytest.approx([5e-4] * len(_rates(second)))
