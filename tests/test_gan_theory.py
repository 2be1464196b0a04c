"""course_lib.gan_theory: the 1-D analytic GAN results of chapter 2 and the Dirac-GAN.

Each assert of chapter 2 that relies on these functions is shown here to fail on a
deliberately wrong input (a wrong divergence, an untrained discriminator, a
non-Gaussian target, equal variances, no regulariser).
"""

import math

import pytest
import torch
from torch import nn
from torch.distributions import Normal

from course_lib import gan, gan_theory


def test_pointwise_losses_are_the_batch_losses_of_gan():
    logits = torch.randn(100) * 5
    assert torch.allclose(gan_theory.POINTWISE_G_LOSSES["saturating"](logits).mean(), gan.g_loss_saturating(logits))
    assert torch.allclose(gan_theory.POINTWISE_G_LOSSES["non_saturating"](logits).mean(), gan.g_loss_nonsaturating(logits))


def test_jsd_and_kl_match_closed_forms():
    xs = gan_theory.grid()
    f64 = dict(dtype=torch.float64)
    lp = Normal(torch.tensor(0.0, **f64), torch.tensor(1.0, **f64)).log_prob(xs)
    lq = Normal(torch.tensor(1.0, **f64), torch.tensor(2.0, **f64)).log_prob(xs)
    kl_closed = math.log(2.0) + (1 + 1) / (2 * 4) - 0.5  # KL(N(0,1) || N(1, 4))
    assert gan_theory.kl(lp, lq, xs).item() == pytest.approx(kl_closed, abs=1e-10)
    assert gan_theory.jsd(lp, lp, xs).item() == pytest.approx(0.0, abs=1e-12)
    far = Normal(40.0, 1.0).log_prob(gan_theory.grid(-20, 60, 40_001)).double()
    assert gan_theory.jsd(Normal(0.0, 1.0).log_prob(gan_theory.grid(-20, 60, 40_001)).double(), far,
                          gan_theory.grid(-20, 60, 40_001)).item() == pytest.approx(math.log(2), abs=1e-9)


@pytest.mark.parametrize("mu", [0.5, 3.0, 10.0])
def test_generator_gradients_against_monte_carlo_and_their_sum(mu):
    g = gan_theory.generator_gradients(mu)
    # unit variances: sigma(l*) + sigma(-l*) = 1, so the two gradients add up to mu exactly
    assert g["saturating"] + g["non_saturating"] == pytest.approx(mu, abs=1e-8)
    # an independent estimate: reparameterised samples through the analytic frozen logit, float64
    z = torch.randn(400_000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def l_star(x):
        return Normal(0.0, 1.0).log_prob(x) - Normal(mu, 1.0).log_prob(x)

    mc = gan_theory.generator_gradient_mc(l_star, mu, 1.0, z.float(), gan.g_loss_nonsaturating)
    assert mc == pytest.approx(g["non_saturating"], rel=0.02)


def test_the_saturating_gradient_vanishes_far_away_and_the_ns_one_does_not():
    g = gan_theory.generator_gradients(10.0)
    assert 0 < g["saturating"] < 1e-5 and g["non_saturating"] == pytest.approx(10.0, abs=1e-3)
    # the same function with D* moving along would not be a generator step: check the frozen D* matters
    near = gan_theory.generator_gradients(1.0)
    assert near["saturating"] > 0.1


def test_gradient_through_a_trained_discriminator_check_fails_for_a_wrong_discriminator():
    """Chapter 2 asserts the trained D gives the analytic gradient within 10 %; an untrained D does not."""
    exact = gan_theory.generator_gradients(-1.0, 1.5, mu_data=1.0)
    z = torch.randn(100_000, 1, generator=torch.Generator().manual_seed(0))

    def l_star(x):  # the right discriminator: close to 0 error
        return Normal(1.0, 1.0).log_prob(x) - Normal(-1.0, 1.5).log_prob(x)

    torch.manual_seed(0)
    untrained = nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))
    for name, loss in gan.G_LOSSES.items():
        good = gan_theory.generator_gradient_mc(l_star, -1.0, 1.5, z, loss)
        assert abs(good - exact[name]) < 0.02 * abs(exact[name])
        for wrong in (untrained, lambda x: -l_star(x), lambda x: 0.5 * l_star(x)):
            bad = gan_theory.generator_gradient_mc(wrong, -1.0, 1.5, z, loss)
            assert abs(bad - exact[name]) > 0.1 * abs(exact[name]), name


def _kl_minus_jsd(mu, sigma, mu_d, sigma_d):
    xs = gan_theory.grid()
    lg, ld = Normal(mu, sigma).log_prob(xs), Normal(mu_d, sigma_d).log_prob(xs)
    return gan_theory.kl(lg, ld, xs) - gan_theory.jsd(ld, lg, xs)


def _forward_kl_minus_2jsd(mu, sigma, mu_d, sigma_d):
    xs = gan_theory.grid()
    lg, ld = Normal(mu, sigma).log_prob(xs), Normal(mu_d, sigma_d).log_prob(xs)
    return gan_theory.kl(ld, lg, xs) - 2 * gan_theory.jsd(ld, lg, xs)


