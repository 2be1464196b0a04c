"""Log-densities, the closed-form Gaussian KL and the reparameterised sample.

Derived in chapter 1 (KL, maximum likelihood) and chapter 6 (ELBO,
reparameterisation). Names follow probability, as in Tomczak's *Deep Generative
Modeling*: ``log_normal_diag``, ``log_standard_normal``, ``log_bernoulli``.

Every function works elementwise and sums over ``dim`` when it is given, so
``log_bernoulli(x, logits, dim=(1, 2, 3))`` is ``log p(x | z)`` per image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2 * math.pi)
Dim = int | tuple[int, ...] | None


def _reduce(t: torch.Tensor, dim: Dim) -> torch.Tensor:
    return t if dim is None else t.sum(dim)


def log_normal_diag(x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, dim: Dim = None) -> torch.Tensor:
    r"""Log-density of a diagonal Gaussian, elementwise (chapter 6).

    .. math:: \log \mathcal N(x; \mu, \sigma^2) = -\tfrac12\big(\log 2\pi + \log\sigma^2 + (x-\mu)^2/\sigma^2\big)

    One constant :math:`\log 2\pi` per *dimension*; summing over ``dim`` gives
    :math:`-\tfrac D2 \log 2\pi` for D dimensions (not D times that again).
    """
    return _reduce(-0.5 * (LOG_2PI + logvar + (x - mu) ** 2 * torch.exp(-logvar)), dim)


def log_standard_normal(x: torch.Tensor, dim: Dim = None) -> torch.Tensor:
    r"""Log-density of :math:`\mathcal N(0, 1)`, elementwise: :math:`-\tfrac12(\log 2\pi + x^2)`."""
    return _reduce(-0.5 * (LOG_2PI + x**2), dim)


def log_bernoulli(x: torch.Tensor, logits: torch.Tensor, dim: Dim = None) -> torch.Tensor:
    r"""Bernoulli log-likelihood from logits, elementwise (chapter 6).

    .. math:: \log p(x) = x \log \sigma(l) + (1 - x) \log(1 - \sigma(l)) = -\operatorname{BCE}(l, x)

    Computed from logits, so it never takes ``log(0)``. ``x`` may be any value
    in [0, 1] (grey pixels, the usual "continuous Bernoulli-free" convention).
    """
    return _reduce(-F.binary_cross_entropy_with_logits(logits, x, reduction="none"), dim)


def bernoulli_entropy(probs: torch.Tensor, dim: Dim = None) -> torch.Tensor:
    r"""Entropy of Bernoulli(p) in nats, elementwise: the floor of the grey-level Bernoulli loss (chapter 6).

    .. math:: H(p) = -p \log p - (1 - p) \log(1 - p) = \min_l \, -\log p(x{=}p \mid l)

    The minimum of :func:`log_bernoulli`'s negative over the logits is reached at
    :math:`l = \operatorname{logit}(p)`, so no decoder scores a grey image ``x``
    better than ``bernoulli_entropy(x)``. Zero for binary pixels; ``0 log 0 = 0``.
    """
    if not ((probs >= 0) & (probs <= 1)).all():
        raise ValueError("bernoulli_entropy needs probabilities in [0, 1] (got values outside, or NaN)")
    return _reduce(-(torch.special.xlogy(probs, probs) + torch.special.xlogy(1 - probs, 1 - probs)), dim)


def gaussian_kl(
    mu_q: torch.Tensor,
    logvar_q: torch.Tensor,
    mu_p: torch.Tensor | float = 0.0,
    logvar_p: torch.Tensor | float = 0.0,
    dim: Dim = None,
) -> torch.Tensor:
    r"""KL(q || p) between diagonal Gaussians q = N(mu_q, var_q), p = N(mu_p, var_p) (chapters 1, 6).

    .. math:: \mathrm{KL}(q\,\|\,p) = \tfrac12\Big(\log\frac{\sigma_p^2}{\sigma_q^2}
              + \frac{\sigma_q^2 + (\mu_q-\mu_p)^2}{\sigma_p^2} - 1\Big)

    The first pair of arguments is the distribution the expectation is taken
    under (the encoder q in a VAE); the defaults make p the standard normal.
    """
    mu_p = torch.as_tensor(mu_p, dtype=mu_q.dtype, device=mu_q.device)
    logvar_p = torch.as_tensor(logvar_p, dtype=mu_q.dtype, device=mu_q.device)
    kl = 0.5 * (logvar_p - logvar_q + (torch.exp(logvar_q) + (mu_q - mu_p) ** 2) * torch.exp(-logvar_p) - 1.0)
    return _reduce(kl, dim)


def sample_normal_diag(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None,
    eps: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Reparameterised sample :math:`z = \mu + \sigma \odot \varepsilon`, :math:`\varepsilon \sim \mathcal N(0, I)` (chapter 6).

    Gradients flow to ``mu`` and ``logvar`` (Kingma & Welling, 2014). ``eps`` (the shape of
    ``mu``) is the standard normal noise drawn elsewhere (chapter 13 draws it for a global batch
    split between processes); by default it is drawn here, from ``generator``.
    """
    if eps is None:
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    elif eps.shape != mu.shape:
        raise ValueError(f"eps has shape {tuple(eps.shape)}, mu {tuple(mu.shape)}")
    return mu + torch.exp(0.5 * logvar) * eps


def log_mean_exp(x: torch.Tensor, dim: int = 0) -> torch.Tensor:
    r"""Numerically stable :math:`\log \frac1K \sum_k e^{x_k}` along ``dim`` (the IWAE estimator, chapter 7)."""
    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])
