"""Chapter 11: degradation operators, metrics, classical wrappers, plug-and-play, priors."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib import data, denoisers
from course_lib import restoration as R


def _ops(shape=(2, 1, 16, 24)):
    g = torch.Generator().manual_seed(0)
    return [
        R.Identity(),
        R.Blur(R.gaussian_kernel(5, 1.2)),
        R.Blur(torch.rand(3, 5, generator=g)),  # not symmetric: the adjoint is not A itself
        R.Downsample(2),
        R.Downsample(4),
        R.Mask(R.random_mask(shape, 0.3, g)),
    ]


@pytest.mark.parametrize("op", _ops(), ids=lambda o: type(o).__name__)
def test_adjoint(op):
    """<Ax, y> = <x, A^T y> for random x, y: the adjoint is the transpose of A."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 1, 16, 24, generator=g, dtype=torch.float64)
    ax = op(x)
    y = torch.randn(ax.shape, generator=g, dtype=torch.float64)
    lhs, rhs = (ax * y).sum(), (x * op.adjoint(y)).sum()
    assert torch.allclose(lhs, rhs, rtol=1e-6), (lhs, rhs)


def test_adjoint_test_catches_a_wrong_adjoint():
    """The adjoint check fails for the classic slip: upsampling without dividing by factor²."""
    op = R.Downsample(2)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 1, 8, 8, generator=g, dtype=torch.float64)
    y = torch.randn(1, 1, 4, 4, generator=g, dtype=torch.float64)
    wrong = F.interpolate(y, scale_factor=2, mode="nearest")
    assert not torch.allclose((op(x) * y).sum(), (x * wrong).sum(), rtol=1e-3)


@pytest.mark.parametrize("op", _ops(), ids=lambda o: type(o).__name__)
def test_data_step_is_the_minimiser(op):
    """solve(y, z, a) zeroes the gradient of ||Ax - y||^2 + a||x - z||^2, i.e. it is
    (A^T A + a I)^{-1}(A^T y + a z)."""
    g = torch.Generator().manual_seed(2)
    x0 = torch.randn(2, 1, 16, 24, generator=g, dtype=torch.float64)
    y = op(x0) + 0.1 * torch.randn(op(x0).shape, generator=g, dtype=torch.float64)
    z = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    for alpha in (0.05, 1.0):
        x = op.solve(y, z, alpha).requires_grad_(True)
        f = (op(x) - y).square().sum() + alpha * (x - z).square().sum()
        (grad,) = torch.autograd.grad(f, x)
        assert grad.abs().max() < 1e-8


def test_blur_matches_circular_convolution():
    """Blur is a convolution with the (centred) kernel and wrap-around boundary."""
    g = torch.Generator().manual_seed(3)
    x = torch.rand(1, 1, 12, 12, generator=g, dtype=torch.float64)
    k = torch.rand(3, 3, generator=g)
    padded = F.pad(x, (1, 1, 1, 1), mode="circular")
    # conv2d is a correlation: flip the kernel for a convolution
    ref = F.conv2d(padded, k.flip(0, 1).double()[None, None])
    assert torch.allclose(R.Blur(k)(x), ref, atol=1e-10)


def test_downsample_is_block_mean_and_refuses_bad_sizes():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert R.Downsample(2)(x)[0, 0, 0, 0] == (0 + 1 + 4 + 5) / 4
    with pytest.raises(ValueError, match="multiple"):
        R.Downsample(4)(torch.zeros(1, 1, 10, 12))


def test_psnr_is_the_formula_per_image():
    """skimage's PSNR is 10 log10(1 / MSE) for [0, 1] images; averaged over images, not pixels."""
    g = torch.Generator().manual_seed(4)
    x = torch.rand(3, 1, 16, 16, generator=g)
    est = (x + torch.tensor([0.01, 0.05, 0.1]).view(3, 1, 1, 1) * torch.randn(x.shape, generator=g)).clamp(0, 1)
    mse = (x - est).double().square().flatten(1).mean(1)
    assert R.psnr(x, est) == pytest.approx(float((10 * torch.log10(1 / mse)).mean()), abs=1e-4)
    pooled = float(10 * torch.log10(1 / mse.mean()))  # MSE averaged over every pixel first
    assert abs(R.psnr(x, est) - pooled) > 1.0
    assert R.psnr(x * 255, est * 255, data_range=255) == pytest.approx(R.psnr(x, est), abs=1e-4)


def test_ssim_is_wang_et_al():
    """SSIM with the paper's Gaussian window: 1 for identical images, lower with noise, and not
    scikit-image's default uniform window."""
    from skimage.metrics import structural_similarity

    x = data.load_image("camera")[None, :, :64, :64]
    noisy = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert R.ssim(x, x) == pytest.approx(1.0)
    s = R.ssim(x, noisy)
    assert 0 < s < 0.9
    default = structural_similarity(x[0, 0].double().numpy(), noisy[0, 0].double().numpy(), data_range=1)
    assert abs(s - default) > 1e-3


