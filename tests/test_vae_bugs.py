"""The broken CIFAR "VAE" listing of the appendix fails the way the appendix says, and each
repair removes its failure."""

import warnings

import pytest
import torch
import torch.nn.functional as F

from course_lib import vae_bugs as B


def _digits(n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 8:20, 10:18] = torch.rand(n, 1, 12, 8, generator=g)  # a bright block, black background
    return x


def test_as_cifar_round_trip():
    x = _digits(5)
    xc = B.as_cifar(x)
    assert xc.shape == (5, 3, 32, 32) and torch.allclose(B.from_cifar(xc), x, atol=1e-7)
    assert xc[:, :, :2].abs().sum() == 0  # the padding is black
    with pytest.raises(ValueError):
        B.as_cifar(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError):
        B.from_cifar(torch.rand(2, 1, 28, 28))


def test_flatten_bug_multiplies_the_batch_and_the_repair_does_not():
    xc = B.as_cifar(_digits(8))
    torch.manual_seed(0)
    assert B.ListingEncoder(16, fixed=False)(xc).shape == (8 * 16, 16)
    assert B.ListingEncoder(16, fixed=True)(xc).shape == (8, 16)


def test_decoder_bug_breaks_the_batch_and_mse_only_warns():
    torch.manual_seed(0)
    broken = B.ListingAE(fixed=False)
    xc = B.as_cifar(_digits(64))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loss = B.listing_loss(broken, xc)
    assert broken(xc).shape == (1, 3, 32, 32) and torch.isfinite(loss)
    assert any("target size" in str(w.message) for w in caught)
    with pytest.raises(RuntimeError, match="invalid for input of size"):
        broken(xc[:50])
    fixed = B.ListingAE(fixed=True)
    assert fixed(xc[:50]).shape == (50, 3, 32, 32)


def test_imagenet_targets_are_out_of_reach_and_the_floor_is_exact():
    xc = B.as_cifar(_digits(16))
    t = B.imagenet_normalise(xc)
    assert torch.allclose(B.imagenet_denormalise(t), xc, atol=1e-6)
    assert (t[xc == 0] < -1.8).all()  # black -> about -2.1
    floor = B.best_sigmoid_mse(t)
    # no output in [0, 1] does better: the clip is the per-pixel optimum
    for other in (torch.full_like(t, 0.5), torch.rand_like(t), t.clamp(0, 1) * 0.9):
        assert F.mse_loss(other, t) > floor
    assert B.best_sigmoid_mse(xc) == 0  # targets in [0, 1]: no floor


def test_random_crop_flip_changes_the_images_deterministic_per_generator():
    xc = B.as_cifar(_digits(32))
    a = B.random_crop_flip(xc, torch.Generator().manual_seed(0))
    b = B.random_crop_flip(xc, torch.Generator().manual_seed(0))
    c = B.random_crop_flip(xc, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, c) and a.shape == xc.shape


def test_repaired_vae_trains_and_its_codes_approach_the_prior_unlike_the_autoencoder():
    from course_lib.data import load_mnist
    from course_lib.questions import code_gaussian_kl

    x = B.as_cifar(load_mnist("train").data[:512])
    torch.manual_seed(0)
    ae, vae = B.ListingAE(fixed=True, logits=True), B.repaired_vae()
    oa, ov = torch.optim.Adam(ae.parameters(), 2e-3), torch.optim.Adam(vae.parameters(), 2e-3)
    for i in range(40):
        xb = x[(i * 32) % 512 :][:32]
        for opt, loss in ((oa, B.bernoulli_loss(ae, xb)), (ov, vae.loss(xb)[0])):
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        mu, logvar = vae.encode(x)
        z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=torch.Generator().manual_seed(0))
        kl_ae, kl_vae = code_gaussian_kl(ae.encoder(x)), code_gaussian_kl(z)  # the codes each decoder saw
    assert kl_ae > 3 * kl_vae
    assert ae.sample(3).shape == (3, 3, 32, 32) and 0 <= ae.sample(3).min()
