"""Chapter 14's formulas against independent computations: the chain simulated step by step,
the two Gaussians' KL, the exact posterior mean of Gaussian data, the continuity equation, and
samplers driven by the exact noise prediction / velocity of a Gaussian, which must return it."""

from __future__ import annotations

import math

import pytest
import torch

from course_lib import diffusion as D
from course_lib import diffusion_train as DT
from course_lib import recipes, restoration


def gaussian_eps(mu: float, s: float, sched: D.Schedule):
    """The exact E[eps | x_t] for x_0 ~ N(mu, s^2) per coordinate, as a network (t read back)."""

    def net(x, t, labels=None):
        return D.gaussian_data_eps(x, (t * sched.T).round().long(), sched, mu, s)

    return net


def gaussian_velocity(mu: float, s: float):
    def net(x, t, labels=None):
        return D.mixture_velocity(x.flatten(), t, [mu], [s], [1.0]).reshape(x.shape)

    return net


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_marginal_matches_the_simulated_chain(kind):
    sched = D.schedule(kind, T=100)
    g = torch.Generator().manual_seed(0)
    x0 = 0.5 + 0.3 * torch.randn(200_000, generator=g, dtype=torch.float64)
    x = x0.clone()
    for t in range(1, 61):  # x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) z
        x = (1 - sched.betas[t].double()).sqrt() * x + sched.betas[t].double().sqrt() * torch.randn(
            x.shape, generator=g, dtype=torch.float64)
    closed = D.q_sample(x0, 60, sched, torch.randn(x0.shape, generator=g, dtype=torch.float64))
    assert abs(x.mean() - closed.mean()) < 5e-3 and abs(x.std() - closed.std()) < 5e-3
    ab = sched.alpha_bar[60].double()
    assert abs(x.mean() - ab.sqrt() * 0.5) < 5e-3  # and both the formula's moments
    assert abs(x.var() - (ab * 0.09 + 1 - ab)) < 5e-3
    # alpha_t in place of alpha-bar_t misses by far
    wrong = sched.alphas[60].double()
    assert abs(x.var() - (wrong * 0.09 + 1 - wrong)) > 0.1


def test_schedules():
    lin, cos = D.schedule("linear", 1000), D.schedule("cosine", 1000)
    assert lin.betas[0] == 0 and lin.alpha_bar[0] == 1 and lin.T == 1000
    assert lin.betas.dtype == torch.float64  # in float32, alpha-bar_t / alpha-bar_{t-1} drifts from alpha_t
    assert math.isclose(lin.betas[1], 1e-4, rel_tol=1e-9) and math.isclose(lin.betas[-1], 0.02, rel_tol=1e-9)
    assert lin.alpha_bar[-1] < 1e-4 and cos.alpha_bar[-1] < 1e-4  # both end at noise
    f = torch.cos((torch.tensor(0.5) + 0.008) / 1.008 * math.pi / 2) ** 2 / math.cos(0.008 / 1.008 * math.pi / 2) ** 2
    assert math.isclose(cos.alpha_bar[500], f, rel_tol=1e-5)
    short = D.respace(lin, 10)
    assert short.T == 10 and torch.allclose(short.alpha_bar[1:], lin.alpha_bar[100::100], rtol=1e-4)
    assert torch.allclose(short.times, torch.arange(0, 1001, 100) / 1000)
    with pytest.raises(ValueError, match="steps"):
        D.respace(lin, 0)
    with pytest.raises(ValueError, match="kind"):
        D.schedule("quadratic")


@pytest.mark.parametrize("kind", ["beta", "posterior"])
def test_elbo_term_is_the_weighted_eps_error(kind):
    sched = D.schedule("linear", 50)
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(4, 1, 5, 5, generator=g, dtype=torch.float64)
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    eps_hat = eps + 0.3 * torch.randn(x0.shape, generator=g, dtype=torch.float64)
    for t in (2, 25, 50):
        xt = D.q_sample(x0, t, sched, eps)
        kl = D.posterior_kl(x0, xt, eps_hat, t, sched, kind)
        const = D.posterior_kl(x0, xt, eps, t, sched, kind)  # the variance mismatch alone
        weighted = D.elbo_weight(sched, t, kind) * (eps - eps_hat).flatten(1).pow(2).sum(1)
        assert torch.allclose(kl - const, weighted.double(), rtol=1e-4)
    if kind == "posterior":  # matched variances: no constant at all
        assert torch.allclose(const, torch.zeros_like(const), atol=1e-8)


