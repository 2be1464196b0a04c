"""Checks for the exercises of chapter 1 (generative modelling basics).

Each check compares the learner's function with the ``course_lib`` formula on several
inputs, and names the classic mistake when the answer matches one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..distributions import gaussian_kl, log_normal_diag
from ..likelihood import gaussian_mixture, gaussian_mle
from . import CheckFailed, call_answer, passed, reproduces, require

_DTYPE = torch.float64


def _as_tensor(value, name: str, shape: tuple[int, ...]) -> torch.Tensor:
    require(value is not None, f"{name} returned None: did you forget `return`?")
    try:
        t = torch.as_tensor(value, dtype=_DTYPE)
    except (TypeError, ValueError, RuntimeError) as err:
        raise CheckFailed(f"{name} returned {type(value).__name__}, not numbers: {err}") from err
    require(t.shape == shape or (t.numel() == 1 and shape == ()),
            f"{name} returned shape {tuple(t.shape)}; expected {shape} (work elementwise on tensors)")
    require(bool(torch.isfinite(t).all()), f"{name} returned NaN or inf: {t}")
    return t.reshape(shape)


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-6) -> bool:
    a, b = torch.as_tensor(a, dtype=_DTYPE), torch.as_tensor(b, dtype=_DTYPE)
    return bool(torch.allclose(a, b, rtol=tol, atol=tol))


@reproduces(gaussian_kl)
def check_gaussian_kl(fn: Callable) -> None:
    r"""``fn(mu1, sigma1, mu2, sigma2)`` must return KL(N(mu1, sigma1^2) || N(mu2, sigma2^2)), elementwise.

    Reference: :func:`course_lib.distributions.gaussian_kl` (which takes log-variances).
    """
    g = torch.Generator().manual_seed(1)
    mu1, mu2 = torch.randn(6, generator=g, dtype=_DTYPE), torch.randn(6, generator=g, dtype=_DTYPE)
    s1 = torch.exp(0.5 * torch.randn(6, generator=g, dtype=_DTYPE))
    s2 = torch.exp(0.5 * torch.randn(6, generator=g, dtype=_DTYPE))
    lv1, lv2 = 2 * torch.log(s1), 2 * torch.log(s2)
    got = _as_tensor(call_answer(fn, mu1, s1, mu2, s2), "kl_two_gaussians", (6,))
    ref = gaussian_kl(mu1, lv1, mu2, lv2)
    if not _close(got, ref):
        require(not _close(got, gaussian_kl(mu2, lv2, mu1, lv1)),
                "Your KL has its arguments swapped: you computed KL(N2 || N1). The expectation is "
                "under the FIRST Gaussian: KL(q || p) = E_q[log q - log p].")
        require(not _close(got, gaussian_kl(mu1, torch.log(s1), mu2, torch.log(s2))),
                "You used sigma as if it were the variance: sigma is the standard deviation, "
                "the formula needs sigma**2.")
        require(not _close(got, 2 * ref), "Your KL is twice too large: you forgot the factor 1/2.")
        require(not _close(got, ref + 0.5),
                "Your KL is off by 1/2: you forgot the -1 inside the bracket (KL(p || p) must be 0).")
        raise CheckFailed(
            f"Your KL does not match the closed form.\n  yours:    {got.tolist()}\n  expected: {ref.tolist()}"
        )
    same = _as_tensor(call_answer(fn, mu1, s1, mu1, s1), "kl_two_gaussians", (6,))
    require(_close(same, torch.zeros(6)), "KL(p || p) must be 0 for every Gaussian p.")
    passed("kl_two_gaussians matches the closed form, is 0 for equal Gaussians and is not symmetric.")


@reproduces(gaussian_mle)
def check_gaussian_mle(fn: Callable) -> None:
    r"""``fn(x)`` for 1-D data ``x`` ``(N,)`` must return ``(mu, var)``, the maximum-likelihood
    mean and variance of a Gaussian (the biased variance, dividing by N).
    """
    g = torch.Generator().manual_seed(2)
    for n in (5, 8, 50):
        x = 3.0 + 2.0 * torch.randn(n, generator=g, dtype=_DTYPE)
        out = call_answer(fn, x)
        require(isinstance(out, tuple | list) and len(out) == 2,
                f"gaussian_ml_estimate must return a pair (mu, var), got {type(out).__name__}")
        mu, var = (_as_tensor(v, "gaussian_ml_estimate", ()) for v in out)
        ref_mu, ref_var = x.mean(), x.var(correction=0)
        require(_close(mu, ref_mu), f"mu = {float(mu):.6g} is not the sample mean {float(ref_mu):.6g} (N={n}).")
        if not _close(var, ref_var):
            require(not _close(var, x.var(correction=1)),
                    "You divided by N - 1: that is the unbiased estimate of the variance, not the "
                    "maximum-likelihood one. Setting d/d(sigma^2) of the log-likelihood to 0 gives 1/N.")
            require(not _close(var, ref_var.sqrt()), "You returned the standard deviation; return the variance.")
            require(not _close(var, ref_var.log()), "You returned log(variance); return the variance itself.")
            raise CheckFailed(f"var = {float(var):.6g} is not the ML variance {float(ref_var):.6g} (N={n}).")
    passed("gaussian_ml_estimate returns the sample mean and the maximum-likelihood (1/N) variance.")


@reproduces(gaussian_mixture)
def check_mixture_log_prob(fn: Callable) -> None:
    r"""``fn(x, weights, means, stds)`` must return ``log sum_k w_k N(x; mu_k, sigma_k^2)``,
    shape ``(N,)``, stably (finite far from every mode).

    Reference: ``course_lib.likelihood.gaussian_mixture(weights, means, stds).log_prob(x)``.
    """
    w = torch.tensor([0.2, 0.5, 0.3], dtype=_DTYPE)
    m = torch.tensor([-3.0, 0.0, 2.5], dtype=_DTYPE)
    s = torch.tensor([0.5, 1.0, 0.3], dtype=_DTYPE)
    x = torch.linspace(-5.0, 5.0, 11, dtype=_DTYPE)
    got = _as_tensor(call_answer(fn, x, w, m, s), "mixture_log_prob", (11,))
    ref = gaussian_mixture(w, m, s).log_prob(x)
    comp = log_normal_diag(x[:, None], m, 2 * torch.log(s))  # (N, K) log N(x; mu_k, sigma_k^2)
    if not _close(got, ref):
        require(not _close(got, (w * comp).sum(1)),
                "You averaged the log-densities, sum_k w_k log N_k(x). The log of a sum is not the sum "
                "of the logs: compute log sum_k w_k N_k(x) = logsumexp_k(log w_k + log N_k(x)).")
        require(not _close(got, torch.logsumexp(comp, 1)) and not _close(got, torch.logsumexp(comp, 1) - math.log(3)),
                "You ignored the mixture weights: add log w_k to each component's log-density.")
        require(not _close(got, torch.logsumexp(torch.log(w) + comp, 1) + 0.5 * math.log(2 * math.pi)),
                "You dropped the -1/2 log(2 pi) of the Gaussian log-density.")
        raise CheckFailed(
            f"mixture_log_prob does not match.\n  yours:    {got.tolist()}\n  expected: {ref.tolist()}"
        )
    far = torch.tensor([-60.0, 80.0], dtype=_DTYPE)
    out = torch.as_tensor(call_answer(fn, far, w, m, s), dtype=_DTYPE)
    require(bool(torch.isfinite(out).all()),
            f"Far from the modes your log-density is {out.tolist()}: exp underflowed to 0 and log(0) = -inf. "
            "Never take log(sum(exp(...))); use torch.logsumexp.")
    require(_close(out, gaussian_mixture(w, m, s).log_prob(far), 1e-6), "mixture_log_prob is wrong far from the modes.")
    passed("mixture_log_prob matches the mixture density and stays finite far from the modes.")


@reproduces(gaussian_mixture)
def check_mixture_moments(fn: Callable) -> None:
    r"""``fn(weights, means, stds)`` must return ``(mean, var)`` of the 1-D mixture
    ``sum_k w_k N(mu_k, sigma_k^2)``.

    Reference: ``torch.distributions.MixtureSameFamily.mean`` and ``.variance``.
    """
    w = torch.tensor([0.25, 0.25, 0.5], dtype=_DTYPE)
    m = torch.tensor([-2.0, 1.0, 3.0], dtype=_DTYPE)
    s = torch.tensor([0.5, 1.5, 0.8], dtype=_DTYPE)
    out = call_answer(fn, w, m, s)
    require(isinstance(out, tuple | list) and len(out) == 2,
            f"mixture_moments must return a pair (mean, var), got {type(out).__name__}")
    mean, var = (_as_tensor(v, "mixture_moments", ()) for v in out)
    mix = gaussian_mixture(w, m, s)
    require(_close(mean, mix.mean), f"mean = {float(mean):.6g}, expected sum_k w_k mu_k = {float(mix.mean):.6g}.")
    if not _close(var, mix.variance):
        require(not _close(var, (w * s**2).sum()),
                "You kept only the average within-component variance sum_k w_k sigma_k^2 and forgot the "
                "spread of the means: var = sum_k w_k (sigma_k^2 + mu_k^2) - mean^2.")
        require(not _close(var, (w * (s**2 + m**2)).sum()), "You forgot to subtract mean^2 (that is E[x^2]).")
        require(not _close(var, (w**2 * s**2).sum()),
                "That is the variance of the weighted SUM sum_k w_k x_k of independent variables. A "
                "mixture picks ONE component at random; use the law of total variance.")
        raise CheckFailed(f"var = {float(var):.6g}, expected {float(mix.variance):.6g}.")
    passed("mixture_moments gives the mean and the law-of-total-variance variance.")
