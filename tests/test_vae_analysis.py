"""Tests of course_lib.vae_analysis against the linear-Gaussian model (exact log p(x) and posterior),
and proof that each notebook assert built on it fails for a wrong formula, model or optimiser."""

import math

import pytest
import torch
from torch.distributions import MultivariateNormal, kl_divergence

from course_lib import data
from course_lib import linear_gaussian as LG
from course_lib import vae as V
from course_lib import vae_analysis as A

DT = torch.float64


@pytest.fixture
def model():
    """A linear-Gaussian VAE with a diagonal exact posterior, its data and exact evidence."""
    g = torch.Generator().manual_seed(0)
    W = torch.linalg.qr(torch.randn(6, 3, generator=g, dtype=DT)).Q * torch.tensor([3.0, 2.0, 1.0], dtype=DT)
    b = torch.randn(6, generator=g, dtype=DT)
    lv = math.log(0.2)
    vae = LG.linear_gaussian_vae(W, b, lv)
    LG.set_exact_posterior(vae)
    x = torch.randn(40, 3, generator=g, dtype=DT) @ W.T + b + math.exp(0.5 * lv) * torch.randn(40, 6, generator=g, dtype=DT)
    return vae, x, W, b, lv


def _shift_encoder(vae, delta=1.5):
    with torch.no_grad():
        vae.encoder.linear.bias += delta  # every image's q is off the posterior


# --- beta-objectives ---------------------------------------------------------------------------


def test_beta_objectives_order_against_the_exact_evidence(model):
    vae, x, W, b, lv = model
    log_px = float(LG.linear_gaussian_log_evidence(x, W, b, lv).mean())
    obj = A.beta_objectives(vae, x, [0.25, 1.0, 4.0], k=50, n_samples=200)
    assert abs(obj[1.0] - log_px) < 0.05  # q is the exact posterior: the ELBO is log p(x)
    assert abs(obj["iwae"] - log_px) < 1e-6  # ... and every importance weight is p(x)
    assert obj[4.0] < log_px - 1 and obj[0.25] > log_px + 1  # beta > 1 below, beta < 1 above log p(x)
    assert all(A.beta_bound_facts(obj, log_px).values())


def test_beta_facts_fail_for_a_wrong_formula(model, monkeypatch):
    vae, x, *_ = model
    _shift_encoder(vae)
    monkeypatch.setattr(A, "beta_objective", lambda rec, kl, beta: rec - kl / beta)  # beta divides the KL
    facts = A.beta_bound_facts(A.beta_objectives(vae, x, [0.25, 1.0, 4.0], k=50))
    assert not facts["beta > 1 is below the ELBO"]


def test_beta_below_one_fact_fails_for_a_collapsed_posterior(model):
    vae, x, *_ = model
    with torch.no_grad():  # q(z | x) = p(z) for every x: zero KL, nothing in the code
        vae.encoder.linear.weight.zero_()
        vae.encoder.linear.bias.zero_()
        vae.encoder.logvar.zero_()
    facts = A.beta_bound_facts(A.beta_objectives(vae, x, [0.25, 1.0, 4.0], k=500))
    assert facts["beta > 1 is below the ELBO"] and facts["the ELBO is below log p(x)"]
    assert not facts["beta < 1 is above log p(x)"]


# --- the entropy floor --------------------------------------------------------------------------


def test_floor_excess_comparison_fails_for_a_decoder_that_ignores_z():
    x = data.load_mnist("test").data[:40]  # (40, 1, 28, 28) grey digits
    mids = 0.5 * (x[:20] + x[20:])  # pixel cross-fades of 20 pairs
    vae = V.mlp_vae(z_dim=4, hidden=(8,))
    with torch.no_grad():  # q = p(z) (zero KL) and a decoder that ignores z: the mean image
        for p in vae.parameters():
            p.zero_()
        vae.decoder.head.bias.copy_(torch.logit(x.mean(0).clamp(1e-4, 1 - 1e-4)).flatten())
    real, fade = A.floor_excess(vae, x), A.floor_excess(vae, mids)
    assert (real > 0).all() and (fade > 0).all()
    # a decoder that knows nothing scores cross-fades *closer* to their floor than real digits:
    # the loss is linear in x, the entropy concave, so the ELBO comparison alone would "pass"
    assert fade.mean() < real.mean()


# --- the no-sampling "VAE" ---------------------------------------------------------------------


