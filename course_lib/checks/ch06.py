"""Checks for the exercises of chapter 6 (VAE theory): the reparameterised sample and the Gaussian KL."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..distributions import gaussian_kl, sample_normal_diag
from . import call_answer, passed, reproduces, require


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(4, 3, generator=g)
    logvar = torch.randn(4, 3, generator=g)
    eps = torch.randn(4, 3, generator=g)
    return mu, logvar, eps


@reproduces(sample_normal_diag)
def check_reparameterize(reparameterize: Callable) -> None:
    r"""``reparameterize(mu, logvar, eps)`` must return :math:`z = \mu + e^{\log\sigma^2/2}\,\varepsilon`
    with gradients flowing to ``mu`` and ``logvar``."""
    mu, logvar, eps = _inputs()
    mu.requires_grad_(True)
    logvar.requires_grad_(True)
    z = call_answer(reparameterize, mu, logvar, eps)
    require(isinstance(z, torch.Tensor), f"return a tensor, got {type(z).__name__}.")
    require(z.shape == mu.shape, f"z must have the shape of mu {tuple(mu.shape)}, got {tuple(z.shape)}.")
    ref = mu + torch.exp(0.5 * logvar) * eps
    with torch.no_grad():
        if torch.allclose(z, mu + torch.exp(logvar) * eps, atol=1e-5):
            require(False, "you scaled eps by the variance exp(logvar); the standard deviation is exp(0.5 * logvar).")
        if torch.allclose(z, mu + logvar * eps, atol=1e-5):
            require(False, "logvar is log sigma^2, not sigma: scale eps by exp(0.5 * logvar).")
        if torch.allclose(z, mu + torch.sqrt(logvar.abs()) * eps, atol=1e-5):
            require(False, "sqrt(logvar) is not the standard deviation: use exp(0.5 * logvar).")
        if torch.allclose(z, torch.exp(0.5 * logvar) * eps, atol=1e-5):
            require(False, "z is missing the mean: z = mu + sigma * eps.")
        require(torch.allclose(z, ref, atol=1e-5), "z differs from mu + exp(0.5 * logvar) * eps.")
    require(z.requires_grad, "no gradient reaches mu or logvar: compute z from them with tensor operations "
            "(torch.normal(mu, std) does not propagate gradients).")
    g_mu, g_lv = torch.autograd.grad(z.sum(), (mu, logvar), allow_unused=True)
    require(g_mu is not None and torch.allclose(g_mu, torch.ones_like(mu)), "dz/dmu must be 1.")
    require(g_lv is not None and torch.allclose(g_lv, 0.5 * torch.exp(0.5 * logvar) * eps, atol=1e-5),
            "dz/dlogvar must be 0.5 * sigma * eps: did you detach logvar?")
    passed("z = mu + sigma * eps, and gradients reach both mu and logvar.")


@reproduces(gaussian_kl)
def check_kl_standard_normal(kl_standard_normal: Callable) -> None:
    r"""``kl_standard_normal(mu, logvar)`` must return :math:`\mathrm{KL}(\mathcal N(\mu,\sigma^2)\,\|\,\mathcal N(0,I))`
    per row, summed over the latent dimensions: shape ``(B,)``, with gradients to ``mu`` and ``logvar``."""
    mu, logvar, _ = _inputs(1)
    mu.requires_grad_(True)
    logvar.requires_grad_(True)
    out = call_answer(kl_standard_normal, mu, logvar)
    require(isinstance(out, torch.Tensor), f"return a tensor, got {type(out).__name__}.")
    ref = gaussian_kl(mu, logvar, dim=1)  # (4,)
    per_dim = gaussian_kl(mu, logvar)  # (4, 3)
    if out.shape == per_dim.shape:
        require(False, f"return one KL per example, shape {tuple(ref.shape)}: sum over the latent dimensions.")
    require(out.shape == ref.shape, f"expected shape {tuple(ref.shape)} (one KL per example), got {tuple(out.shape)}.")
    swapped = gaussian_kl(torch.zeros_like(mu), torch.zeros_like(logvar), mu, logvar, dim=1)
    as_sigma = gaussian_kl(mu, 2 * torch.log(logvar.abs()), dim=1)  # logvar read as sigma
    wrong = {
        "you read logvar as the standard deviation sigma: it is log sigma^2, so sigma^2 = exp(logvar)": as_sigma,
        "your KL has its arguments swapped: KL(q || p) takes the expectation under q = N(mu, sigma^2), "
        "the encoder, not under the prior": swapped,
        "the factor 1/2 is missing": 2 * ref,
        "you averaged over the latent dimensions; the KL of independent dimensions is their sum": ref / mu.shape[1],
        "the sign is flipped: a KL is never negative": -ref,
    }
    with torch.no_grad():
        for message, value in wrong.items():
            require(not torch.allclose(out, value, atol=1e-4), message + ".")
        require(torch.allclose(out, ref, atol=1e-4), "the KL differs from 0.5 * sum(mu^2 + sigma^2 - 1 - log sigma^2).")
    require(out.requires_grad, "the KL carries no gradient (.item(), .detach(), numpy or torch.tensor(...)?): "
            "the encoder is trained through it.")
    g_mu, g_lv = torch.autograd.grad(out.sum(), (mu, logvar), allow_unused=True)
    require(g_mu is not None and torch.allclose(g_mu, mu.detach(), atol=1e-5), "dKL/dmu must be mu: is mu detached?")
    require(g_lv is not None and torch.allclose(g_lv, 0.5 * (logvar.detach().exp() - 1), atol=1e-5),
            "dKL/dlogvar must be (exp(logvar) - 1) / 2: is logvar detached?")
    zero = call_answer(kl_standard_normal, torch.zeros(2, 3), torch.zeros(2, 3))
    require(torch.allclose(zero, torch.zeros(2), atol=1e-6), "KL(N(0, I) || N(0, I)) must be 0.")
    passed("the closed-form KL to N(0, I) matches course_lib.distributions.gaussian_kl.")