def test_classical_denoisers_denoise():
    """Each baseline raises PSNR on a noisy crop of a held-out photo (BM3D the most)."""
    x = data.load_photos("test")["camera"][None, :, 200:264, 200:264]
    sigma = 25 / 255
    y = R.add_noise(x, sigma, torch.Generator().manual_seed(0))
    base = R.psnr(x, y)
    scores = {k: R.psnr(x, f(y, sigma)) for k, f in R.CLASSICAL_DENOISERS.items()}
    assert all(s > base + 3 for s in scores.values()), (base, scores)
    assert scores["bm3d"] == max(scores.values())


def test_classical_deconvolution_and_inpainting():
    x = data.load_photos("test")["camera"][None, :, 200:264, 200:264].double()
    k = R.gaussian_kernel(9, 1.6)
    y = R.add_noise(R.Blur(k)(x), 0.01, torch.Generator().manual_seed(0))
    assert R.psnr(x, R.wiener(y, k)) > R.psnr(x, y) + 0.5
    assert R.psnr(x, R.richardson_lucy(y, k)) > R.psnr(x, y) + 0.5
    m = R.random_mask(x.shape, 0.3, torch.Generator().manual_seed(0))
    assert R.psnr(x, R.inpaint_biharmonic(m * x, m)) > R.psnr(x, m * x) + 10
    small = R.Downsample(2)(x)
    assert R.bicubic(small, 2).shape == x.shape


