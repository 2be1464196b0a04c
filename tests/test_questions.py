"""The appendix's helpers: the perceptual distance, the held-out curves and early stopping,
the Gaussian KL of codes, and the width knob of the sweep GAN."""

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF

from course_lib import features, metrics
from course_lib import questions as Q
from course_lib import vae as V
from course_lib.data import load_mnist
from course_lib.metrics.perceptual import unit_normalise


def test_code_gaussian_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(3, 3, generator=g)
    codes = torch.randn(20000, 3, generator=g) @ A.T + torch.tensor([1.0, -2.0, 0.5])
    m, s = codes.double().mean(0), torch.cov(codes.double().T)
    ref = torch.distributions.kl_divergence(
        torch.distributions.MultivariateNormal(m, s),
        torch.distributions.MultivariateNormal(torch.zeros(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64)),
    )
    assert abs(Q.code_gaussian_kl(codes) - ref.item()) < 1e-8
    assert Q.code_gaussian_kl(torch.randn(20000, 3, generator=g)) < 0.01
    with pytest.raises(ValueError):
        Q.code_gaussian_kl(torch.randn(3, 3))


def test_early_stopping_selects_on_one_curve_and_reports_the_other():
    h = {"eval_step": [10, 20, 30], "val_neg_elbo": [5.0, 3.0, 4.0], "test_neg_elbo": [6.0, 7.0, 1.0]}
    assert Q.early_stopping(h) == (20, 7.0)  # not the test curve's own minimum
    with pytest.raises(ValueError, match="HeldOutELBO"):
        Q.early_stopping({"eval_step": [1]})


def test_held_out_callback_records_curves_that_come_back_with_the_run(tmp_path):
    x = load_mnist("train").data[:256]
    torch.manual_seed(0)
    vae = V.mlp_vae(z_dim=4, hidden=(32,))
    cb = Q.HeldOutELBO(vae, {"val": x[:64], "test": x[64:128]})
    path = tmp_path / "run.pt"
    hist = V.train_vae(vae, x, steps=20, callback=cb, callback_every=5, checkpoint=path)
    assert hist["eval_step"] == [5, 10, 15, 20] and len(hist["val_neg_elbo"]) == 4
    assert hist["test_neg_elbo"][-1] == pytest.approx(V.evaluate(vae, x[64:128])["neg_elbo"])
    assert hist["val_neg_elbo"][-1] < hist["val_neg_elbo"][0]  # it trains
    again = V.train_vae(V.mlp_vae(z_dim=4, hidden=(32,)), x, steps=20, checkpoint=path)
    assert again["val_neg_elbo"] == hist["val_neg_elbo"]


def test_mlp_gan_width_and_bad_width():
    tr = Q.mlp_gan(16)
    assert tr.G.net[0].out_features == 16 and tr.D.net[0].out_features == 32
    assert tr.run.config["width"] == 16
    with pytest.raises(ValueError):
        Q.mlp_gan(0)


def _perceptual_loop(x, y, clf):
    """Zhang et al.'s equation written out layer by layer, as an independent reference."""
    relus = [m for m in clf.body if isinstance(m, torch.nn.ReLU)]
    total = torch.zeros(len(x))
    hx, hy = x, y
    for module in clf.body:
        hx, hy = module(hx), module(hy)
        if module in relus:
            fx, fy = (hx, hy) if hx.ndim == 4 else (hx[:, :, None, None], hy[:, :, None, None])
            nx = fx / (fx.norm(dim=1, keepdim=True) + 1e-10)
            ny = fy / (fy.norm(dim=1, keepdim=True) + 1e-10)
            total += ((nx - ny) ** 2).sum(1).mean((1, 2))
    return total.double().numpy()


def test_perceptual_distance_is_the_lpips_equation_with_unit_weights():
    clf = features.load_mnist_classifier()
    x = load_mnist("test").data[:40]
    y = TF.gaussian_blur(x, 5, 1.0)
    with torch.no_grad():
        ref = _perceptual_loop(x, y, clf)
    d = metrics.perceptual_distance(x, y, clf, batch_size=16)
    assert d.shape == (40,) and np.allclose(d, ref, rtol=1e-5, atol=1e-7)
    assert np.allclose(metrics.perceptual_distance(y, x, clf), d, rtol=1e-5, atol=1e-7)
    assert np.abs(metrics.perceptual_distance(x, x, clf)).max() < 1e-10
    # a shifted digit is nearer than a noisy one in the classifier's eyes, not by pixels
    shifted = torch.roll(x, 1, dims=-1)
    noisy = (x + 0.15 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert metrics.perceptual_distance(x, shifted, clf).mean() < metrics.perceptual_distance(x, noisy, clf).mean()
    assert ((x - shifted) ** 2).mean() > ((x - noisy) ** 2).mean()
    f = torch.randn(2, 5, 3, 3)
    assert torch.allclose(unit_normalise(f).norm(dim=1), torch.ones(2, 3, 3), atol=1e-6)


def test_perceptual_distance_rejects_bad_inputs():
    x = load_mnist("test").data[:4]
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.perceptual_distance(x, x[:3])
    with pytest.raises(ValueError):
        metrics.perceptual_distance(x * 255, x)
    with pytest.raises(TypeError, match="body"):
        metrics.perceptual_distance(x, x, torch.nn.Linear(3, 3))
