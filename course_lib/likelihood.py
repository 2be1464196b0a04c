r"""Maximum likelihood, KL estimates and Gaussian mixtures (chapter 1).

Chapter 1 derives these results; this module is their one tested home:

* a model fitted by **maximum likelihood** minimises :math:`\mathrm{KL}(p_\text{data}\,\|\,p_\theta)`,
  and the Gaussian MLE is the sample mean and the *biased* sample variance
  (:func:`gaussian_mle`);
* :math:`\mathrm{KL}(p\,\|\,q) = \mathbb E_p[\log p - \log q]` is estimated from samples of
  :math:`p` with a standard error (:func:`monte_carlo_kl`), or computed by quadrature
  when one side is a 1-D Gaussian (:func:`kl_mixture_normal`,
  :func:`kl_normal_mixture`), which is how the chapter shows that the forward KL is
  mode-covering and the reverse KL mode-seeking;
* Gaussian mixtures, as ``torch.distributions`` objects (:func:`gaussian_mixture`,
  :func:`toy_density` for the exact density of the 2-D toy data of ``course_lib.data``).

The closed-form KL between two Gaussians lives in :func:`course_lib.distributions.gaussian_kl`.
References: Kullback & Leibler (1951); Bishop, *PRML* (2006), sections 1.6 and 10.1.2;
Minka, *Divergence measures and message passing* (2005).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from .distributions import LOG_2PI, Dim, log_normal_diag
from .toy_data import TOY_DEFAULTS, toy_centres

__all__ = [
    "gaussian_mixture",
    "toy_density",
    "gaussian_entropy",
    "gaussian_mle",
    "monte_carlo_kl",
    "expect_normal",
    "kl_mixture_normal",
    "kl_normal_mixture",
]


def _floats(*values) -> list[torch.Tensor]:
    """Tensors of one floating dtype: the widest float among tensor inputs, else the default."""
    dtypes = [v.dtype for v in values if isinstance(v, torch.Tensor) and v.is_floating_point()]
    dtype = torch.get_default_dtype()
    for d in dtypes:
        dtype = torch.promote_types(dtype, d)
    return [torch.as_tensor(v, dtype=dtype) for v in values]


def gaussian_mixture(weights, means, stds) -> MixtureSameFamily:
    r"""The Gaussian mixture :math:`p(x) = \sum_{k=1}^K \pi_k\, \mathcal N(x;\, \mu_k, \sigma_k^2 I)`.

    ``weights`` :math:`\pi` ``(K,)`` (non-negative, summing to 1), ``means`` ``(K,)`` for a
    1-D mixture or ``(K, D)`` for a D-dimensional one with isotropic components, ``stds``
    ``(K,)`` (or a scalar). Returns a ``torch.distributions.MixtureSameFamily``: its
    ``log_prob`` is the log-sum-exp of the weighted component densities and its ``sample``
    is ancestral sampling (draw :math:`k \sim \pi`, then :math:`x \sim \mathcal N(\mu_k, \sigma_k^2 I)`).
    """
    weights, means, stds = _floats(weights, means, stds)
    if weights.ndim != 1 or len(weights) == 0:
        raise ValueError(f"weights must be a non-empty (K,) vector, got shape {tuple(weights.shape)}")
    k = len(weights)
    if (weights < 0).any() or abs(float(weights.sum()) - 1.0) > 1e-5:
        raise ValueError(
            f"weights must be non-negative and sum to 1 (they sum to {float(weights.sum()):.6g}); "
            "normalise them with weights / weights.sum()."
        )
    if means.ndim not in (1, 2) or means.shape[0] != k:
        raise ValueError(f"means must be (K,) or (K, D) with K={k}, got shape {tuple(means.shape)}")
    stds = stds.expand(k) if stds.ndim == 0 else stds
    if stds.shape != (k,):
        raise ValueError(f"stds must be a scalar or (K,) with K={k}, got shape {tuple(stds.shape)}")
    if not (stds > 0).all() or not torch.isfinite(means).all():
        raise ValueError("stds must be positive and means finite.")
    if means.ndim == 1:
        components = Normal(means, stds)  # batch (K,), event ()
    else:
        components = Independent(Normal(means, stds[:, None].expand_as(means)), 1)  # event (D,)
    return MixtureSameFamily(Categorical(probs=weights), components)


def toy_density(name: str, std: float | None = None) -> MixtureSameFamily:
    r"""The exact density of ``course_lib.data.toy_mixture(name, n, std=std)``.

    An equal-weight mixture of isotropic 2-D Gaussians at ``toy_centres(name)`` (ring: 8
    modes, std 0.01; grid: 25 modes, std 0.05, as in PacGAN). Its ``log_prob`` is the true
    :math:`\log p_\text{data}(x)` that chapter 1 compares density estimators with.
    """
    centres = toy_centres(name)  # (K, 2)
    std = TOY_DEFAULTS[name] if std is None else float(std)
    k = len(centres)
    return gaussian_mixture(torch.full((k,), 1.0 / k), centres, torch.full((k,), std))


def gaussian_entropy(logvar: torch.Tensor, dim: Dim = None) -> torch.Tensor:
    r"""Differential entropy of :math:`\mathcal N(\mu, \sigma^2)`, elementwise (chapter 1).

    .. math:: H = -\mathbb E[\log \mathcal N(x;\mu,\sigma^2)] = \tfrac12\big(\log 2\pi + 1 + \log\sigma^2\big)

    Summed over ``dim`` it is the entropy of a diagonal Gaussian.
    """
    h = 0.5 * (LOG_2PI + 1.0 + logvar)
    return h if dim is None else h.sum(dim)


def gaussian_mle(x: torch.Tensor, dim: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Maximum-likelihood Gaussian fit: ``(mu, logvar)`` along ``dim`` (chapter 1).

    Setting the gradient of :math:`\sum_i \log \mathcal N(x_i; \mu, \sigma^2)` to zero gives

    .. math:: \hat\mu = \frac1N \sum_i x_i, \qquad \hat\sigma^2 = \frac1N \sum_i (x_i - \hat\mu)^2,

    the *biased* variance (divide by :math:`N`, not :math:`N-1`). For data ``(N, D)`` and
    ``dim=0`` this is the diagonal-Gaussian MLE, ``mu`` and ``logvar`` of shape ``(D,)``.
    """
    x = torch.as_tensor(x)
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    n = x.shape[dim] if x.ndim else 0
    if n < 2:
        raise ValueError(f"need at least 2 samples along dim {dim} to fit a variance, got {n}")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or inf; clean the data before fitting.")
    mu = x.mean(dim)
    var = x.var(dim, correction=0)  # biased: the maximum-likelihood estimate
    return mu, torch.log(var)


