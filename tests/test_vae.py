"""Tests of course_lib.vae: the ELBO and IWAE bounds against a model with a known evidence
(course_lib.linear_gaussian), the ELBO against torch.distributions, the sampling path, the gradient
estimators (course_lib.estimators), shapes, errors and a short training run.

The Gaussian KL itself is tested in tests/test_distributions.py.
"""

import math

import pytest
import torch
from torch.distributions import Bernoulli, MultivariateNormal, Normal, kl_divergence

from course_lib import estimators as E
from course_lib import linear_gaussian as LG
from course_lib import vae as V
from course_lib.data import random_shift
from course_lib.utils import bf16_is_fast

DT = torch.float64


@pytest.fixture
def g():
    return torch.Generator().manual_seed(0)


def _linear_model(g, D=5, d=2, orthogonal=False):
    W = torch.randn(D, d, generator=g, dtype=DT)
    if orthogonal:  # orthogonal columns of different lengths: a diagonal posterior
        W = torch.linalg.qr(W).Q * torch.tensor([2.0, 0.7], dtype=DT)
    b = torch.randn(D, generator=g, dtype=DT)
    return W, b, math.log(0.3)


# --- the linear-Gaussian model: evidence and posterior known exactly ---------------------


def test_linear_gaussian_posterior_is_bayes_rule(g):
    W, b, lv = _linear_model(g)
    x = torch.randn(4, 5, generator=g, dtype=DT)
    m, S = LG.linear_gaussian_posterior(x, W, b, lv)
    log_px = LG.linear_gaussian_log_evidence(x, W, b, lv)
    z = torch.randn(4, 2, generator=g, dtype=DT)
    # log p(z | x) = log p(x | z) + log p(z) - log p(x), at arbitrary z
    log_joint = Normal(z @ W.T + b, math.exp(0.5 * lv)).log_prob(x).sum(1) + Normal(0.0, 1.0).log_prob(z).sum(1)
    assert torch.allclose(MultivariateNormal(m, S).log_prob(z), log_joint - log_px, atol=1e-9)


def test_elbo_identity_log_px_equals_elbo_plus_kl_to_posterior(g):
    """log p(x) = ELBO(q) + KL(q || p(z|x)) for an arbitrary (wrong) q, checked by Monte Carlo."""
    W, b, lv = _linear_model(g)
    vae = LG.linear_gaussian_vae(W, b, lv)
    with torch.no_grad():  # a deliberately poor encoder
        vae.encoder.linear.weight.normal_(generator=g)
        vae.encoder.logvar.copy_(torch.tensor([0.5, -1.0], dtype=DT))
    x = torch.randn(3, 5, generator=g, dtype=DT)
    n = 40_000
    with torch.no_grad():
        terms = vae.elbo(x.repeat(n, 1), generator=g)  # one-sample ELBOs, (n * 3,)
    est = terms.elbo.view(n, 3)
    mean, se = est.mean(0), est.std(0) / math.sqrt(n)
    log_px = LG.linear_gaussian_log_evidence(x, W, b, lv)
    m, S = LG.linear_gaussian_posterior(x, W, b, lv)
    mu_q, lv_q = vae.encode(x)
    q = MultivariateNormal(mu_q.detach(), torch.diag_embed(lv_q.detach().exp()))
    kl_post = kl_divergence(q, MultivariateNormal(m, S))
    assert (kl_post > 0.05).all()  # q really is wrong, so the bound is strict
    assert (mean < log_px).all()  # ELBO <= log p(x)
    assert torch.allclose(mean, log_px - kl_post, atol=float(4 * se.max()) + 1e-3)


