import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from course_lib import distributions as D


@pytest.fixture
def g():
    return torch.Generator().manual_seed(0)


def test_log_normal_diag_matches_torch(g):
    x, mu = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    logvar = torch.randn(5, 7, generator=g)
    ref = Normal(mu, torch.exp(0.5 * logvar)).log_prob(x)
    assert torch.allclose(D.log_normal_diag(x, mu, logvar), ref, atol=1e-5)
    # summing over D dimensions gives one log(2 pi)/2 per dimension, not D^2 of them
    assert torch.allclose(D.log_normal_diag(x, mu, logvar, dim=1), ref.sum(1), atol=1e-4)
    assert torch.allclose(D.log_standard_normal(x, dim=1), Normal(0.0, 1.0).log_prob(x).sum(1), atol=1e-4)


def test_log_bernoulli_matches_torch_and_is_stable(g):
    logits = 5 * torch.randn(4, 1, 6, 6, generator=g)
    x = (torch.rand(4, 1, 6, 6, generator=g) > 0.5).float()
    ref = Bernoulli(logits=logits).log_prob(x).sum((1, 2, 3))
    assert torch.allclose(D.log_bernoulli(x, logits, dim=(1, 2, 3)), ref, atol=1e-4)
    extreme = D.log_bernoulli(torch.tensor([1.0, 0.0]), torch.tensor([-200.0, 200.0]))
    assert torch.isfinite(extreme).all() and torch.allclose(extreme, torch.tensor([-200.0, -200.0]))


def test_bernoulli_entropy_is_torch_entropy_and_the_minimum_bernoulli_loss(g):
    p = torch.rand(3, 1, 5, 5, generator=g).clamp(0.01, 0.99)
    h = D.bernoulli_entropy(p, dim=(1, 2, 3))
    assert torch.allclose(h, Bernoulli(probs=p).entropy().sum((1, 2, 3)), atol=1e-5)
    # the Bernoulli loss of grey x is smallest at logits = logit(x), where it equals H(x)
    best = -D.log_bernoulli(p, torch.logit(p), dim=(1, 2, 3))
    assert torch.allclose(h, best, atol=1e-4)
    for shift in (-0.3, 0.3):
        assert (-D.log_bernoulli(p, torch.logit(p) + shift, dim=(1, 2, 3)) > h).all()
    edge = D.bernoulli_entropy(torch.tensor([0.0, 1.0, 0.5]))
    assert torch.allclose(edge, torch.tensor([0.0, 0.0, math.log(2)]))
    with pytest.raises(ValueError, match="probabilities"):
        D.bernoulli_entropy(torch.tensor([1.5]))


def test_gaussian_kl_closed_form_vs_torch_and_monte_carlo(g):
    mu_q, logvar_q = torch.randn(6, generator=g), torch.randn(6, generator=g)
    mu_p, logvar_p = torch.randn(6, generator=g), torch.randn(6, generator=g)
    q, p = Normal(mu_q, torch.exp(0.5 * logvar_q)), Normal(mu_p, torch.exp(0.5 * logvar_p))
    closed = D.gaussian_kl(mu_q, logvar_q, mu_p, logvar_p)
    assert torch.allclose(closed, kl_divergence(q, p), atol=1e-5)
    z = mu_q + torch.exp(0.5 * logvar_q) * torch.randn(200_000, 6, generator=g)
    mc = (q.log_prob(z) - p.log_prob(z)).mean(0)
    assert torch.allclose(closed, mc, atol=0.05 + 0.02 * closed.abs().max())
    # the argument order matters: KL is not symmetric
    swapped = D.gaussian_kl(mu_p, logvar_p, mu_q, logvar_q)
    assert not torch.allclose(closed, swapped, atol=1e-2)


def test_gaussian_kl_to_standard_normal(g):
    mu, logvar = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    ref = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)  # Kingma & Welling, appendix B
    assert torch.allclose(D.gaussian_kl(mu, logvar, dim=1), ref, atol=1e-5)
    assert float(D.gaussian_kl(torch.zeros(2), torch.zeros(2)).abs().max()) == 0.0


def test_sample_normal_diag_moments_and_gradient(g):
    mu = torch.tensor([1.0, -2.0], requires_grad=True)
    logvar = torch.tensor([0.0, math.log(4.0)], requires_grad=True)
    z = D.sample_normal_diag(mu.expand(100_000, 2), logvar.expand(100_000, 2), generator=g)
    assert torch.allclose(z.mean(0), mu.detach(), atol=0.03)
    assert torch.allclose(z.std(0), torch.tensor([1.0, 2.0]), atol=0.03)
    z.sum().backward()  # reparameterised: d/dmu E[z] = 1 per sample
    assert torch.allclose(mu.grad, torch.full((2,), 100_000.0))
    assert logvar.grad is not None


def test_log_mean_exp():
    x = torch.tensor([[1000.0, 1000.0], [1000.0, 998.0]])
    out = D.log_mean_exp(x, dim=1)
    assert torch.isfinite(out).all()
    assert torch.allclose(out, torch.tensor([1000.0, 1000.0 + math.log((1 + math.exp(-2)) / 2)]))
