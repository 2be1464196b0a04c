"""Checks for the exercises of chapter 8 (VAE variants): the KL warm-up schedule and the beta-VAE loss."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..distributions import gaussian_kl, log_bernoulli
from ..vae import kl_warmup
from . import call_answer, passed, reproduces, require
from .ch07 import require_loss_like, vae_loss_inputs


@reproduces(kl_warmup)
def check_kl_weight(kl_weight: Callable) -> None:
    r"""``kl_weight(step, warmup_steps)`` must rise linearly from 0 at step 0 to 1 at
    ``warmup_steps`` and stay at 1 afterwards; ``warmup_steps = 0`` means no warm-up."""
    cases = [(0, 100), (1, 100), (37, 100), (99, 100), (100, 100), (250, 100), (5, 7), (0, 0), (12, 0)]
    got = []
    for step, warm in cases:
        try:
            got.append(float(call_answer(kl_weight, step, warm)))
        except ZeroDivisionError:
            require(False, "warmup_steps = 0 divides by zero: with no warm-up the weight is always 1.")
    ref = [kl_warmup(s, w) for s, w in cases]
    if got[2] == 0.0 and got[5] != 0.0:
        require(False, "the weight is 0 during warm-up: integer division (step // warmup_steps)? Use step / warmup_steps.")
    require(got[5] <= 1.0 + 1e-9, f"after warm-up the weight must stay at 1, got {got[5]} at step 250 of 100: clip it.")
    require(got[0] == 0.0, f"the weight must start at 0, got {got[0]}.")
    for (step, warm), a, r in zip(cases, got, ref):
        require(abs(a - r) < 1e-9, f"kl_weight({step}, {warm}) should be {r:.4f}, got {a:.4f}.")
    passed("a linear KL warm-up from 0 to 1, then constant.")


@reproduces(gaussian_kl, log_bernoulli)
def check_beta_vae_loss(beta_vae_loss: Callable) -> None:
    r"""``beta_vae_loss(x, logits, mu, logvar, beta)`` must return the batch mean of
    :math:`-\log p(x\mid z) + \beta\,\mathrm{KL}(q\,\|\,p)` (Higgins et al., 2017), with the right
    gradients, also for confident logits."""
    x, logits, mu, logvar = vae_loss_inputs(1)
    rec = -log_bernoulli(x, logits, dim=(1, 2, 3))
    kl = gaussian_kl(mu, logvar, dim=1)
    with torch.no_grad():
        sigmoid_rec = F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="none").sum((1, 2, 3))
    for beta in (4.0, 0.5):
        out = call_answer(beta_vae_loss, x, logits, mu, logvar, beta)
        require(isinstance(out, torch.Tensor) and out.numel() == 1, "return one number: the mean over the batch.")
        out = out.reshape(())
        ref = (rec + beta * kl).mean()
        with torch.no_grad():
            require(not torch.allclose(out, (beta * rec + kl).mean(), rtol=1e-4),
                    "beta multiplies the KL term, not the reconstruction term.")
            require(not torch.allclose(out, (rec + kl).mean(), rtol=1e-4), "beta is ignored: weight the KL by beta.")
            require(not torch.allclose(out, (rec + kl / beta).mean(), rtol=1e-4), "you divided the KL by beta; multiply.")
            require(not torch.allclose(out, (sigmoid_rec + beta * kl).mean(), rtol=1e-4),
                    "binary_cross_entropy(sigmoid(logits), x) is unstable for confident logits (sigmoid rounds "
                    "to 0 or 1, torch clamps log(0) to -100): use F.binary_cross_entropy_with_logits.")
            require(torch.allclose(out, ref, rtol=1e-4),
                    f"expected {ref.item():.3f} for beta = {beta}, got {out.item():.3f}.")
        require_loss_like(out, ref, {"logits": logits, "mu": mu, "logvar": logvar})
    passed("the beta-VAE loss: reconstruction + beta * KL, averaged over images, gradients too.")
