r"""Gradient estimators: reparameterised and score-function gradients of an expectation (chapter 6).

Both estimate :math:`\nabla_{\mu,\log\sigma^2}\,\mathbb E_{q}[f(z)]` for
:math:`q = \mathcal N(\mu, \operatorname{diag}\sigma^2)`:

* :func:`reparam_grads`: the reparameterisation trick, :math:`z = \mu + \sigma\odot\varepsilon`
  (Kingma & Welling, 2014), which differentiates through ``f``;
* :func:`score_function_grads`: the score function (REINFORCE) estimator
  (Williams, 1992), which needs only values of ``f``.

Both are unbiased; chapter 6 compares their variances. The sampler and the
log-density come from :mod:`course_lib.distributions`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .distributions import log_normal_diag, sample_normal_diag


def reparam_grads(
    f: Callable[[torch.Tensor], torch.Tensor], mu: torch.Tensor, logvar: torch.Tensor, n: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``n`` single-sample reparameterised estimates of :math:`\nabla_{\mu,\log\sigma^2}\,\mathbb E_{q}[f(z)]` (chapter 6).

    With :math:`z = \mu + \sigma\varepsilon`: :math:`\nabla_\mu = f'(z)`,
    :math:`\nabla_{\log\sigma^2} = f'(z)\,\tfrac12\sigma\varepsilon` (Kingma & Welling, 2014).
    ``f`` maps ``(n, d) -> (n,)``; ``mu``, ``logvar`` are ``(d,)``. Returns two ``(n, d)`` tensors.
    """
    mu_ = mu.detach().expand(n, -1).clone().requires_grad_(True)  # (n, d)
    lv_ = logvar.detach().expand(n, -1).clone().requires_grad_(True)
    z = sample_normal_diag(mu_, lv_, generator)  # (n, d)
    g_mu, g_lv = torch.autograd.grad(f(z).sum(), (mu_, lv_))
    return g_mu, g_lv


def score_function_grads(
    f: Callable[[torch.Tensor], torch.Tensor], mu: torch.Tensor, logvar: torch.Tensor, n: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``n`` single-sample score-function (REINFORCE) estimates of the same gradient (chapter 6).

    .. math:: \nabla \mathbb E_q[f(z)] = \mathbb E_q\big[f(z)\,\nabla \log q(z)\big]

    (Williams, 1992). Needs only values of ``f``, not its derivative, and is
    unbiased too, but its variance is usually far larger. No baseline is used.
    """
    mu_ = mu.detach().expand(n, -1).clone().requires_grad_(True)  # (n, d)
    lv_ = logvar.detach().expand(n, -1).clone().requires_grad_(True)
    with torch.no_grad():
        z = sample_normal_diag(mu_, lv_, generator)  # no gradient through z
        fz = f(z)  # (n,)
    log_q = log_normal_diag(z, mu_, lv_, dim=1)  # (n,)
    g_mu, g_lv = torch.autograd.grad(log_q.sum(), (mu_, lv_))  # per-sample scores
    return fz[:, None] * g_mu, fz[:, None] * g_lv
