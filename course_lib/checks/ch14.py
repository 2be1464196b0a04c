"""Checks for the exercises of chapter 14 (diffusion and flow matching): a sample of the forward
process in closed form, and one deterministic DDIM step.

Each check compares the learner's function with the library's on seeded inputs and, when the
answer matches a classic mistake (alpha where alpha-bar belongs, a square root forgotten, the
time index off by one, one t for the whole batch, the prediction of x_0 returned instead of
the step), names it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .. import diffusion as D
from . import CheckFailed, call_answer, passed, reproduces, require


def _case(seed: int = 1400):
    gen = torch.Generator().manual_seed(seed)
    sched = D.schedule("linear", 50)
    x0 = torch.rand(6, 1, 4, 4, generator=gen) * 2 - 1
    eps = torch.randn(x0.shape, generator=gen)
    t = torch.tensor([1, 7, 20, 20, 33, 50])
    return sched, x0, eps, t


def _q(x0, t, a, eps, root: bool = True) -> torch.Tensor:
    a = a.reshape(-1, 1, 1, 1)
    return (a.sqrt() * x0 + (1 - a).sqrt() * eps) if root else (a * x0 + (1 - a) * eps)


@reproduces(D.q_sample)
def check_q_sample(fn: Callable) -> None:
    r"""``fn(x0, t, betas, eps)`` must return :math:`\sqrt{\bar\alpha_t}\, x_0 +
    \sqrt{1 - \bar\alpha_t}\,\epsilon` with :math:`\bar\alpha_t = \prod_{s \le t}(1 - \beta_s)`,
    ``betas`` of length T + 1 (``betas[0] = 0``) and one ``t`` per image.

    Reference: :func:`course_lib.diffusion.q_sample`. Rejects: :math:`\alpha_t` for
    :math:`\bar\alpha_t`, the square roots left out, :math:`\bar\alpha_{t-1}` or
    :math:`\bar\alpha_{t+1}` (off by one), the first image's t for all, the noise's coefficient
    :math:`\sqrt{\beta_t}` (one step of the chain), a detached result.
    """
    sched, x0, eps, t = _case()
    x0 = x0.clone().requires_grad_(True)
    got = call_answer(fn, x0, t, sched.betas.float(), eps)
    require(torch.is_tensor(got) and got.shape == x0.shape,
            f"q_sample must return a tensor shaped like x0 {tuple(x0.shape)}, got "
            f"{tuple(got.shape) if torch.is_tensor(got) else type(got).__name__}.")
    x0, eps = x0.detach().double(), eps.double()  # the comparisons, in float64
    expected = D.q_sample(x0, t, sched, eps)
    if torch.allclose(got.detach().double(), expected, atol=1e-5):
        require(got.requires_grad, "q_sample's result is detached from x0 (.detach(), .data or "
                "torch.no_grad()): a loss built on it could not train anything upstream.")
        passed("x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps, with alpha_bar_t the product up to t")
        return
    got = got.detach().double()
    ab, a = sched.alpha_bar, sched.alphas
    wrong = {
        "You used alpha_t = 1 - beta_t where alpha-bar_t, the product of (1 - beta_s) for s <= t, "
        "belongs: one step of noise, not t of them.": _q(x0, t, a[t], eps),
        "You left out the square roots: the mean is sqrt(alpha_bar_t) x0 and the noise's standard "
        "deviation sqrt(1 - alpha_bar_t); alpha_bar_t and 1 - alpha_bar_t are the variances' "
        "factors.": _q(x0, t, ab[t], eps, root=False),
        "Off by one: you used alpha-bar at t - 1 (e.g. the product over betas[1:] indexed by t - 1, "
        "or over betas indexed by t - 1). betas[0] = 0, so cumprod(1 - betas)[t] is alpha-bar_t.":
            _q(x0, t, ab[(t - 1).clamp(min=0)], eps),
        "Off by one: you used alpha-bar at t + 1 (the product over betas[1:] indexed by t).":
            _q(x0, t, ab[1:][t.clamp(max=sched.T - 1)], eps),
        "You used the first image's t for the whole batch: each image has its own t.":
            _q(x0, t, ab[t[0]].expand(len(t)), eps),
        "The noise's coefficient is sqrt(1 - alpha_bar_t), not sqrt(beta_t) (that is one step of "
        "the chain).": ab[t].sqrt().reshape(-1, 1, 1, 1) * x0 + sched.betas[t].sqrt().reshape(-1, 1, 1, 1) * eps,
    }
    for message, value in wrong.items():
        if torch.allclose(got, value, atol=1e-5):
            raise CheckFailed(message)
    raise CheckFailed("q_sample does not return sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps "
                      "with alpha_bar_t = prod_{s <= t} (1 - beta_s).")


@reproduces(D.ddim_step)
def check_ddim_step(fn: Callable) -> None:
    r"""``fn(x_t, eps_hat, alpha_bar_t, alpha_bar_s)`` must return the deterministic DDIM step
    :math:`x_s = \sqrt{\bar\alpha_s}\,\hat x_0 + \sqrt{1 - \bar\alpha_s}\,\hat\epsilon`,
    :math:`\hat x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}`.

    Reference: :func:`course_lib.diffusion.ddim_step` (η = 0). Rejects: the prediction
    :math:`\hat x_0` returned instead of the step, the square roots left out, the two times
    swapped, fresh noise in place of :math:`\hat\epsilon` (the stochastic step), the DDPM mean.
    """
    sched, x0, eps, _ = _case(1401)
    t, s = 40, 25
    ab_t, ab_s = float(sched.alpha_bar[t]), float(sched.alpha_bar[s])
    x_t = D.q_sample(x0, t, sched, eps)
    eps_hat = eps + 0.1 * torch.randn(eps.shape, generator=torch.Generator().manual_seed(3))

    def net(x, time, labels=None):
        return eps_hat

    expected = D.ddim_step(net, x_t, t, s, sched)
    got = call_answer(fn, x_t.clone(), eps_hat.clone(), ab_t, ab_s)
    require(torch.is_tensor(got) and got.shape == x_t.shape,
            f"ddim_step must return a tensor shaped like x_t {tuple(x_t.shape)}.")
    got = got.detach()
    if torch.allclose(got, expected, atol=1e-5):
        passed("x_s = sqrt(alpha_bar_s) x0_hat + sqrt(1 - alpha_bar_s) eps_hat")
        return
    x0_hat = (x_t - math.sqrt(1 - ab_t) * eps_hat) / math.sqrt(ab_t)
    wrong = {
        "You returned the prediction of x_0; the step goes on to time s: sqrt(alpha_bar_s) x0_hat "
        "+ sqrt(1 - alpha_bar_s) eps_hat.": x0_hat,
        "You left out the square roots: the coefficients are sqrt(alpha_bar) and "
        "sqrt(1 - alpha_bar).": ab_s * (x_t - (1 - ab_t) * eps_hat) / ab_t + (1 - ab_s) * eps_hat,
        "You swapped the two times: x0_hat comes from x_t with alpha_bar_t; x_s is built with "
        "alpha_bar_s.": math.sqrt(ab_t) * (x_t - math.sqrt(1 - ab_s) * eps_hat) / math.sqrt(ab_s)
        + math.sqrt(1 - ab_t) * eps_hat,
        "DDIM's deterministic step keeps the predicted noise eps_hat; adding fresh noise is the "
        "stochastic (eta = 1) variant.": math.sqrt(ab_s) * x0_hat,
        "That is DDPM's mean for one step of the chain, not DDIM's move from t to s.":
            D.model_mean(x_t, eps_hat, t, sched),
    }
    for message, value in wrong.items():
        if torch.allclose(got, value, atol=1e-5):
            raise CheckFailed(message)
    raise CheckFailed("ddim_step does not return sqrt(alpha_bar_s) x0_hat + sqrt(1 - alpha_bar_s) "
                      "eps_hat with x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps_hat) / sqrt(alpha_bar_t).")
