"""Chapter 5's toy GANs train on the shared mechanism; the mode statistics against the truth."""

import math

import numpy as np
import pytest
import torch
import torch.nn.utils.parametrize  # noqa: F401

from course_lib import data, metrics, toy_gan


@pytest.mark.parametrize("method", sorted(toy_gan.METHODS))
def test_every_method_trains_and_samples(method):
    model = toy_gan.train_toy_gan("ring", steps=3, method=method, n_data=4096)
    x = model.sample(100, seed=0)
    assert x.shape == (100, 2) and torch.isfinite(x).all()
    assert torch.equal(x, model.sample(100, seed=0))
    assert model.run.step == 3
    cfg = toy_gan.METHODS[method]  # the method's settings reach the models
    assert model.D.net[0].in_features == (2 * cfg.hidden if cfg.fourier else 2) * cfg.pack
    assert (model.D.features is not None) == bool(cfg.fourier)
    assert (model.G.offsets is not None) == cfg.offsets
    assert torch.nn.utils.parametrize.is_parametrized(model.D.net[0]) == cfg.spectral_norm
    assert model.G.net[0].in_features == cfg.latent_dim + cfg.components
    assert (model.ratio is not None) == bool(cfg.ratio_steps)


def test_unknown_method_and_bad_budget_are_errors():
    with pytest.raises(ValueError, match="method='gan'"):
        toy_gan.train_toy_gan("ring", steps=1, method="gan")
    with pytest.raises(ValueError):
        toy_gan.train_toy_gan("ring", seconds=float("nan"))


def test_the_mixture_latent_is_disconnected():
    G = toy_gan.ToyGenerator(latent_dim=2, components=5)
    z = G.sample_latent(1000, torch.Generator().manual_seed(0))
    codes = z[:, 2:]
    assert z.shape == (1000, 7) and torch.equal(codes.sum(1), torch.ones(1000))
    assert set(codes.argmax(1).tolist()) == set(range(5))


def test_mode_statistics_of_the_true_mixture_and_of_the_classic_failures():
    mix = data.toy_mixture("grid", 25_000, seed=0)
    truncated = math.sqrt((1 - 5.5 * math.exp(-4.5)) / (1 - math.exp(-4.5)))  # 0.974
    stats = metrics.mode_statistics(mix.samples, mix.centres, mix.std)
    assert abs(stats.spread - truncated) < 0.02 and stats.kl_uniform < 0.01
    on_centres = mix.centres[torch.randint(25, (1000,))]  # samples piled onto the modes
    assert metrics.mode_statistics(on_centres, mix.centres, mix.std).spread < 1e-9
    one_mode = mix.samples[(mix.samples - mix.centres[0]).norm(dim=1) < 0.1]
    assert np.isclose(metrics.mode_statistics(one_mode, mix.centres, mix.std).kl_uniform, math.log(25))
    with pytest.raises(ValueError, match="no high-quality"):
        metrics.mode_statistics(torch.full((10, 2), 1.0), mix.centres, mix.std)


def test_fourier_features_have_the_stated_frequencies():
    ff = toy_gan.FourierFeatures(64, f_max=10.0, f_min=0.5)
    freq = ff.B.norm(dim=1) / (2 * math.pi)  # cycles per unit
    assert freq.min() >= 0.5 - 1e-5 and freq.max() <= 10.0 + 1e-4
    x = torch.randn(7, 2)
    h = ff(x)
    assert h.shape == (7, 128)
    assert torch.allclose(h[:, :64] ** 2 + h[:, 64:] ** 2, torch.ones(7, 64), atol=1e-5)
    with pytest.raises(ValueError, match="f_min < f_max"):
        toy_gan.FourierFeatures(8, f_max=0.1, f_min=1.0)


def test_offsets_place_each_code_and_must_match_the_codes():
    offsets = torch.tensor([[5.0, 5.0], [-5.0, 0.0]])
    G = toy_gan.ToyGenerator(components=2, offsets=offsets)
    x = G.sample(2000, torch.Generator().manual_seed(0))
    near = torch.cdist(x, offsets).argmin(1)
    for k in range(2):  # at the start each code's samples sit near its offset
        assert (x[near == k] - offsets[k]).norm(dim=1).max() < 1.0
    with pytest.raises(ValueError, match="offsets must be"):
        toy_gan.ToyGenerator(components=3, offsets=offsets)


def test_rejection_sampling_refuses_to_loop_forever_on_a_peaked_ratio():
    model = toy_gan.train_toy_gan("ring", steps=2, n_data=1024)
    with pytest.raises(RuntimeError, match="fit_ratio"):
        model.sample(10, rejection=True)
    model.ratio = lambda x: 1e4 * x[:, 0]  # so peaked that only the largest proposal passes
    with pytest.raises(RuntimeError, match="too peaked"):
        model.sample(10, seed=0, rejection=True, max_batches=2, quantile=1.0)


def test_rejection_sampling_recovers_the_target_where_the_ratio_is_exact():
    """With the exact log-ratio of two known densities, the accepted samples follow the target."""
    model = toy_gan.train_toy_gan("ring", steps=1, n_data=1024)
    model.G.sample = lambda n, gen=None: torch.randn(n, 2, generator=gen)  # proposal N(0, I)
    target_mean = torch.tensor([1.0, 0.0])  # target N((1, 0), I): log ratio = x_1 - 1/2
    model.ratio = lambda x: x[:, 0] - 0.5
    x = model.sample(4000, seed=0, rejection=True, quantile=1.0)
    assert torch.allclose(x.mean(0), target_mean, atol=0.08)
    assert torch.allclose(x.std(0), torch.ones(2), atol=0.06)


def test_score_is_the_protocol_and_undefined_spread_is_nan():
    mix = data.toy_mixture("grid", 2500, seed=3)
    s = toy_gan.score(mix.samples, "grid")
    assert s["modes"] == 25 and abs(s["high quality"] - (1 - math.exp(-4.5))) < 0.01
    far = toy_gan.score(torch.full((10, 2), 100.0), "grid")  # nothing near a mode
    assert far["modes"] == 0 and far["high quality"] == 0 and math.isnan(far["spread"])