def monte_carlo_kl(log_p: torch.Tensor, log_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Monte Carlo estimate of :math:`\mathrm{KL}(p\,\|\,q)` and its standard error (chapter 1).

    ``log_p`` and ``log_q`` are :math:`\log p(x_i)` and :math:`\log q(x_i)` at ``N`` samples
    :math:`x_i \sim p` (shape ``(N,)``, or ``(N, ...)`` for several estimates at once):

    .. math:: \widehat{\mathrm{KL}} = \frac1N \sum_i \big(\log p(x_i) - \log q(x_i)\big),
              \qquad \mathrm{se} = \frac{\operatorname{std}_i(\log p(x_i) - \log q(x_i))}{\sqrt N}.

    With held-out data for :math:`p` and a model for :math:`q`, the estimate is the gap between
    the true and the model's average log-likelihood. It is unbiased; a single estimate can be
    slightly negative, the true KL cannot (Gibbs' inequality).
    """
    log_p, log_q = torch.as_tensor(log_p), torch.as_tensor(log_q)
    if log_p.shape != log_q.shape:
        raise ValueError(f"log_p {tuple(log_p.shape)} and log_q {tuple(log_q.shape)} must match")
    if log_p.ndim == 0 or log_p.shape[0] < 2:
        raise ValueError("need at least 2 samples (along dim 0) for an estimate and its error")
    diff = log_p - log_q  # (N, ...)
    if not torch.isfinite(diff).all():
        raise ValueError(
            "log p - log q is not finite at some samples: q gives (numerically) zero density where "
            "p has mass, so KL(p || q) is infinite or the log-densities overflowed."
        )
    n = diff.shape[0]
    return diff.mean(0), diff.std(0) / n**0.5


def expect_normal(
    f: Callable[[torch.Tensor], torch.Tensor],
    mu: torch.Tensor,
    std: torch.Tensor,
    n_points: int = 2001,
    width: float = 10.0,
) -> torch.Tensor:
    r""":math:`\mathbb E_{x\sim\mathcal N(\mu,\sigma^2)}[f(x)]` by quadrature on a grid (chapter 1).

    .. math:: \mathbb E[f(x)] = \int \varphi(t)\, f(\mu + \sigma t)\, dt
              \approx h \sum_{j} \varphi(t_j)\, f(\mu + \sigma t_j)

    with :math:`\varphi` the standard normal density and ``n_points`` equally spaced
    :math:`t_j \in [-\text{width}, \text{width}]`, step :math:`h` (the trapezoid rule; the
    end points carry weight :math:`\varphi(\pm 10) \approx 10^{-22}`). For smooth integrands
    with Gaussian tails it converges exponentially in ``n_points``; unlike Gauss--Hermite with a
    few dozen nodes it stays accurate when :math:`\log p` bends sharply between separated modes.
    Deterministic and differentiable in ``mu`` and ``std``, which broadcast to a shape ``S``;
    ``f`` is applied elementwise to a tensor ``(n_points, *S)`` and the result has shape ``S``.
    """
    mu, std = _floats(mu, std)
    if not (std > 0).all():
        raise ValueError("std must be positive")
    if n_points < 3:
        raise ValueError(f"n_points must be at least 3, got {n_points}")
    t = torch.linspace(-width, width, n_points, dtype=mu.dtype)
    h = 2 * width / (n_points - 1)
    weights = h * torch.exp(-0.5 * t**2 - 0.5 * LOG_2PI)  # (n_points,)
    shape = (-1, *([1] * max(mu.ndim, std.ndim)))
    return (weights.reshape(shape) * f(mu + std * t.reshape(shape))).sum(0)


def _check_1d_mixture(mixture: MixtureSameFamily) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    comp = mixture.component_distribution
    if not isinstance(mixture, MixtureSameFamily) or not isinstance(comp, Normal) or mixture.event_shape != ():
        raise ValueError("mixture must be a 1-D Gaussian mixture from gaussian_mixture(weights, means, stds)")
    return mixture.mixture_distribution.probs, comp.loc, comp.scale


def kl_mixture_normal(
    mixture: MixtureSameFamily, mu: torch.Tensor, logvar: torch.Tensor, n_points: int = 2001
) -> torch.Tensor:
    r"""Forward KL :math:`\mathrm{KL}(p\,\|\,q)` from a 1-D Gaussian mixture :math:`p` to
    :math:`q = \mathcal N(\mu, \sigma^2)` (chapter 1).

    .. math:: \mathrm{KL}(p\,\|\,q) = \sum_k \pi_k\, \mathbb E_{\mathcal N(\mu_k, \sigma_k^2)}
              \big[\log p(x) - \log q(x)\big]

    each expectation by :func:`expect_normal`. Minimising it over :math:`(\mu, \sigma^2)`
    matches the mixture's mean and variance ("mode covering"). Differentiable in ``mu``
    and ``logvar`` (scalars).
    """
    weights, locs, scales = _check_1d_mixture(mixture)
    mu, logvar = _floats(mu, logvar)

    def integrand(x: torch.Tensor) -> torch.Tensor:  # x: (n_points, K)
        return mixture.log_prob(x) - log_normal_diag(x, mu, logvar)

    per_component = expect_normal(integrand, locs.to(mu.dtype), scales.to(mu.dtype), n_points)  # (K,)
    return (weights.to(mu.dtype) * per_component).sum()


def kl_normal_mixture(
    mu: torch.Tensor, logvar: torch.Tensor, mixture: MixtureSameFamily, n_points: int = 2001
) -> torch.Tensor:
    r"""Reverse KL :math:`\mathrm{KL}(q\,\|\,p)` from :math:`q = \mathcal N(\mu, \sigma^2)` to a
    1-D Gaussian mixture :math:`p` (chapter 1).

    .. math:: \mathrm{KL}(q\,\|\,p) = -H(q) - \mathbb E_q[\log p(x)],
              \qquad H(q) = \tfrac12(\log 2\pi + 1 + \log\sigma^2)

    with the expectation by :func:`expect_normal`. Its minima put :math:`q` on one mode
    ("mode seeking"): on a well-separated component :math:`k` it is close to :math:`-\log\pi_k`.
    Differentiable in ``mu`` and ``logvar`` (scalars).
    """
    _check_1d_mixture(mixture)
    mu, logvar = _floats(mu, logvar)
    cross = expect_normal(lambda x: mixture.log_prob(x), mu, torch.exp(0.5 * logvar), n_points)
    return -gaussian_entropy(logvar) - cross
