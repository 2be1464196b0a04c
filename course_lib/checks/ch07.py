"""Checks for the exercises of chapter 7 (VAEs on MNIST): the ELBO loss and the IWAE estimate."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..distributions import gaussian_kl, log_bernoulli, log_mean_exp
from . import call_answer, passed, require


def check_negative_elbo(negative_elbo: Callable) -> None:
    r"""``negative_elbo(x, logits, mu, logvar)`` must return the batch mean of
    :math:`-\log p(x\mid z) + \mathrm{KL}(q\,\|\,p)`, each summed over pixels / latent dimensions."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 1, 28, 28, generator=g)  # grey pixels in [0, 1]
    logits = 2 * torch.randn(6, 1, 28, 28, generator=g)
    mu, logvar = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    out = call_answer(negative_elbo, x, logits, mu, logvar)
    require(isinstance(out, torch.Tensor), f"return a tensor, got {type(out).__name__}.")
    require(out.numel() == 1, f"return one number (the mean over the batch), got shape {tuple(out.shape)}.")
    out = out.reshape(())
    rec = -log_bernoulli(x, logits, dim=(1, 2, 3))  # (6,)
    kl = gaussian_kl(mu, logvar, dim=1)  # (6,)
    ref = (rec + kl).mean()
    bce_mean = F.binary_cross_entropy_with_logits(logits, x)  # averaged over pixels AND images
    wrong = {
        "the reconstruction term is averaged over pixels (F.binary_cross_entropy's default "
        "reduction='mean'): sum over the 784 pixels, or the KL dominates by a factor 784":
            bce_mean + kl.mean(),
        "the KL has the wrong sign: the loss is -log p(x|z) PLUS KL(q || p)": (rec - kl).mean(),
        "the KL is averaged over latent dimensions; sum it": (rec + kl / mu.shape[1]).mean(),
        "you returned the sum over the batch; the task asks for the mean per image": (rec + kl).sum(),
        "the KL is missing": rec.mean(),
    }
    for message, value in wrong.items():
        require(not torch.allclose(out, value, rtol=1e-4), message + ".")
    require(torch.allclose(out, ref, rtol=1e-4), f"expected {ref.item():.3f} nats, got {out.item():.3f}.")
    passed("the negative ELBO (summed over pixels, averaged over images) matches course_lib.")


def check_iwae_estimate(iwae_estimate: Callable) -> None:
    r"""``iwae_estimate(log_w)`` with ``log_w`` of shape ``(k, B)`` must return
    :math:`\log\frac1k\sum_i e^{\log w_i}` per column, ``(B,)``, without overflow or underflow."""
    g = torch.Generator().manual_seed(0)
    log_w = torch.randn(50, 4, generator=g) * 3 - 600.0  # realistic: log-weights near -600 nats
    out = call_answer(iwae_estimate, log_w)
    require(isinstance(out, torch.Tensor), f"return a tensor, got {type(out).__name__}.")
    require(out.shape == (4,), f"expected one value per example, shape (4,), got {tuple(out.shape)}.")
    ref = log_mean_exp(log_w, dim=0)
    require(bool(torch.isfinite(out).all()), "the result is not finite: exp(-600) underflows to 0. "
            "Subtract the maximum before exponentiating (torch.logsumexp does).")
    require(not torch.allclose(out, log_w.mean(0), atol=1e-3),
            "you averaged the log-weights: that is the ELBO (k = 1 bound), not the IWAE bound.")
    require(not torch.allclose(out, torch.logsumexp(log_w, 0), atol=1e-3),
            f"logsumexp is log of the SUM; subtract log k = {math.log(50):.3f} to get the mean.")
    require(not torch.allclose(out, log_w.max(0).values, atol=1e-3), "the maximum log-weight is not the estimate.")
    require(torch.allclose(out, ref, atol=1e-4), "the estimate differs from log mean exp over the k samples.")
    require(bool((out >= log_w.mean(0) - 1e-6).all()), "the IWAE estimate must be >= the mean log-weight (Jensen).")
    passed("log-mean-exp over k importance weights, computed stably.")
