"""The samplers the restoration pipeline can use, behind one small interface.

- `iddpm` (default): the published respaced improved-DDPM ancestral sampler (`iddpm.py`).
- `dpm++`: diffusers' DPMSolverMultistepScheduler (2nd-order DPM-Solver++) on the same
  1000-step linear schedule with epsilon prediction, starting like the default from the
  reference latent noised to the first timestep (999). It ignores the variance channels.

A sampler object holds the state of one run: make a fresh one per image.
"""

from __future__ import annotations

from typing import Literal, Protocol

import torch
from diffusers import DPMSolverMultistepScheduler

from engine.pipelines.iddpm import LATENT_CHANNELS, IDDPMSampler

SamplerName = Literal["iddpm", "dpm++"]
SAMPLER_NAMES: tuple[str, ...] = ("iddpm", "dpm++")

NUM_TRAIN_TIMESTEPS = 1000
BETA_START = 1e-4
BETA_END = 0.02


class Sampler(Protocol):
    timesteps: torch.Tensor
    """Training-scale timesteps fed to the model, descending (index 0 = first step)."""

    def start(self, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The first state: `x0` noised to `timesteps[0]` (float32)."""
        ...

    def step(
        self,
        model_output: torch.Tensor,
        t_index: int,
        x: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Advance from `timesteps[t_index]` to the next one; model_output is (B, 8, ...)."""
        ...


class DPMSolverSampler:
    """DPM-Solver++ (2M) through diffusers, adapted to the `Sampler` interface."""

    def __init__(self, num_inference_steps: int = 20) -> None:
        self.scheduler = DPMSolverMultistepScheduler(
            num_train_timesteps=NUM_TRAIN_TIMESTEPS,
            beta_start=BETA_START,
            beta_end=BETA_END,
            beta_schedule="linear",
            prediction_type="epsilon",
            algorithm_type="dpmsolver++",
            solver_order=2,
            timestep_spacing="linspace",  # first timestep is 999, like the default sampler
        )
        self.scheduler.set_timesteps(num_inference_steps)
        self.timesteps = self.scheduler.timesteps.long()

    def start(self, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.scheduler.add_noise(x0.float(), noise.float(), self.timesteps[:1])

    def step(
        self,
        model_output: torch.Tensor,
        t_index: int,
        x: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        # diffusers counts its own step index; it must agree with ours.
        eps = model_output[:, :LATENT_CHANNELS].float()
        timestep = self.scheduler.timesteps[t_index]
        return self.scheduler.step(eps, timestep, x.float(), generator=generator).prev_sample


def make_sampler(name: str, num_inference_steps: int) -> Sampler:
    """A fresh sampler for one run."""
    if name == "iddpm":
        return IDDPMSampler(
            num_inference_steps,
            num_train_timesteps=NUM_TRAIN_TIMESTEPS,
            beta_start=BETA_START,
            beta_end=BETA_END,
        )
    if name == "dpm++":
        return DPMSolverSampler(num_inference_steps)
    raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLER_NAMES)}")
