"""course_lib.likelihood against independent references: scipy, torch.distributions, closed forms."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, optimize, stats
from scipy.special import logsumexp
from torch.distributions import Normal, kl_divergence

from course_lib import data
from course_lib import likelihood as L
from course_lib.distributions import gaussian_kl

W, M, S = [0.4, 0.6], [-2.0, 2.0], [0.5, 0.5]  # the chapter's 1-D mixture


@pytest.fixture
def g():
    return torch.Generator().manual_seed(0)


@pytest.fixture
def mix64():
    return L.gaussian_mixture(torch.tensor(W, dtype=torch.float64), torch.tensor(M, dtype=torch.float64), torch.tensor(S, dtype=torch.float64))


def scipy_log_mixture(x, w=W, m=M, s=S):
    return logsumexp([math.log(wk) + stats.norm.logpdf(x, mk, sk) for wk, mk, sk in zip(w, m, s)], axis=0)


def test_gaussian_mixture_log_prob_matches_scipy_1d_and_2d(g):
    x = 4 * torch.randn(50, generator=g, dtype=torch.float64)
    mix = L.gaussian_mixture([0.2, 0.3, 0.5], [-1.0, 0.5, 3.0], [0.3, 1.0, 2.0])
    ref = scipy_log_mixture(x.numpy(), [0.2, 0.3, 0.5], [-1.0, 0.5, 3.0], [0.3, 1.0, 2.0])
    assert np.allclose(mix.log_prob(x).numpy(), ref, atol=1e-10)
    # 2-D isotropic components: log sum_k w_k N(x; m_k, s_k^2 I)
    means, stds = torch.tensor([[0.0, 1.0], [2.0, -1.0]]), torch.tensor([0.5, 1.5])
    mix2 = L.gaussian_mixture([0.7, 0.3], means, stds)
    x2 = torch.randn(20, 2, generator=g)
    ref2 = logsumexp(
        [math.log(w) + stats.multivariate_normal(m.numpy(), s.item() ** 2 * np.eye(2)).logpdf(x2.numpy())
         for w, m, s in zip([0.7, 0.3], means, stds)], axis=0)
    assert np.allclose(mix2.log_prob(x2).numpy(), ref2, atol=1e-4)
    assert mix2.sample((7,)).shape == (7, 2)


def test_gaussian_mixture_rejects_bad_input():
    with pytest.raises(ValueError, match="sum to 1"):
        L.gaussian_mixture([0.5, 0.6], [0.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="positive"):
        L.gaussian_mixture([0.5, 0.5], [0.0, 1.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="means must be"):
        L.gaussian_mixture([0.5, 0.5], [0.0, 1.0, 2.0], [1.0, 1.0])


def test_mixture_moments_from_torch_match_the_law_of_total_variance(mix64):
    # the chapter's exercise: mean = sum w m, var = sum w (s^2 + m^2) - mean^2
    w, m, s = map(np.array, (W, M, S))
    mean = (w * m).sum()
    assert math.isclose(float(mix64.mean), mean, abs_tol=1e-12)
    assert math.isclose(float(mix64.variance), (w * (s**2 + m**2)).sum() - mean**2, abs_tol=1e-12)


def test_toy_density_is_the_density_of_toy_mixture():
    for name in ("ring", "grid"):
        dens = L.toy_density(name)
        centres, std = data.toy_centres(name), data.TOY_DEFAULTS[name]
        k = len(centres)
        # at a centre the other modes contribute nothing: log(1/K) + log N(0; 0, std^2 I_2)
        expected = -math.log(k) - math.log(2 * math.pi * std**2)
        assert torch.allclose(dens.log_prob(centres), torch.full((k,), expected), atol=1e-4)
        # the samples of course_lib.data have the density's expected log-likelihood, -H(p):
        # H = log K + log(2 pi e std^2) for well-separated modes
        x = data.toy_mixture(name, 20000, seed=1).samples
        ll = dens.log_prob(x)
        entropy = math.log(k) + math.log(2 * math.pi * math.e * std**2)
        assert abs(float(ll.mean()) + entropy) < 4 * float(ll.std()) / math.sqrt(len(x))


def test_gaussian_entropy_matches_torch():
    logvar = torch.tensor([-3.0, 0.0, 1.7])
    assert torch.allclose(L.gaussian_entropy(logvar), Normal(0.0, torch.exp(0.5 * logvar)).entropy(), atol=1e-6)
    assert torch.allclose(L.gaussian_entropy(logvar, dim=0), Normal(0.0, torch.exp(0.5 * logvar)).entropy().sum())


def test_gaussian_mle_is_the_biased_estimate_and_maximises_the_likelihood(g):
    x = torch.tensor([1.0, 2.0, 4.0, 7.0], dtype=torch.float64)
    mu, logvar = L.gaussian_mle(x)
    assert float(mu) == 3.5
    assert math.isclose(float(logvar.exp()), np.var(x.numpy(), ddof=0))  # 5.25, not 7.0 (ddof=1)
    # it maximises sum_i log N(x_i; mu, var): scipy's optimiser finds the same point
    nll = lambda p: -stats.norm.logpdf(x.numpy(), p[0], math.exp(0.5 * p[1])).sum()  # noqa: E731
    best = optimize.minimize(nll, [0.0, 0.0], method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-12})
    assert np.allclose(best.x, [float(mu), float(logvar)], atol=1e-4)
    # per column for (N, D) data
    xs = torch.randn(100, 3, generator=g)
    mu2, lv2 = L.gaussian_mle(xs)
    assert mu2.shape == (3,) and torch.allclose(lv2.exp(), xs.var(0, correction=0))


def test_gaussian_mle_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        L.gaussian_mle(torch.tensor([1.0]))
    with pytest.raises(ValueError, match="NaN"):
        L.gaussian_mle(torch.tensor([1.0, float("nan")]))


def test_monte_carlo_kl_agrees_with_closed_form_within_its_standard_error(g):
    q, p = Normal(0.5, 1.3), Normal(-0.2, 0.8)
    x = q.sample((100_000,))
    est, se = L.monte_carlo_kl(q.log_prob(x), p.log_prob(x))
    closed = gaussian_kl(torch.tensor(0.5), torch.tensor(2 * math.log(1.3)), torch.tensor(-0.2), torch.tensor(2 * math.log(0.8)))
    assert torch.allclose(closed, kl_divergence(q, p), atol=1e-6)
    assert abs(float(est - closed)) < 4 * float(se)
    assert 0 < float(se) < 0.01
    # the swapped KL is a different number, far outside the error bar
    swapped = kl_divergence(p, q)
    assert abs(float(est - swapped)) > 20 * float(se)


def test_monte_carlo_kl_rejects_bad_input():
    with pytest.raises(ValueError, match="must match"):
        L.monte_carlo_kl(torch.zeros(5), torch.zeros(4))
    with pytest.raises(ValueError, match="infinite"):
        L.monte_carlo_kl(torch.zeros(3), torch.tensor([0.0, -math.inf, 0.0]))


def test_expect_normal_known_moments():
    mu, std = torch.tensor([0.3, -1.0], dtype=torch.float64), torch.tensor([0.5, 2.0], dtype=torch.float64)
    assert torch.allclose(L.expect_normal(lambda x: x, mu, std), mu, atol=1e-12)
    assert torch.allclose(L.expect_normal(lambda x: x**2, mu, std), mu**2 + std**2, atol=1e-12)
    assert torch.allclose(L.expect_normal(torch.exp, mu, std), torch.exp(mu + std**2 / 2), atol=1e-10)
    assert torch.allclose(L.expect_normal(torch.cos, mu, std), torch.cos(mu) * torch.exp(-(std**2) / 2), atol=1e-12)


def test_kl_single_component_equals_closed_form_in_both_directions():
    one = L.gaussian_mixture(torch.tensor([1.0], dtype=torch.float64), torch.tensor([0.7], dtype=torch.float64), torch.tensor([0.4], dtype=torch.float64))
    mu, logvar = torch.tensor(-0.5, dtype=torch.float64), torch.tensor(0.3, dtype=torch.float64)
    p_mu, p_lv = torch.tensor(0.7, dtype=torch.float64), torch.tensor(2 * math.log(0.4), dtype=torch.float64)
    forward = gaussian_kl(p_mu, p_lv, mu, logvar)  # KL(p || q)
    reverse = gaussian_kl(mu, logvar, p_mu, p_lv)  # KL(q || p)
    assert abs(float(forward - reverse)) > 1.0  # the two directions differ here
    assert torch.allclose(L.kl_mixture_normal(one, mu, logvar), forward, atol=1e-9)
    assert torch.allclose(L.kl_normal_mixture(mu, logvar, one), reverse, atol=1e-9)


@pytest.mark.parametrize("mu, var", [(0.0, 1.0), (0.4, 4.09), (1.0, 0.3), (2.0, 0.25), (-1.9, 0.1), (0.0, 25.0)])
def test_kl_with_a_mixture_matches_scipy_quad(mix64, mu, var):
    sd = math.sqrt(var)

    def forward_integrand(x):
        lp = scipy_log_mixture(x)
        return math.exp(lp) * (lp - stats.norm.logpdf(x, mu, sd))

    def reverse_integrand(x):
        return stats.norm.pdf(x, mu, sd) * (stats.norm.logpdf(x, mu, sd) - scipy_log_mixture(x))

    fwd = integrate.quad(forward_integrand, -12, 12, points=[0.0], limit=500, epsabs=1e-11)[0]
    lo, hi = mu - 14 * sd, mu + 14 * sd
    rev = integrate.quad(reverse_integrand, lo, hi, points=[0.0] if lo < 0 < hi else None, limit=500, epsabs=1e-11)[0]
    mu_t, lv_t = torch.tensor(mu, dtype=torch.float64), torch.tensor(math.log(var), dtype=torch.float64)
    assert math.isclose(float(L.kl_mixture_normal(mix64, mu_t, lv_t)), fwd, abs_tol=1e-7)
    assert math.isclose(float(L.kl_normal_mixture(mu_t, lv_t, mix64)), rev, abs_tol=1e-7)


def test_forward_kl_fit_matches_moments_and_reverse_kl_fit_sits_on_one_mode(mix64):
    def fit(objective, start):  # L-BFGS with the gradient from autograd
        def value_and_grad(p):
            params = torch.tensor(p, dtype=torch.float64, requires_grad=True)
            value = objective(*params)
            value.backward()
            return float(value.detach()), params.grad.numpy()

        res = optimize.minimize(value_and_grad, start, jac=True, method="L-BFGS-B", options={"gtol": 1e-10})
        return res.x, res.fun

    (mu_f, lv_f), _ = fit(lambda mu, lv: L.kl_mixture_normal(mix64, mu, lv), [1.0, 0.0])
    assert math.isclose(mu_f, float(mix64.mean), abs_tol=1e-4)  # 0.4
    assert math.isclose(math.exp(lv_f), float(mix64.variance), rel_tol=1e-4)  # 4.09

    for start, mode, weight in (([-1.0, 0.0], -2.0, 0.4), ([1.0, 0.0], 2.0, 0.6)):
        (mu_r, lv_r), kl = fit(lambda mu, lv: L.kl_normal_mixture(mu, lv, mix64), start)
        assert abs(mu_r - mode) < 0.01 and abs(math.exp(0.5 * lv_r) - 0.5) < 0.01
        assert abs(kl + math.log(weight)) < 1e-3  # KL(N_k || p) ~ -log w_k for separated modes


def test_kl_gradients_flow():
    mix = L.gaussian_mixture([0.5, 0.5], [-1.0, 1.0], [0.5, 0.5])
    mu, logvar = torch.tensor(0.3, requires_grad=True), torch.tensor(0.0, requires_grad=True)
    (L.kl_mixture_normal(mix, mu, logvar) + L.kl_normal_mixture(mu, logvar, mix)).backward()
    assert mu.grad is not None and logvar.grad is not None and torch.isfinite(mu.grad)
    with pytest.raises(ValueError, match="1-D Gaussian mixture"):
        L.kl_normal_mixture(mu, logvar, L.toy_density("ring"))
