"""The improved-DDPM training loss with learned-range variance (PixArt's and DreamClear's).

    loss = mean((eps - eps_hat)^2) + L_vb,   t ~ U{0 .. T-1}

L_vb is KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) in bits per dimension (at t = 0 the
discretised Gaussian decoder NLL). Its mean uses eps_hat with a stop-gradient, so it trains
only the variance values v (model channels 4-7) and the epsilon MSE alone trains the mean.
The schedule is `engine.pipelines.iddpm`'s, kept at all T steps.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from engine.pipelines.iddpm import IDDPMSampler


class DiffusionLoss:
    def __init__(self, num_train_timesteps: int = 1000) -> None:
        self.num_train_timesteps = num_train_timesteps
        schedule = IDDPMSampler(num_train_timesteps, num_train_timesteps)
        abar = schedule.alphas_cumprod
        self.tables = {
            "sqrt_abar": abar**0.5,
            "sqrt_one_minus_abar": (1.0 - abar) ** 0.5,
            "sqrt_recip_abar": abar**-0.5,
            "sqrt_recipm1_abar": (1.0 / abar - 1.0) ** 0.5,
            "coef1": schedule.posterior_mean_coef1,
            "coef2": schedule.posterior_mean_coef2,
            "post_logvar": schedule.posterior_log_variance_clipped,
            "log_beta": np.log(schedule.betas),
        }

    def _at(self, name: str, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        table = torch.as_tensor(self.tables[name], device=t.device)[t]
        return table.to(torch.float32).view(-1, *([1] * (like.ndim - 1)))

    def sample_timesteps(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randint(
            0, self.num_train_timesteps, (batch,), generator=generator, device=generator.device
        )

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self._at("sqrt_abar", t, x0) * x0 + self._at("sqrt_one_minus_abar", t, x0) * noise

    def __call__(
        self,
        model_output: torch.Tensor,
        x0: torch.Tensor,
        x_t: torch.Tensor,
        t: torch.Tensor,
        noise: torch.Tensor,
        vlb_weight: float = 1.0,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """model_output (B, 2C, H, W) = [eps_hat | v in [-1, 1]]; returns the batch mean loss."""
        eps, values = model_output.float().chunk(2, dim=1)
        mse = ((noise - eps) ** 2).mean(dim=(1, 2, 3))
        vb = self.variational_bound(eps.detach(), values, x0, x_t, t)
        loss = (mse + vlb_weight * vb).mean()
        return loss, {"mse": float(mse.mean().detach()), "vb": float(vb.mean().detach())}

    def variational_bound(
        self,
        eps: torch.Tensor,
        values: torch.Tensor,
        x0: torch.Tensor,
        x_t: torch.Tensor,
        t: torch.Tensor,
    ) -> torch.Tensor:
        """(B,) bits per dimension of the reverse step at t (decoder NLL where t = 0)."""
        coef1, coef2 = self._at("coef1", t, x0), self._at("coef2", t, x0)
        true_mean = coef1 * x0 + coef2 * x_t
        true_logvar = self._at("post_logvar", t, x0)
        pred_x0 = (
            self._at("sqrt_recip_abar", t, x0) * x_t - self._at("sqrt_recipm1_abar", t, x0) * eps
        )
        model_mean = coef1 * pred_x0 + coef2 * x_t
        frac = (values + 1.0) / 2.0
        model_logvar = frac * self._at("log_beta", t, x0) + (1.0 - frac) * true_logvar
        kl = normal_kl(true_mean, true_logvar, model_mean, model_logvar).mean(dim=(1, 2, 3))
        nll = -discretized_gaussian_log_likelihood(x0, model_mean, 0.5 * model_logvar)
        nll = nll.mean(dim=(1, 2, 3))
        return torch.where(t == 0, nll, kl) / math.log(2.0)


def normal_kl(
    mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor, logvar2: torch.Tensor
) -> torch.Tensor:
    """KL(N(mean1, exp(logvar1)) || N(mean2, exp(logvar2))), elementwise, in nats."""
    return 0.5 * (
        -1.0
        + logvar2
        - logvar1
        + torch.exp(logvar1 - logvar2)
        + (mean1 - mean2) ** 2 * torch.exp(-logvar2)
    )


def _approx_standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def discretized_gaussian_log_likelihood(
    x: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor
) -> torch.Tensor:
    """Log-likelihood of x in [-1, 1] under a Gaussian discretised into 255 bins (nats)."""
    centered = x - means
    inv_stdv = torch.exp(-log_scales)
    cdf_plus = _approx_standard_normal_cdf(inv_stdv * (centered + 1.0 / 255.0))
    cdf_min = _approx_standard_normal_cdf(inv_stdv * (centered - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_cdf_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return torch.where(
        x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_cdf_delta)
    )