def test_tweedie_gives_the_posterior_mean_of_gaussian_data():
    sched = D.schedule("cosine", 100)
    mu, s, t = 0.3, 0.5, 40
    xt = torch.linspace(-2, 2, 9, dtype=torch.float64)
    eps_hat = gaussian_eps(mu, s, sched)(xt, torch.full((9,), t / 100))
    ab = sched.alpha_bar[t].double()
    exact = mu + ab.sqrt() * s**2 / (ab * s**2 + 1 - ab) * (xt - ab.sqrt() * mu)  # Gaussian conditioning
    assert torch.allclose(D.predict_x0(xt, eps_hat, t, sched), exact, atol=1e-6)
    # chapter 11's Tweedie on y = x_t / sqrt(ab) = x_0 + sigma n, sigma^2 = (1 - ab) / ab
    sigma = math.sqrt((1 - ab) / ab)
    log_prob = torch.distributions.Normal(mu, math.sqrt(s**2 + sigma**2)).log_prob  # the density of y
    via_score = restoration.tweedie(xt / ab.sqrt(), lambda y: log_prob(y).sum(), sigma)
    assert torch.allclose(via_score, exact, atol=1e-6)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "ddpm-respaced"])
def test_samplers_with_the_exact_noise_prediction_return_the_data(sampler):
    sched = D.schedule("linear", 1000)
    mu, s = 0.5, 0.2
    g = torch.Generator().manual_seed(0)
    shape = (20_000, 1)
    if sampler == "ddpm":
        x = D.ddpm_sample(gaussian_eps(mu, s, sched), shape, sched, g)
    elif sampler == "ddpm-respaced":
        short = D.respace(sched, 100)
        x = D.ddpm_sample(gaussian_eps(mu, s, short), shape, short, g)
    else:
        x = D.ddim_sample(gaussian_eps(mu, s, sched), shape, sched, steps=250, generator=g)  # first order in 1/steps
    assert abs(x.mean() - mu) < 0.01 and abs(x.std() - s) < 0.01


def test_ddim_is_deterministic_and_eta_one_is_not():
    sched = D.schedule("linear", 100)
    net = gaussian_eps(0.0, 1.0, sched)
    a = D.ddim_sample(net, (5, 1), sched, 10, generator=torch.Generator().manual_seed(0))
    b = D.ddim_sample(net, (5, 1), sched, 10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="steps"):
        D.ddim_sample(net, (5, 1), sched, 0)


def test_mixture_velocity_satisfies_the_continuity_equation():
    means, stds, w = [-2.0, 1.0, 3.0], [0.3, 0.5, 0.2], [0.2, 0.5, 0.3]
    x = torch.linspace(-4, 5, 301, dtype=torch.float64)
    for t in (0.2, 0.5, 0.8):
        h = 1e-5
        dp_dt = (D.mixture_density(x, t + h, means, stds, w) - D.mixture_density(x, t - h, means, stds, w)) / (2 * h)
        flux = lambda y, t=t: D.mixture_density(y, t, means, stds, w) * D.mixture_velocity(y, t, means, stds, w)  # noqa: E731
        dflux_dx = (flux(x + h) - flux(x - h)) / (2 * h)
        assert (dp_dt + dflux_dx).abs().max() < 1e-5
        # and the density integrates to one
        assert abs(torch.trapezoid(D.mixture_density(torch.linspace(-10, 10, 4001, dtype=torch.float64), t,
                                                     means, stds, w), dx=20 / 4000) - 1) < 1e-6