def test_deterministic_elbo_exceeds_the_exact_evidence(model):
    vae, x, W, b, lv = model
    S = LG.linear_gaussian_posterior(x, W, b, lv)[1]
    log_px = LG.linear_gaussian_log_evidence(x, W, b, lv)
    det = A.deterministic_elbo(vae, x)
    # at the exact posterior the ELBO is log p(x); decoding the mean skips the E_q of the error term
    assert torch.allclose(det, log_px + torch.trace(W @ S @ W.T) / (2 * math.exp(lv)), atol=1e-8)
    assert (det > log_px + 1).all()


def test_no_sampling_gives_sigma_only_the_kl_gradient(model):
    vae, x, *_ = model
    with torch.no_grad():
        vae.encoder.logvar.copy_(torch.tensor([-2.0, 0.5, 1.0], dtype=DT))
    (-A.deterministic_elbo(vae, x).sum()).backward()
    lv = vae.encoder.logvar.detach()
    assert torch.allclose(vae.encoder.logvar.grad, len(x) * 0.5 * (lv.exp() - 1), atol=1e-10)  # d KL / d logvar


def test_train_no_sampling_drives_sigma_to_one():
    x = data.load_mnist("train").data[:256]
    torch.manual_seed(0)
    vae = V.mlp_vae(z_dim=4, hidden=(32,))
    with torch.no_grad():
        vae.encoder.head.bias[4:] = -2.0  # start at sigma = e^-1
    A.train_no_sampling(vae, x, lr=1e-2, batch_size=64, steps=150)
    with torch.no_grad():
        logvar = vae.encode(x)[1]
    assert logvar.mean().abs() < 0.2, logvar.mean()


# --- inference gaps ---------------------------------------------------------------------------


def test_inference_gaps_recover_the_exact_kl(model):
    vae, x, W, b, lv = model
    _shift_encoder(vae)
    m, S = LG.linear_gaussian_posterior(x, W, b, lv)
    mu_q, lv_q = vae.encode(x)
    kl = kl_divergence(MultivariateNormal(mu_q.detach(), torch.diag_embed(lv_q.detach().exp())),
                       MultivariateNormal(m, S)).mean().item()
    gaps = A.inference_gaps(vae, x, steps=300, k=100, lr=0.05, n_samples=200)
    log_px = LG.linear_gaussian_log_evidence(x, W, b, lv).mean().item()
    assert abs(gaps.log_px - log_px) < 0.01
    # log p(x) - ELBO_enc = KL(q_enc || p(z|x)); the posterior is a diagonal Gaussian, so the
    # optimiser can reach it: the whole gap is amortisation, the approximation gap vanishes
    assert abs(gaps.amortisation - kl) < 0.05 * kl
    assert abs(gaps.approximation) < 0.05 * kl
    assert A.gaps_resolved(gaps)["amortisation gap > noise"]
    assert not A.gaps_resolved(gaps)["approximation gap > noise"]


def test_inference_gaps_reject_an_optimiser_that_does_nothing(model):
    vae, x, *_ = model
    _shift_encoder(vae)

    def fake(vae, x, steps, lr, seed):
        with torch.no_grad():
            return vae.encode(x)

    gaps = A.inference_gaps(vae, x, steps=300, k=100, optimise=fake)
    assert gaps.amortisation == 0.0
    assert not A.gaps_resolved(gaps)["amortisation gap > noise"]


# --- IWAE consistency ------------------------------------------------------------------------


def test_iwae_facts_reject_a_wrong_estimator_and_an_untrained_model(model):
    vae, x, *_ = model
    _shift_encoder(vae)
    g = torch.Generator().manual_seed(1)
    lw = {k: vae.log_weights(x, k, generator=g).detach() for k in (1, 10, 100)}
    neg_elbo = -vae.elbo(x.repeat(50, 1), generator=g).elbo.mean().item()
    right = {k: -V.log_mean_exp(w, 0).mean().item() for k, w in lw.items()}
    wrong = {k: -w.mean().item() for k, w in lw.items()}  # the mean log-weight: the ELBO for every k
    assert all(A.iwae_facts(neg_elbo, right, nll_untrained=right[100] + 5, margin=1).values())
    assert not A.iwae_facts(neg_elbo, wrong)["tightens with k"]
    assert not A.iwae_facts(neg_elbo, right, nll_untrained=right[100] + 0.5, margin=1)["learned"]


def test_elbo_and_iwae_accept_an_explicit_posterior(model):
    vae, x, *_ = model
    q = vae.encode(x)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(vae.elbo(x, generator=g1).elbo, vae.elbo(x, generator=g2, q=q).elbo)
    q_wide = (q[0], q[1] + 1.0)
    assert not torch.allclose(vae.iwae_bound(x, 5, q=q_wide), vae.iwae_bound(x, 5, q=q))