def test_pnp_data_step_alone_is_the_least_squares_solution():
    """With an identity 'denoiser', plug-and-play on a mask keeps the observed pixels."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 1, 16, 16, generator=g)
    m = R.random_mask(x.shape, 0.5, g)
    out = R.pnp_hqs(m * x, R.Mask(m), lambda im, s: im, sigma=0.0, iters=4)
    assert torch.allclose(out * m, x * m, atol=1e-3)


def test_deep_image_prior_fits_the_observation():
    x = data.load_photos("test")["camera"][None, :, 200:232, 200:232]
    out, curve = R.deep_image_prior(x, iters=60, channels=(8, 16), clean=x, every=20)
    assert out.shape == x.shape and curve["loss"][-1] < curve["loss"][0]
    assert len(curve["psnr"]) == len(curve["step"]) == 4


def test_latent_restore_finds_the_latent_of_a_generated_image():
    """With a known generator, the MAP latent of a half-masked image reproduces the whole image."""
    torch.manual_seed(0)
    w = torch.randn(4, 64)

    def generate(z):
        return torch.sigmoid(z @ w).reshape(-1, 1, 8, 8)

    z_true = torch.randn(2, 4, generator=torch.Generator().manual_seed(1))
    x = generate(z_true)
    m = torch.zeros(1, 1, 8, 8)
    m[..., :4, :] = 1
    out, _ = R.latent_restore(generate, m * x, R.Mask(m), z_dim=4, sigma=0.01, steps=400, lr=0.05)
    assert (out - x).abs().max() < 0.05
    hole = 1 - m
    assert ((out - x) * hole).abs().max() < ((0.5 - x) * hole).abs().max()


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="255"):
        R.add_noise(torch.zeros(1, 1, 4, 4), 25)
    with pytest.raises(ValueError, match="kernel"):
        R.Blur(R.gaussian_kernel(9))(torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="zeros and ones"):
        R.Mask(torch.full((1, 1, 4, 4), 0.5))
    with pytest.raises(ValueError, match="shapes differ"):
        R.psnr(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))
    with pytest.raises(ValueError, match="sigma"):
        denoisers.Denoiser()(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        denoisers.Denoiser(sigma=0.1)(torch.zeros(1, 3, 8, 8))


def test_photos_split_is_disjoint():
    train, test = data.load_photos("train"), data.load_photos("test")
    assert not set(train) & set(test)
    assert all(v.ndim == 3 and v.shape[0] == 1 and 0 <= v.min() and v.max() <= 1 for v in test.values())
    assert math.isclose(float(test["camera"].mean()), float(np.asarray(data.load_image("camera")).mean()), rel_tol=1e-6)


def test_tweedie_matches_the_posterior_mean():
    """Tweedie's y + σ² ∇log p_σ(y) equals E[x | y] computed by Bayes' rule, and a Monte Carlo
    average of x over pairs with y in a narrow bin; a wrong factor (σ instead of σ²) fails."""
    weights, means, stds = torch.tensor([0.3, 0.7]), torch.tensor([-1.0, 1.5]), torch.tensor([0.2, 0.5])
    sigma = 0.6
    mix = torch.distributions.MixtureSameFamily(torch.distributions.Categorical(weights),
                                                torch.distributions.Normal(means, (stds**2 + sigma**2).sqrt()))
    y = torch.linspace(-3, 4, 57, dtype=torch.float64)
    exact = R.mixture_posterior_mean(y, weights.double(), means.double(), stds.double(), sigma)
    tw = R.tweedie(y, lambda v: mix.log_prob(v.float()).double(), sigma)
    assert torch.allclose(tw, exact, atol=1e-5)
    score = (tw - y) / sigma**2
    assert (y + sigma * score - exact).abs().max() > 0.1
    g = torch.Generator().manual_seed(0)
    k = torch.multinomial(weights, 400_000, replacement=True, generator=g)
    x = means[k] + stds[k] * torch.randn(400_000, generator=g)
    yy = x + sigma * torch.randn(400_000, generator=g)
    for y0 in (-1.0, 0.3, 2.0):
        near = (yy - y0).abs() < 0.02
        ref = R.mixture_posterior_mean(torch.tensor(y0), weights, means, stds, sigma)
        assert abs(float(x[near].mean()) - float(ref)) < 0.03


def test_the_recipe_trains_and_maps_any_size_to_the_image(tmp_path):
    from course_lib import recipes

    model = recipes.train_denoiser(steps=3, checkpoint=tmp_path / "d.pt")
    assert isinstance(model, denoisers.Denoiser) and model.sigma == pytest.approx(25 / 255)
    y = torch.rand(2, 1, 37, 51)
    with torch.no_grad():
        out = model(y)
    assert out.shape == y.shape
    # the module returns the image, not the residual: an untrained-ish net stays near its input
    assert (out - y).abs().mean() < (out - (y - out)).abs().mean()
    again = recipes.train_denoiser(steps=3, checkpoint=tmp_path / "d.pt")  # resumes, trains nothing
    assert again.run.step == 3
    with pytest.raises(ValueError, match="255"):
        recipes.train_denoiser(steps=1, sigma=25)


def test_other_restorers_keep_the_size():
    y = torch.rand(2, 1, 30, 42)
    for net in (denoisers.DnCNN(5, 8), denoisers.DAE(8, 4)):
        assert net(y).shape == y.shape
    assert denoisers.ESPCN(4, 8)(y).shape == (2, 1, 120, 168)
    m = R.random_mask(y.shape, 0.3, torch.Generator().manual_seed(0))
    out = denoisers.Inpainter((8, 16), 1)(y, m)
    assert torch.equal(out * m, y * m)  # the observed pixels are kept
    with pytest.raises(ValueError, match="larger than"):
        denoisers.random_patches([torch.rand(1, 20, 20)], 2, 32, torch.Generator())


def test_the_shipped_denoiser_beats_non_local_means():
    """The shipped weights load (weights_only, SHA-256 checked) and denoise a held-out crop
    at two levels better than scikit-image's best; a noise level in 0-255 units is refused."""
    x = data.load_photos("test")["astronaut"][None, :, 100:228, 100:228]
    for level in (15, 25):
        sigma = level / 255
        model = R.pretrained_denoiser(sigma)
        y = R.add_noise(x, sigma, torch.Generator().manual_seed(level))
        with torch.no_grad():
            assert R.psnr(x, model(y)) > R.psnr(x, R.denoise_nl_means(y, sigma)) + 0.5
    with pytest.raises(ValueError, match="255"):
        R.pretrained_denoiser(25)


def test_benchmark_table_reads_the_saved_rows(tmp_path):
    import json

    path = tmp_path / "b.json"
    assert R.benchmark_table(path) == ""
    rows = [{"sigma": 25, "method": "bm3d", "psnr": 30.5, "ssim": 0.86, "seconds": 25.0},
            {"sigma": 25, "method": "recipe, 300 s", "psnr": 29.9, "ssim": 0.85, "seconds": 1.0, "steps": 800}]
    path.write_text(json.dumps({"machine": "m", "rows": rows}))
    table = R.benchmark_table(path)
    assert "| 25 | bm3d | 30.50 | 0.860 | 25.0 | - |" in table and "| 800 |" in table


def test_residual_loss_is_the_denoised_images_squared_error():
    net = denoisers.DnCNN(4, 8).net
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 12, 12, generator=g)
    y = x + 0.1 * torch.randn(x.shape, generator=g)
    loss = denoisers.residual_loss(net, x, y)
    assert torch.allclose(loss, ((y - net(y)) - x).square().mean())
    assert not torch.allclose(loss, (net(y) - x).square().mean())  # predicting the image instead