def test_elbo_is_tight_and_zero_variance_at_the_exact_posterior(g):
    W, b, lv = _linear_model(g, orthogonal=True)
    vae = LG.linear_gaussian_vae(W, b, lv)
    LG.set_exact_posterior(vae)
    x = torch.randn(3, 5, generator=g, dtype=DT)
    with torch.no_grad():
        lw = vae.log_weights(x, 500, generator=g)  # (500, 3): log p(x, z) - log q(z | x)
    log_px = LG.linear_gaussian_log_evidence(x, W, b, lv)
    # with q = p(z | x) every importance weight equals p(x) exactly
    assert torch.allclose(lw, log_px.expand_as(lw), atol=1e-9)
    with torch.no_grad():
        elbo = vae.elbo(x.repeat(20_000, 1), generator=g).elbo.view(20_000, 3).mean(0)
    assert torch.allclose(elbo, log_px, atol=0.02)
    with pytest.raises(ValueError, match="not diagonal"):
        LG.set_exact_posterior(LG.linear_gaussian_vae(*_linear_model(g)))


def test_iwae_bound_increases_with_k_towards_log_px(g):
    W, b, lv = _linear_model(g)
    vae = LG.linear_gaussian_vae(W, b, lv)
    with torch.no_grad():  # a poor q: shifted mean, too narrow
        vae.encoder.linear.weight.normal_(std=0.3, generator=g)
        vae.encoder.logvar.fill_(-1.5)
    x = torch.randn(2, 5, generator=g, dtype=DT)
    log_px = LG.linear_gaussian_log_evidence(x, W, b, lv)
    reps = 2000
    bounds, ses = [], []
    with torch.no_grad():
        for k in (1, 5, 50, 500):
            est = vae.iwae_bound(x.repeat(reps, 1), k, generator=g).view(reps, 2)
            bounds.append(est.mean(0))
            ses.append(est.std(0) / math.sqrt(reps))
    gaps = [(log_px - bk) for bk in bounds]
    for a, c in zip(gaps, gaps[1:]):
        assert (c < a).all(), gaps  # L_1 <= L_5 <= L_50 <= L_500
    assert (gaps[-1] > -0.02).all()  # never above log p(x) (up to Monte Carlo noise)
    assert (gaps[0] > 1.0).all() and (gaps[-1] < 0.15 * gaps[0]).all()  # and it closes most of the gap
    # k = 1 is the ELBO in expectation (a different estimator: no closed-form KL)
    with torch.no_grad():
        elbo = vae.elbo(x.repeat(20_000, 1), generator=g).elbo.view(20_000, 2)
    se = (ses[0] ** 2 + elbo.var(0) / 20_000).sqrt()
    assert ((bounds[0] - elbo.mean(0)).abs() < 4 * se).all()


# --- the ELBO of the Bernoulli VAE, term by term ----------------------------------------


def test_elbo_matches_torch_distributions(g):
    """Catches a KL with swapped arguments, a flipped sign, a mean instead of a sum over pixels."""
    vae = V.mlp_vae(z_dim=3, hidden=(16,))
    x = torch.rand(4, 1, 28, 28, generator=g)
    terms = vae.elbo(x, generator=torch.Generator().manual_seed(1))
    mu, logvar = vae.encode(x)
    std = torch.exp(0.5 * logvar)
    z = mu + std * torch.randn(mu.shape, generator=torch.Generator().manual_seed(1))
    rec = Bernoulli(logits=vae.decode(z), validate_args=False).log_prob(x).sum((1, 2, 3))
    kl = kl_divergence(Normal(mu, std), Normal(0.0, 1.0)).sum(1)
    assert torch.allclose(terms.log_px_z, rec, atol=1e-3)
    assert torch.allclose(terms.kl, kl, atol=1e-5)
    assert torch.allclose(terms.elbo, rec - kl, atol=1e-3)
    loss, _ = vae.loss(x, beta=4.0)  # beta-VAE loss: -(rec - 4 KL), averaged over the batch
    assert loss.shape == () and loss.item() > 0


def test_gaussian_likelihood_matches_torch(g):
    vae = V.VAE(V.MLPEncoder((6,), 2, (8,)), V.MLPDecoder((6,), 2, (8,)), "gaussian", decoder_logvar=-1.0)
    x, out = torch.randn(3, 6, generator=g), torch.randn(3, 6, generator=g)
    ref = Normal(out, math.exp(-0.5)).log_prob(x).sum(1)
    assert torch.allclose(vae.log_likelihood(x, out), ref, atol=1e-5)