@pytest.mark.parametrize("sampler", ["euler", "heun"])
def test_flow_samplers_with_the_exact_velocity_return_the_data(sampler):
    mu, s = 0.5, 0.2
    x0 = torch.randn(20_000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    fn = D.euler_sample if sampler == "euler" else D.heun_sample
    x = fn(gaussian_velocity(mu, s), x0, steps=50)
    err = lambda y: (y - (mu + s * x0)).abs().max()  # noqa: E731 - in 1-D the flow is the quantile map
    assert err(x) < (0.05 if sampler == "euler" else 2e-3)  # max over 20,000 draws
    if sampler == "heun":  # second order: 5 steps (10 calls) beat Euler's 10 by far
        assert err(D.heun_sample(gaussian_velocity(mu, s), x0, 5)) < 0.3 * err(
            D.euler_sample(gaussian_velocity(mu, s), x0, 10))


def test_fm_loss_is_least_at_the_marginal_velocity():
    mu, s = 0.5, 0.2
    x1 = mu + s * torch.randn(50_000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    exact = gaussian_velocity(mu, s)

    best = D.fm_loss(exact, x1, torch.Generator().manual_seed(1))
    for wrong in (lambda x, t, labels=None: exact(x, t) + 0.1, lambda x, t, labels=None: 1.2 * exact(x, t),
                  lambda x, t, labels=None: x1.mean() - x):  # shifted, scaled, the t = 0 field for every t
        assert D.fm_loss(wrong, x1, torch.Generator().manual_seed(1)) > best + 0.008


def test_guidance_combines_conditional_and_unconditional():
    def net(x, t, labels):
        return x * 0 + labels.to(x.dtype)[:, None]

    x, t, c = torch.zeros(3, 2), torch.rand(3), torch.tensor([1, 2, 3])
    assert torch.equal(D.guided(net, 10, 0.0)(x, t, c), net(x, t, c))
    assert torch.allclose(D.guided(net, 10, 2.0)(x, t, c), 3 * c[:, None].float() - 2 * 10)


def test_repaint_keeps_the_known_pixels_and_sdedit_endpoints():
    sched = D.respace(D.schedule("linear", 1000), 20)
    net = gaussian_eps(0.0, 1.0, sched)
    y = torch.rand(2, 1, 4, 4)
    mask = (torch.rand(2, 1, 4, 4) > 0.5).float()
    out = D.repaint(net, y, mask, sched, resample=2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out * mask, y * mask) and not torch.equal(out, y)
    assert torch.equal(D.sdedit(net, y, 0.0, sched), y)
    model = DT.train_diffusion(torch.rand(8, 1, 4, 4), steps=1, config={"kind": "ddpm", "T": 20, "batch_size": 4})
    filled = model.inpaint(y, mask, steps=5, resample=2)
    assert torch.allclose(filled * mask, y * mask) and torch.allclose(model.edit(y, 0.0), y)
    flow = DT.train_diffusion(torch.rand(8, 1, 4, 4), steps=1, config={"batch_size": 4})
    with pytest.raises(ValueError, match="DDPM"):
        flow.inpaint(y, mask)
    with pytest.raises(ValueError, match="strength"):
        D.sdedit(net, y, 1.5, sched)


# --- training (course_lib.diffusion_train) and the recipe ----------------------------------------


MEAN, STD = torch.tensor([1.0, -0.5]), torch.tensor([0.5, 0.3])


def _gaussian_points() -> torch.Tensor:
    return MEAN + STD * torch.randn(20_000, 2, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("kind", ["flow", "ddpm"])
def test_a_trained_model_learns_a_gaussian(kind):
    cfg = {"kind": kind, "hidden": 64, "depth": 2, "batch_size": 256, "lr": 3e-3, "T": 100, "bf16": False,
           "schedule": "linear"}
    model = DT.train_diffusion(_gaussian_points(), steps=600, seed=0, config=cfg)
    x = model.sample(4000, steps=20 if kind == "flow" else 100, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(x.mean(0), MEAN, atol=0.05) and torch.allclose(x.std(0), STD, atol=0.05)


def test_velocity_of_the_wrong_sign_fails_that_test():
    """The test above can fail: a flow regressed on x0 - x1 carries the data back into noise."""
    model = DT.train_diffusion(_gaussian_points(), steps=100, seed=0,
                               config={"hidden": 64, "depth": 2, "batch_size": 256, "lr": 3e-3, "bf16": False})
    wrong = lambda x, t, labels=None: -model.net(x, t)  # noqa: E731
    x = D.heun_sample(wrong, torch.randn(4000, 2, generator=torch.Generator().manual_seed(1)), 20)
    assert not torch.allclose(x.mean(0), MEAN, atol=0.05)


def test_image_models_sample_images_and_refuse_bad_input():
    x = torch.rand(64, 1, 28, 28)
    for kind in ("flow", "ddpm"):
        model = DT.train_diffusion(x, steps=2, seed=0, config={"kind": kind, "batch_size": 16})
        out = model.sample(3, steps=2, generator=torch.Generator().manual_seed(0))
        assert out.shape == (3, 1, 28, 28) and 0 <= out.min() and out.max() <= 1
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        DT.train_diffusion(x * 255, steps=1)
    with pytest.raises(ValueError, match="labels and n_classes"):
        DT.train_diffusion(x, steps=1, n_classes=10)
    with pytest.raises(ValueError, match="kind"):
        DT.train_diffusion(x, steps=1, config={"kind": "gan"})
    with pytest.raises(ValueError, match="unconditional"):
        model.sample(2, labels=torch.tensor([0, 1]))


def test_the_recipe_and_its_conditional_flow():
    model = recipes.train_mnist_diffusion(steps=5, seed=0)
    out = model.sample(4, generator=torch.Generator().manual_seed(0))
    assert out.shape == (4, 1, 28, 28) and 0 <= out.min() and out.max() <= 1
    assert set(model.history) == {"vae", "flow"} and len(model.history["flow"]["step"]) == 5
    labels = torch.arange(4000) % 10
    cond = recipes.train_mnist_diffusion(steps=5, labels=labels, n_classes=10, vae=model.vae)
    assert cond.vae is model.vae
    assert cond.sample(4, labels=torch.arange(4), guidance=2.0).shape == (4, 1, 28, 28)
    with pytest.raises(ValueError, match="vae_share"):
        recipes.train_mnist_diffusion(steps=1, config={"vae_share": 1.0})
