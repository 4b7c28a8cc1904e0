"""The learning rate at each optimiser step: constant, or a cosine decay to a floor.

A run's learning rate is a pure function of its step, so a resumed run (or a phase that
continues a run folder with a new config, as the starter's do) lands on exactly the rate it
would have had: nothing about the schedule is saved in a checkpoint. The cosine decay runs
from `decay_from_step` (the steps before it keep the full rate) to `max_steps`, where it
reaches `final_learning_rate_ratio` of the configured rate. Annealing the end of a run is the
usual way to take a plateaued net further; on the starter's restorers it helped one and not
the other (resources/models/starter/README.md, "Tried after v2.1").
"""

from __future__ import annotations

import math

import torch

from trainer.config import OptimisationConfig


def learning_rate_factor(opt: OptimisationConfig, step: int, max_steps: int) -> float:
    """The share (0 to 1) of each group's rate for the optimiser step after `step` steps."""
    if opt.schedule == "constant" or step <= opt.decay_from_step:
        return 1.0
    span = max(1, max_steps - opt.decay_from_step)
    progress = min(1.0, (step - opt.decay_from_step) / span)
    floor = opt.final_learning_rate_ratio
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def set_learning_rates(
    optimizer: torch.optim.Optimizer, base_rates: list[float], factor: float
) -> None:
    """Each group's rate as `base_rates` (the config's, read when the optimiser was built: a
    resumed optimiser's state would bring back the rates of the run it was saved from) times
    `factor`."""
    for group, rate in zip(optimizer.param_groups, base_rates, strict=True):
        group["lr"] = rate * factor