def test_the_encoder_variance_reaches_the_reconstruction_term(g):
    """A 'VAE' that decodes mu without sampling would give the reconstruction no gradient in logvar."""

    class Fixed(torch.nn.Module):
        z_dim = 3

        def __init__(self):
            super().__init__()
            self.mu = torch.nn.Parameter(torch.zeros(2, 3))
            self.logvar = torch.nn.Parameter(torch.zeros(2, 3))

        def forward(self, x):  # the same q for every copy of the two images
            n = len(x) // 2
            return self.mu.repeat(n, 1), self.logvar.repeat(n, 1)

    vae = V.VAE(Fixed(), V.MLPDecoder((1, 4, 4), 3, (8,)))
    x = torch.rand(2, 1, 4, 4, generator=g)
    terms = vae.elbo(x, generator=g)
    terms.log_px_z.sum().backward()
    assert vae.encoder.logvar.grad.abs().sum() > 0
    # and the noise is really there: two draws give two different reconstructions terms
    with torch.no_grad():
        a, c = vae.elbo(x, generator=g).log_px_z, vae.elbo(x, generator=g).log_px_z
    assert not torch.allclose(a, c)
    # a wider q (same mean) changes the expected reconstruction term
    with torch.no_grad():
        vae.encoder.logvar.fill_(3.0)
        wide = vae.elbo(x.repeat(2000, 1, 1, 1), generator=g).log_px_z.view(2000, 2).mean(0)
        vae.encoder.logvar.fill_(-20.0)
        narrow = vae.elbo(x, generator=g).log_px_z
    assert not torch.allclose(wide, narrow, atol=1e-2)


# --- gradient estimators --------------------------------------------------------------


def test_reparam_and_score_function_gradients_agree_and_differ_in_variance(g):
    mu, logvar = torch.tensor([0.5, -1.0]), torch.tensor([0.0, math.log(0.25)])

    def f(z):  # E f = mu^2 + sigma^2: d/dmu = 2 mu, d/dlogvar = sigma^2
        return (z**2).sum(1)

    exact_mu, exact_lv = 2 * mu, logvar.exp()
    n = 200_000
    for est in (E.reparam_grads, E.score_function_grads):
        g_mu, g_lv = est(f, mu, logvar, n, generator=g)
        se_mu, se_lv = g_mu.std(0) / math.sqrt(n), g_lv.std(0) / math.sqrt(n)
        assert (g_mu.mean(0) - exact_mu).abs().le(4 * se_mu + 1e-4).all(), est.__name__
        assert (g_lv.mean(0) - exact_lv).abs().le(4 * se_lv + 1e-4).all(), est.__name__
    r_mu, _ = E.reparam_grads(f, mu, logvar, 10_000, generator=g)
    s_mu, _ = E.score_function_grads(f, mu, logvar, 10_000, generator=g)
    assert (s_mu.var(0) > 3 * r_mu.var(0)).all()


# --- shapes, conditioning, errors ----------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 25, 25), (3, 32, 32)])
def test_conv_vae_shapes(shape, g):
    vae = V.conv_vae(z_dim=4, channels=(4, 8), hidden=16, n_res=1, shape=shape)
    x = torch.rand(2, *shape, generator=g)
    mu, logvar = vae.encode(x)
    assert mu.shape == logvar.shape == (2, 4)
    assert vae.decode(mu).shape == (2, *shape)
    s = vae.sample(3, generator=g)
    assert s.shape == (3, *shape) and 0 <= s.min() and s.max() <= 1
    assert vae.iwae_bound(x, 7).shape == (2,)


