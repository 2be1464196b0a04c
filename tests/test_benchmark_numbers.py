"""The numbers the recipes are judged by, against computations that share none of their code:
``vae.evaluate`` (the VAE benchmark's test negative ELBO) against ``torch.distributions``, and
the GAN benchmark's classifier-FID path (``metrics.generator_fid``) against the classifier's
layers called by hand and the pytorch-fid formula with scipy's ``sqrtm``."""

import dataclasses

import numpy as np
import pytest
import scipy.linalg
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from course_lib import features, metrics, recipes
from course_lib import vae as V
from course_lib.data import load_mnist


def _independent_neg_elbo(vae, x, seed):
    """The test -ELBO by torch.distributions: one z ~ q(z|x) drawn with the same noise, Bernoulli
    log-likelihood summed over pixels, KL(q || N(0, I)) summed over dimensions, mean over images."""
    with torch.no_grad():
        h = vae.encoder.conv(x).flatten(1)
        mu, logvar = vae.encoder.fc(h).chunk(2, dim=1)
        q = Normal(mu, torch.exp(0.5 * logvar))
        z = mu + q.scale * torch.randn(mu.shape, generator=torch.Generator().manual_seed(seed))
        logits = vae.decoder(z)
        log_px = Bernoulli(logits=logits, validate_args=False).log_prob(x).sum((1, 2, 3))
        kl = kl_divergence(q, Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(1)
    return float((kl - log_px).mean()), float(-log_px.mean()), float(kl.mean())


@pytest.fixture(scope="module")
def trained_vae():
    torch.manual_seed(0)
    return recipes.train_mnist_vae(steps=40, config={"bf16": False}, desc="vae for evaluate")


def test_vae_evaluate_matches_torch_distributions(trained_vae):
    x = load_mnist("test").data[:300]
    got = V.evaluate(trained_vae, x, batch_size=300, seed=3)
    neg_elbo, rec, kl = _independent_neg_elbo(trained_vae, x, seed=3)
    assert got["neg_elbo"] == pytest.approx(neg_elbo, rel=1e-5)
    assert got["rec"] == pytest.approx(rec, rel=1e-5) and got["kl"] == pytest.approx(kl, rel=1e-5)
    # what the comparison catches: a reconstruction term off by 1 % moves it by ~1 nat
    assert abs(0.99 * rec + kl - neg_elbo) > 100 * abs(got["neg_elbo"] - neg_elbo) + 0.5


def test_vae_evaluate_is_a_mean_over_images_whatever_the_batch_size(trained_vae):
    """Batches of 500 draw the same noise, in the same order, as one batch of 1,000 (the noise
    comes from one seeded generator): the mean over the images must not change."""
    x = load_mnist("test").data
    a = V.evaluate(trained_vae, x, batch_size=1000, seed=0)
    b = V.evaluate(trained_vae, x, batch_size=500, seed=0)
    assert a == pytest.approx(b, rel=1e-6)


def _sequential_neg_elbo(vae, x, seed):
    """The test -ELBO of an autoregressive decoder as the product of its conditionals: pixel i's
    logit from a pass that sees only the pixels before it (the later ones zeroed), one pass per
    pixel; z, the Bernoulli term and the KL as in ``_independent_neg_elbo``."""
    with torch.no_grad():
        mu, logvar = vae.encode(x)
        q = Normal(mu, torch.exp(0.5 * logvar))
        z = mu + q.scale * torch.randn(mu.shape, generator=torch.Generator().manual_seed(seed))
        flat = x.flatten(1)
        logits = torch.empty_like(flat)
        for i in range(flat.shape[1]):
            seen = torch.zeros_like(flat)
            seen[:, :i] = flat[:, :i]
            logits[:, i] = vae.decoder(z, x=seen.view_as(x)).flatten(1)[:, i]
        log_px = Bernoulli(logits=logits, validate_args=False).log_prob(flat).sum(1)
        kl = kl_divergence(q, Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(1)
    return float((kl - log_px).mean())


def test_pixel_vae_evaluate_is_the_product_of_its_conditionals():
    """The likelihood recipe's number (bench_vae's "pixelvae" row) is a likelihood only if the
    one teacher-forced pass gives each pixel the logit it gets from the pixels before it alone."""
    torch.manual_seed(0)
    x = load_mnist("test").data[:3, :, 8:20, 8:20]  # the digits' centres: 144 passes, not 784
    vae = recipes.mnist_vae(recipes.MNIST_PIXELVAE_CONFIG, shape=(1, 12, 12)).eval()
    got = V.evaluate(vae, x, batch_size=3, seed=3)["neg_elbo"]
    assert got == pytest.approx(_sequential_neg_elbo(vae, x, seed=3), rel=1e-5)
    vae.decoder.first.mask[0, 0, 2, 2] = 1  # a first layer that sees its own pixel ...
    with torch.no_grad():
        vae.decoder.first.weight[:, 0, 2, 2] += 1.0  # ... and uses it, as training would teach it
    leaky = V.evaluate(vae, x, batch_size=3, seed=3)["neg_elbo"]
    assert abs(leaky - _sequential_neg_elbo(vae, x, seed=3)) > 1.0


def _pytorch_fid(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_gan_benchmark_fid_path_matches_an_independent_computation():
    clf = features.load_mnist_classifier()
    torch.manual_seed(0)
    G = recipes.mnist_gan_models(recipes.DCGAN_CONFIG)[0].eval()
    test = load_mnist("test").data[:400]
    ref = features.extract(clf, test)
    got = metrics.generator_fid(G, ref, clf, n=400, seed=5)
    with torch.no_grad():  # the samples, the classifier's layers and the formula, by hand
        fake = G.sample(400, generator=torch.Generator().manual_seed(5))
        clf.eval()
        f_fake = clf.body(fake).double().numpy()
        f_real = clf.body(test).double().numpy()
    assert got == pytest.approx(_pytorch_fid(f_fake, f_real), rel=1e-3)
    # and the floor the benchmark prints: real training digits against the test digits
    train = load_mnist("train").data[:400]
    floor = metrics.fid(features.extract(clf, train), ref)
    with torch.no_grad():
        assert floor == pytest.approx(_pytorch_fid(clf.body(train).double().numpy(), f_real), rel=1e-3)
    assert got > 5 * floor  # an untrained generator is far from the data


def test_gan_benchmark_config_rows_are_the_recipe_with_the_changes():
    import argparse
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gan.py"
    spec = importlib.util.spec_from_file_location("bench_gan", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    name, cfg = bench.variant('b96={"batch_size": 96, "betas": [0.0, 0.99]}')
    assert name == "recipe, b96"
    assert cfg == dataclasses.replace(recipes.MNIST_GAN_CONFIG, batch_size=96, betas=(0.0, 0.99))
    for bad in ("b96", '={"batch_size": 96}', 'x={"nope": 1}', "x={bad json", "x=[1, 2]"):
        with pytest.raises(argparse.ArgumentTypeError):
            bench.variant(bad)
