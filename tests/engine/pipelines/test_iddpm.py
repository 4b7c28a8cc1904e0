"""The respaced iDDPM sampler against first principles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.pipelines.iddpm import IDDPMSampler, linear_betas, respaced_timesteps
from engine.pipelines.samplers import DPMSolverSampler, make_sampler


def test_respaced_timesteps_are_evenly_spaced_rounded():
    kept = respaced_timesteps(1000, 50)
    assert kept == [round(i * 999 / 49) for i in range(50)]
    assert kept[0] == 0 and kept[-1] == 999
    assert respaced_timesteps(1000, 1000) == list(range(1000))


def test_timesteps_descend_from_999():
    sampler = IDDPMSampler(50)
    assert sampler.timesteps[0] == 999 and sampler.timesteps[-1] == 0
    assert len(sampler.timesteps) == 50
    assert bool((sampler.timesteps[:-1] > sampler.timesteps[1:]).all())


def test_linear_schedule():
    betas = linear_betas()
    assert betas.shape == (1000,) and betas[0] == 1e-4 and betas[-1] == pytest.approx(0.02)


@pytest.mark.parametrize("steps", [2, 7, 50])
def test_respaced_betas_reproduce_alphas_cumprod_at_kept_steps(steps):
    sampler = IDDPMSampler(steps)
    kept = sampler.kept_timesteps
    np.testing.assert_allclose(
        np.cumprod(1.0 - sampler.betas), sampler.train_alphas_cumprod[kept], rtol=1e-12
    )


def test_posterior_matches_gaussian_conditioning():
    """q(x_{k-1} | x_k, x_0) from the joint gaussian of the respaced forward process."""
    sampler = IDDPMSampler(10)
    for k in range(1, 10):
        a_prev, a = sampler.alphas_cumprod[k - 1], sampler.alphas_cumprod[k]
        alpha = a / a_prev
        # x_k = sqrt(alpha) x_{k-1} + sqrt(1 - alpha) e: Cov(x_{k-1}, x_k) = sqrt(alpha)(1 - a_prev)
        cov, var_k, var_prev = np.sqrt(alpha) * (1 - a_prev), 1 - a, 1 - a_prev
        coef_xt = cov / var_k
        coef_x0 = np.sqrt(a_prev) - coef_xt * np.sqrt(a)
        variance = var_prev - cov * cov / var_k
        assert sampler.posterior_mean_coef2[k] == pytest.approx(coef_xt, rel=1e-9)
        assert sampler.posterior_mean_coef1[k] == pytest.approx(coef_x0, rel=1e-9)
        assert sampler.posterior_variance[k] == pytest.approx(variance, rel=1e-9)
    assert sampler.posterior_log_variance_clipped[0] == sampler.posterior_log_variance_clipped[1]


def test_step_is_posterior_mean_plus_learned_range_noise():
    sampler = IDDPMSampler(10)
    x = torch.randn(1, 4, 3, 5, generator=torch.Generator().manual_seed(1))
    eps = torch.randn(1, 4, 3, 5, generator=torch.Generator().manual_seed(2))
    v = torch.rand(1, 4, 3, 5, generator=torch.Generator().manual_seed(3)) * 2 - 1
    t_index = 3
    k = 9 - t_index
    out = sampler.step(torch.cat([eps, v], 1), t_index, x, torch.Generator().manual_seed(4))

    a = sampler.alphas_cumprod[k]
    x0 = (x - np.sqrt(1 - a) * eps) / np.sqrt(a)
    mean = sampler.posterior_mean_coef1[k] * x0 + sampler.posterior_mean_coef2[k] * x
    frac = (v + 1) / 2
    log_var = frac * np.log(sampler.betas[k]) + (1 - frac) * np.log(sampler.posterior_variance[k])
    noise = torch.randn(1, 4, 3, 5, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(out, mean + torch.exp(0.5 * log_var) * noise, rtol=1e-4, atol=1e-5)


def test_exact_epsilon_recovers_x0_at_last_step():
    sampler = IDDPMSampler(5)
    x0, eps = torch.randn(1, 4, 4, 4), torch.randn(1, 4, 4, 4)
    x = sampler.add_noise(x0, eps, int(sampler.timesteps[-1]))
    out = sampler.step(torch.cat([eps, torch.zeros_like(eps)], 1), 4, x, torch.Generator())
    torch.testing.assert_close(out, x0, rtol=1e-4, atol=1e-4)  # t = 0: no noise, x0 exactly


def test_add_noise_uses_training_schedule():
    sampler = IDDPMSampler(50)
    abar = float(np.prod(1 - linear_betas()))
    x0, noise = torch.ones(1, 4, 2, 2), torch.full((1, 4, 2, 2), 2.0)
    expected = abar**0.5 + 2 * (1 - abar) ** 0.5
    torch.testing.assert_close(sampler.start(x0, noise), torch.full_like(x0, expected))


def test_dpm_solver_starts_like_iddpm_and_steps():
    dpm, iddpm = make_sampler("dpm++", 4), make_sampler("iddpm", 4)
    assert isinstance(dpm, DPMSolverSampler)
    assert int(dpm.timesteps[0]) == 999 and len(dpm.timesteps) == 4
    x0, noise = torch.randn(1, 4, 4, 4), torch.randn(1, 4, 4, 4)
    torch.testing.assert_close(dpm.start(x0, noise), iddpm.start(x0, noise), rtol=1e-4, atol=1e-5)
    x = dpm.start(x0, noise)
    for i, t in enumerate(dpm.timesteps):
        abar = iddpm.train_alphas_cumprod[int(t)]
        eps = (x - abar**0.5 * x0) / (1 - abar) ** 0.5  # the true noise of the current state
        x = dpm.step(torch.cat([eps, torch.zeros_like(eps)], 1), i, x)
    torch.testing.assert_close(x, x0, rtol=1e-3, atol=1e-3)


def test_unknown_sampler():
    with pytest.raises(ValueError, match="unknown sampler"):
        make_sampler("euler", 4)