def test_conditional_vae_and_errors(g):
    cvae = V.mlp_vae(z_dim=2, hidden=(8,), n_classes=10)
    x, y = torch.rand(5, 1, 28, 28, generator=g), torch.arange(5)
    assert cvae.elbo(x, y).elbo.shape == (5,)
    assert cvae.sample(4, y=7).shape == (4, 1, 28, 28)
    assert cvae.iwae_bound(x, 3, y).shape == (5,)
    # the label changes what is decoded
    z = torch.zeros(1, 2)
    assert not torch.allclose(cvae.decode(z, torch.tensor([1])), cvae.decode(z, torch.tensor([2])))
    with pytest.raises(ValueError, match="needs labels"):
        cvae.elbo(x)
    with pytest.raises(ValueError, match="0..9"):
        cvae.elbo(x, torch.full((5,), 10))
    vae = V.mlp_vae(z_dim=2, hidden=(8,))
    with pytest.raises(ValueError, match="not conditional"):
        vae.elbo(x, y)
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        vae.encode(torch.rand(5, 28, 28))
    with pytest.raises(ValueError, match="NaN"):
        vae.encode(torch.full((1, 1, 28, 28), float("nan")))
    with pytest.raises(ValueError, match="k must be"):
        vae.iwae_bound(x, 0)
    with pytest.raises(ValueError, match="likelihood"):
        V.VAE(vae.encoder, vae.decoder, likelihood="poisson")


def test_kl_warmup():
    assert V.kl_warmup(0, 100) == 0.0 and V.kl_warmup(50, 100) == 0.5
    assert V.kl_warmup(100, 100) == 1.0 and V.kl_warmup(10**6, 100) == 1.0
    assert V.kl_warmup(0, 100, start=0.2) == pytest.approx(0.2)
    assert V.kl_warmup(5, 0) == 1.0
    with pytest.raises(ValueError):
        V.kl_warmup(0, -1)


def test_random_shift_moves_whole_pixels(g):
    x = torch.zeros(50, 1, 10, 10)
    x[:, 0, 4:6, 4:6] = torch.rand(50, 2, 2, generator=g)
    out = random_shift(x, 2, generator=g)
    assert out.shape == x.shape
    for i in range(50):  # each output is the input shifted by some (dy, dx) in [-2, 2]^2
        ok = any(
            torch.equal(out[i], torch.roll(x[i], (dy, dx), dims=(1, 2)))
            for dy in range(-2, 3) for dx in range(-2, 3)
        )
        assert ok
    assert not torch.equal(out, x)
    assert torch.equal(random_shift(x, 0), x)


# --- training and evaluation -------------------------------------------------------


def test_training_improves_the_test_elbo():
    from course_lib.data import load_mnist

    torch.manual_seed(0)
    train, test = load_mnist("train").data[:1024], load_mnist("test").data[:200]
    vae = V.mlp_vae(z_dim=8, hidden=(128,))
    before = V.evaluate(vae, test)
    hist = V.train_vae(vae, train, lr=2e-3, batch_size=64, steps=150, desc="test")
    after = V.evaluate(vae, test)
    assert len(hist["neg_elbo"]) == 150
    assert after["neg_elbo"] < before["neg_elbo"] - 250  # ~545 nats at init, ~200 after
    assert after["kl"] > 1.0  # the latent code is used
    assert V.active_units(vae, test) >= 1
    # the IWAE estimate is a tighter bound: lower NLL than the negative ELBO on average
    nll = V.iwae_nll(vae, test[:100], k=50)
    assert nll < V.evaluate(vae, test[:100])["neg_elbo"]


def test_active_units_is_zero_for_an_encoder_that_ignores_x():
    vae = V.mlp_vae(z_dim=4, hidden=(8,))
    with torch.no_grad():
        vae.encoder.body[0].weight.zero_()
    assert V.active_units(vae, torch.rand(50, 1, 28, 28)) == 0


