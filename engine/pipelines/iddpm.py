"""Respaced improved-DDPM ancestral sampler (the published DreamClear sampler), our own maths.

The model is trained on a 1000-step linear-beta schedule and predicts epsilon plus a
per-element value v in [-1, 1] that interpolates the log variance of each reverse step
between the clipped posterior log variance (v = -1) and log beta (v = +1) ("learned range").
Sampling keeps `num_inference_steps` of the 1000 training steps, spaced evenly
(round(i * 999 / (n - 1))), and derives the betas of the shorter chain from the cumulative
alphas at the kept steps, so q(x_t | x_0) is unchanged at every kept step:

    beta'_k = 1 - abar[t_k] / abar[t_{k-1}],   abar[t_{-1}] = 1

Each reverse step, at respaced index k (t = t_k):

    x0    = sqrt(1/abar'_k) x - sqrt(1/abar'_k - 1) eps           (no clipping)
    mean  = c1_k x0 + c2_k x,  c1 = beta' sqrt(abar'_{k-1}) / (1 - abar'_k),
                               c2 = (1 - abar'_{k-1}) sqrt(1 - beta') / (1 - abar'_k)
    logv  = (v + 1)/2 log beta'_k + (1 - (v + 1)/2) log var_post_k (clipped at k = 0)
    x'    = mean + exp(logv / 2) z, with z = 0 at the last step.

The schedule is computed in float64 and the update in float32, whatever the model dtype.
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers.utils.torch_utils import randn_tensor

LATENT_CHANNELS = 4


def linear_betas(
    num_train_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02
) -> np.ndarray:
    """The linear beta schedule of DDPM, float64, shape (num_train_timesteps,)."""
    return np.linspace(beta_start, beta_end, num_train_timesteps, dtype=np.float64)


def respaced_timesteps(num_train_timesteps: int, num_steps: int) -> list[int]:
    """The kept training steps, ascending: round(i * (T - 1) / (n - 1)) for i in 0..n-1.

    The stride is accumulated in floating point and rounded with Python's round, exactly as
    the published respacing does, so the same steps are kept for every step count.
    """
    if not 1 <= num_steps <= num_train_timesteps:
        raise ValueError(f"num_steps must be in [1, {num_train_timesteps}], got {num_steps}")
    stride = 1.0 if num_steps <= 1 else (num_train_timesteps - 1) / (num_steps - 1)
    kept, position = [], 0.0
    for _ in range(num_steps):
        kept.append(round(position))
        position += stride
    return kept


class IDDPMSampler:
    """Ancestral sampling over a respaced 1000-step linear schedule with learned-range variance.

    `timesteps` are training-scale timesteps (what the model is fed), descending: index 0
    is the first, noisiest step (999).
    """

    def __init__(
        self,
        num_inference_steps: int = 50,
        num_train_timesteps: int = 1000,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
    ) -> None:
        self.num_train_timesteps = num_train_timesteps
        self.num_inference_steps = num_inference_steps
        self.train_betas = linear_betas(num_train_timesteps, beta_start, beta_end)
        self.train_alphas_cumprod = np.cumprod(1.0 - self.train_betas)

        kept = respaced_timesteps(num_train_timesteps, num_inference_steps)
        abar = self.train_alphas_cumprod[kept]
        abar_prev = np.append(1.0, abar[:-1])
        betas = 1.0 - abar / abar_prev
        self.kept_timesteps = kept
        self.betas = betas
        self.alphas_cumprod = abar
        self.alphas_cumprod_prev = abar_prev
        self.posterior_variance = betas * (1.0 - abar_prev) / (1.0 - abar)
        # The posterior variance is 0 at the first step of the chain; its log is clipped by
        # reusing the next step's value (only when there is a next step).
        if len(betas) > 1:
            clipped = np.append(self.posterior_variance[1], self.posterior_variance[1:])
        else:
            clipped = self.posterior_variance.copy()
        # A one-step chain keeps log(0) = -inf at step 0, which `step` never reads (it returns
        # the posterior mean there).
        with np.errstate(divide="ignore"):
            self.posterior_log_variance_clipped = np.log(clipped)
        self.posterior_mean_coef1 = betas * np.sqrt(abar_prev) / (1.0 - abar)
        self.posterior_mean_coef2 = (1.0 - abar_prev) * np.sqrt(1.0 - betas) / (1.0 - abar)
        self.timesteps = torch.tensor(kept[::-1], dtype=torch.long)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: int) -> torch.Tensor:
        """q(x_t | x_0) on the training schedule: sqrt(abar_t) x0 + sqrt(1 - abar_t) noise."""
        abar = float(self.train_alphas_cumprod[int(t)])
        return (abar**0.5) * x0.float() + ((1.0 - abar) ** 0.5) * noise.float()

    def start(self, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The first state: `x0` noised to the first (noisiest) timestep."""
        return self.add_noise(x0, noise, int(self.timesteps[0]))

    def step(
        self,
        model_output: torch.Tensor,
        t_index: int,
        x: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """One reverse step.

        Args:
            model_output: (B, 8, ...) = [epsilon (4) | variance values in [-1, 1] (4)].
            t_index: position in `timesteps` (0 = first step).
            x: (B, 4, ...) current state.
            generator: for the added noise.
        Returns:
            x at the next (less noisy) timestep, float32.
        """
        if not 0 <= t_index < self.num_inference_steps:
            raise IndexError(f"t_index {t_index} outside [0, {self.num_inference_steps})")
        if model_output.shape[1] != 2 * LATENT_CHANNELS:
            raise ValueError(
                f"expected {2 * LATENT_CHANNELS} output channels (epsilon and variance), "
                f"got {model_output.shape[1]}"
            )
        k = self.num_inference_steps - 1 - t_index
        x = x.float()
        eps, var_values = model_output.float().split(LATENT_CHANNELS, dim=1)

        abar = self.alphas_cumprod[k]
        x0 = (1.0 / abar) ** 0.5 * x - (1.0 / abar - 1.0) ** 0.5 * eps
        mean = float(self.posterior_mean_coef1[k]) * x0 + float(self.posterior_mean_coef2[k]) * x
        if k == 0:
            return mean

        frac = (var_values + 1.0) / 2.0
        max_log = float(np.log(self.betas[k]))
        min_log = float(self.posterior_log_variance_clipped[k])
        log_variance = frac * max_log + (1.0 - frac) * min_log
        noise = randn_tensor(x.shape, generator=generator, device=x.device, dtype=torch.float32)
        return mean + torch.exp(0.5 * log_variance) * noise