def _reverse_kl_only(mu, sigma, mu_d, sigma_d):
    xs = gan_theory.grid()
    return gan_theory.kl(Normal(mu, sigma).log_prob(xs), Normal(mu_d, sigma_d).log_prob(xs), xs)


@pytest.mark.parametrize("mu, sigma", [(0.5, 1.0), (2.0, 1.0), (1.0, 0.6), (-1.5, 1.8)])
def test_theorem_2_5_holds_and_rejects_wrong_divergences(mu, sigma):
    assert gan_theory.theorem_2_5_gap(gan_theory.kl_minus_2jsd, mu, sigma) < 1e-8
    for wrong in (_kl_minus_jsd, _forward_kl_minus_2jsd, _reverse_kl_only):
        assert gan_theory.theorem_2_5_gap(wrong, mu, sigma) > 0.05, wrong.__name__


def test_theorem_2_5_by_finite_differences():
    """The gradient identity, with a central difference in mu_g of both sides (D* frozen at mu0)."""
    mu0, s0, h = 1.2, 1.3, 1e-4

    def ns(mu):
        return gan_theory.ns_objective(torch.tensor(mu, dtype=torch.float64), torch.tensor(s0, dtype=torch.float64), (mu0, s0)).item()

    def div(mu):
        return gan_theory.kl_minus_2jsd(torch.tensor(mu, dtype=torch.float64), torch.tensor(s0, dtype=torch.float64)).item()

    d_ns = (ns(mu0 + h) - ns(mu0 - h)) / (2 * h)
    d_div = (div(mu0 + h) - div(mu0 - h)) / (2 * h)
    assert d_ns == pytest.approx(d_div, abs=1e-6)


def test_best_gaussian_jsd_is_zero_for_gaussian_data_and_not_for_two_modes():
    value, mu, sigma = gan_theory.best_gaussian_jsd(Normal(1.0, 2.0).log_prob)
    assert value < 1e-8 and mu == pytest.approx(1.0, abs=1e-4) and sigma == pytest.approx(2.0, abs=1e-4)

    def bimodal(x):
        return torch.logaddexp(math.log(0.4) + Normal(-2.0, 0.5).log_prob(x), math.log(0.6) + Normal(2.0, 0.5).log_prob(x))

    assert gan_theory.best_gaussian_jsd(bimodal)[0] > 0.1


def test_best_polynomial_logit_linear_gap_only_for_unequal_variances():
    xs = gan_theory.grid(-20.0, 20.0, 20_001)
    log_pd = Normal(1.0, 1.0).log_prob(xs).double()
    for sigma_g, gap_expected in ((1.5, True), (1.0, False)):
        log_pg = Normal(-1.0, sigma_g).log_prob(xs).double()
        c = -math.log(4) + 2 * gan_theory.jsd(log_pd, log_pg, xs).item()
        _, v_lin = gan_theory.best_polynomial_logit(log_pd, log_pg, xs, 1)
        coef, v_quad = gan_theory.best_polynomial_logit(log_pd, log_pg, xs, 2)
        assert v_quad == pytest.approx(c, abs=1e-6) and v_lin <= c + 1e-9
        assert (c - v_lin > 0.01) is gap_expected
    assert torch.allclose(coef, torch.tensor([0.0, 2.0, 0.0], dtype=torch.float64), atol=1e-4)  # l* = 2x


def test_dirac_gan_simultaneous_steps_grow_the_radius_exactly():
    h = 0.1
    traj = gan_theory.dirac_gan(1.0, 0.5, 200, h)
    theta, psi = traj[:-1, 0], traj[:-1, 1]
    fprime = torch.sigmoid(-theta * psi)
    r2 = traj.pow(2).sum(1)
    assert torch.allclose(r2[1:] / r2[:-1], 1 + h**2 * fprime**2, rtol=1e-12)


def test_dirac_gan_does_not_converge_without_regularisation_and_does_with_r1():
    for alternating in (False, True):
        r = gan_theory.dirac_gan(1.0, 1.0, 1000, 0.1, alternating=alternating).norm(dim=1)
        assert r.min() > 0.9 * r[0], alternating  # never approaches the equilibrium
        r1 = gan_theory.dirac_gan(1.0, 1.0, 1000, 0.1, alternating=alternating, r1_gamma=1.0).norm(dim=1)
        assert r1[-1] < 1e-6 * r1[0], alternating
    # without R1 simultaneous steps move away; the chapter's assert would fail on a converging run
    r = gan_theory.dirac_gan(1.0, 1.0, 1000, 0.1).norm(dim=1)
    assert r[-1] > 1.5 * r[0]
    assert not (gan_theory.dirac_gan(1.0, 1.0, 1000, 0.1, r1_gamma=1.0).norm(dim=1)[-1] > 1.5 * r[0])


def test_dirac_gan_equilibrium_is_a_fixed_point():
    assert torch.equal(gan_theory.dirac_gan(0.0, 0.0, 10, 0.5), torch.zeros(11, 2, dtype=torch.float64))