def test_row_gru_decoder_is_autoregressive(g):
    dec = V.RowGRUDecoder((1, 6, 5), z_dim=3, hidden=8)
    z, x = torch.randn(2, 3, generator=g), torch.rand(2, 1, 6, 5, generator=g)
    logits = dec(z, x)
    assert logits.shape == (2, 1, 6, 5)
    x2 = x.clone()
    x2[:, :, 3:] = torch.rand(2, 1, 3, 5, generator=g)  # change rows 3..5
    logits2 = dec(z, x2)
    assert torch.allclose(logits[:, :, :4], logits2[:, :, :4])  # rows 0..3 see only rows < their index
    assert not torch.allclose(logits[:, :, 4:], logits2[:, :, 4:])
    vae = V.VAE(V.MLPEncoder((1, 6, 5), 3, (8,)), dec)
    assert vae.elbo(x).elbo.shape == (2,) and vae.sample(3).shape == (3, 1, 6, 5)
    # generation feeds back each row's mean: decoding with x = generated means reproduces the logits
    gen_logits = vae.decode(z)
    assert torch.allclose(dec(z, torch.sigmoid(gen_logits)), gen_logits, atol=1e-5)


def test_free_bits_floor_and_true_terms(g):
    vae = V.mlp_vae(z_dim=4, hidden=(8,))
    x = torch.rand(6, 1, 28, 28, generator=g)
    torch.manual_seed(0)
    loss0, t0 = vae.loss(x)
    torch.manual_seed(0)
    loss_fb, t_fb = vae.loss(x, free_bits=10.0)  # a floor far above the KL of a fresh encoder
    assert torch.allclose(t0.elbo, t_fb.elbo)  # the reported terms are the true ELBO
    assert torch.allclose(loss_fb, -t_fb.log_px_z.mean() + 4 * 10.0)  # every dimension is at the floor
    mu, _ = vae.encode(x)
    loss_fb.backward()
    assert vae.encoder.head.weight.grad is not None
    with pytest.raises(ValueError):
        vae.loss(x, free_bits=-1)


def test_residual_mlp_keeps_the_gradient_of_a_deep_net(g):
    x = torch.rand(64, 1, 28, 28, generator=g)
    norms = {}
    for residual in (False, True):
        torch.manual_seed(0)
        vae = V.mlp_vae(8, (64,) * 8, residual=residual)
        vae.loss(x)[0].backward()
        first = vae.encoder.body[0].weight.grad.norm()
        last = vae.encoder.head.weight.grad.norm()
        norms[residual] = float(first / last)
    assert norms[False] < 0.05 and norms[True] > 0.2, norms


def test_train_vae_checkpoint_loads_continues_and_refuses_another_run(tmp_path, capsys):
    x = torch.rand(64, 1, 28, 28)
    vae = V.mlp_vae(z_dim=2, hidden=(8,))
    hist = V.train_vae(vae, x, steps=3, batch_size=16, desc="t", checkpoint=tmp_path / "m.pt")
    assert len(hist["loss"]) == 3 and not vae.training
    fresh = V.mlp_vae(z_dim=2, hidden=(8,))
    hist2 = V.train_vae(fresh, x, steps=3, batch_size=16, desc="t", checkpoint=tmp_path / "m.pt")
    assert "loaded" in capsys.readouterr().out and hist2 == hist
    assert all(torch.equal(a, b) for a, b in zip(vae.state_dict().values(), fresh.state_dict().values()))
    # a larger budget continues the run; other settings or another architecture are errors
    assert len(V.train_vae(fresh, x, steps=4, batch_size=16, checkpoint=tmp_path / "m.pt")["loss"]) == 4
    before = (tmp_path / "m.pt").read_bytes()
    with pytest.raises(ValueError, match="lr: saved 0.001, this run 0.01"):
        V.train_vae(fresh, x, lr=1e-2, steps=4, batch_size=16, checkpoint=tmp_path / "m.pt")
    with pytest.raises(RuntimeError, match="another architecture"):
        V.train_vae(V.mlp_vae(z_dim=3, hidden=(8,)), x, steps=4, batch_size=16, checkpoint=tmp_path / "m.pt")
    assert (tmp_path / "m.pt").read_bytes() == before


def test_bf16_step_runs_and_keeps_float32_weights(g):
    vae = V.mlp_vae(z_dim=4, hidden=(16,))
    opt = torch.optim.Adam(vae.parameters(), 1e-3)
    step = V.make_vae_step(vae, opt, autocast=torch.bfloat16)
    logs = step((torch.rand(8, 1, 28, 28, generator=g),))
    assert all(math.isfinite(v) for v in logs.values())
    assert all(p.dtype == torch.float32 for p in vae.parameters())
    assert isinstance(bf16_is_fast("cpu"), bool) and bf16_is_fast("meta") is False


def test_masked_convolutions_hide_the_centre_and_what_follows_it():
    a, b = V.MaskedConv2d(1, 1, 5, "A").mask[0, 0], V.MaskedConv2d(1, 1, 3, "B").mask[0, 0]
    assert a.tolist() == [[1] * 5, [1] * 5, [1, 1, 0, 0, 0], [0] * 5, [0] * 5]
    assert b.tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0]]
    for bad in [("C", 3), ("A", 4)]:
        with pytest.raises(ValueError):
            V.MaskedConv2d(1, 1, bad[1], bad[0])


def _leaks(dec, z, shape) -> int:
    """How many logits of ``dec`` depend on their own pixel or a later one (raster order)."""
    x = torch.rand(1, *shape, requires_grad=True)
    out = dec(z[:1], x=x)[0, 0].flatten()
    n = out.numel()
    leaks = 0
    for i in range(n):
        (grad,) = torch.autograd.grad(out[i], x, retain_graph=True)
        leaks += int((grad[0, 0].flatten()[i:] != 0).any())
    return leaks


def test_pixelcnn_decoder_sees_only_the_pixels_before_each_one(g):
    torch.manual_seed(0)
    shape = (1, 7, 6)
    dec = V.PixelCNNDecoder(shape, z_dim=3, channels=(4, 8), hidden=16, width=8, layers=2, feat=4)
    z = torch.randn(2, 3, generator=g)
    assert _leaks(dec, z, shape) == 0
    dec.first.mask[0, 0, 2, 2] = 1  # a type-B first layer lets each pixel see itself
    assert _leaks(dec, z, shape) == shape[1] * shape[2]
    with pytest.raises(ValueError, match="one-channel"):
        V.PixelCNNDecoder((3, 8, 8))


def test_pixelcnn_generation_is_the_teacher_forced_model_on_its_own_output(g):
    """Generation works on a window of pixels around each one; the logits must be those of the
    whole image fed through the network at once (an under-sized window would change them)."""
    torch.manual_seed(0)
    dec = V.PixelCNNDecoder((1, 9, 13), z_dim=3, channels=(4, 8), hidden=16, width=8, layers=1, feat=4)
    z = torch.randn(3, 3, generator=g)
    with torch.no_grad():
        gen = dec(z)  # (3, 1, 9, 13) logits, each pixel's mean fed back
        assert torch.allclose(dec(z, x=torch.sigmoid(gen)), gen, atol=1e-5)
        dec.reach -= 1  # a window one pixel too small
        bad = dec(z)
        assert not torch.allclose(dec(z, x=torch.sigmoid(bad)), bad, atol=1e-3)


def test_pixel_vae_trains_with_teacher_forcing_and_samples_images(g):
    vae = V.pixel_vae(z_dim=4, channels=(4, 8), hidden=16, shape=(1, 8, 8))
    assert isinstance(vae.decoder, V.PixelCNNDecoder) and vae.decoder.autoregressive
    x = torch.rand(5, 1, 8, 8, generator=g)
    loss, terms = vae.loss(x, free_bits=0.5)
    loss.backward()
    assert terms.elbo.shape == (5,) and vae.decoder.first.weight.grad.abs().sum() > 0
    s = vae.sample(4, generator=g)
    assert s.shape == (4, 1, 8, 8) and 0 <= s.min() and s.max() <= 1
