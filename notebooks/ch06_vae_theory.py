# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: nbgrader,tags,-all
#     notebook_metadata_filter: kernelspec,jupytext,-jupytext.text_representation.jupytext_version,-jupytext.text_representation.format_version
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 6 — VAE theory: the ELBO, reparameterisation, the Gaussian KL
#
# A variational autoencoder {cite}`kingma2014vae,rezende2014stochastic` is a latent-variable
# model trained by maximising a lower bound on the log-likelihood. This chapter derives that
# bound twice, checks each step numerically on a model whose answer we know exactly, and
# measures why the *reparameterisation trick* makes the bound trainable.
#
# You will:
#
# * derive the ELBO from Jensen's inequality and from the identity
#   $\log p(x) = \mathcal L(x) + \mathrm{KL}(q(z\mid x)\,\|\,p(z\mid x))$, and check both on a
#   linear-Gaussian model whose evidence and posterior are known in closed form;
# * derive the closed-form KL between Gaussians and check it against Monte Carlo and
#   `torch.distributions`;
# * measure the variance of the reparameterised gradient against the score-function
#   (REINFORCE) gradient {cite}`williams1992reinforce`;
# * see what the Bernoulli and Gaussian likelihoods really compute on grey MNIST pixels.
#
# Every formula used here lives once in `course_lib`: `course_lib.distributions` (log-densities,
# `gaussian_kl`, `sample_normal_diag`, `log_mean_exp`), `course_lib.vae` (the `VAE` class,
# its `elbo` and `iwae_bound`), `course_lib.linear_gaussian` (the exact evidence and posterior
# of the linear-Gaussian model) and `course_lib.estimators` (the two gradient estimators).

# %%
import math

import matplotlib.pyplot as plt
import torch
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from course_lib import data, utils
from course_lib import vae as V
from course_lib.distributions import (
    bernoulli_entropy,
    gaussian_kl,
    log_bernoulli,
    log_normal_diag,
)
from course_lib.estimators import reparam_grads, score_function_grads
from course_lib.linear_gaussian import (
    linear_gaussian_log_evidence,
    linear_gaussian_posterior,
    linear_gaussian_vae,
    set_exact_posterior,
)

torch.set_default_dtype(
    torch.float64
)  # exact checks below; chapter 7 trains in float32
g = utils.seed_everything(0)
N_MC = utils.fast_or_full(20_000, 200_000)  # Monte Carlo samples per check

# %% [markdown]
# ## 1. The model and the problem
#
# A latent-variable model draws a code $z \sim p(z) = \mathcal N(0, I)$ and then an image
# $x \sim p_\theta(x \mid z)$. Its likelihood is an integral over all codes,
#
# $$ p_\theta(x) = \int p_\theta(x \mid z)\, p(z)\, dz , $$
#
# which has no closed form when $p_\theta(x\mid z)$ is a neural network, and neither has the
# posterior $p_\theta(z \mid x) = p_\theta(x\mid z)p(z)/p_\theta(x)$. The VAE introduces an
# *encoder* $q_\phi(z\mid x) = \mathcal N(\mu_\phi(x), \operatorname{diag}\sigma^2_\phi(x))$
# that approximates the posterior, and trains both networks on a bound.
#
# ## 2. The ELBO from Jensen's inequality
#
# Multiply and divide by $q$ inside the integral; $\log$ is concave, so Jensen's inequality
# moves it inside the expectation at the price of an inequality:
#
# $$ \log p(x) = \log \mathbb E_{q(z\mid x)}\Big[\frac{p(x, z)}{q(z\mid x)}\Big]
#    \;\ge\; \mathbb E_{q(z\mid x)}\Big[\log \frac{p(x, z)}{q(z\mid x)}\Big] =: \mathcal L(x). $$
#
# Two facts to check: the importance weight $w = p(x,z)/q(z\mid x)$ has mean exactly $p(x)$
# (importance sampling is unbiased), and the mean of $\log w$ is below $\log p(x)$.
#
# ## 3. The ELBO from the KL gap
#
# Write $p(x, z) = p(z\mid x)\,p(x)$ inside the bound:
#
# $$ \mathcal L(x) = \mathbb E_q\Big[\log p(x) + \log\frac{p(z\mid x)}{q(z\mid x)}\Big]
#    = \log p(x) - \mathrm{KL}\big(q(z\mid x)\,\|\,p(z\mid x)\big). $$
#
# So $\log p(x) = \mathcal L(x) + \mathrm{KL}(q\,\|\,p(z\mid x))$: the gap is *exactly* the KL
# from the encoder to the true posterior. It is zero if and only if $q$ is the posterior,
# and then $\log w = \log p(x)$ for *every* sample: the estimator has zero variance.
#
# ## 4. A model where everything is known: linear-Gaussian
#
# Take $z \in \mathbb R^2$, $x \in \mathbb R^5$, $p(x\mid z) = \mathcal N(Wz + b, \sigma^2 I)$.
# Then (probabilistic PCA, {cite}`bishop2006prml` §12.2)
#
# $$ p(x) = \mathcal N(b,\; WW^\top + \sigma^2 I), \qquad
#    p(z \mid x) = \mathcal N\big(S W^\top (x-b)/\sigma^2,\; S\big),\quad
#    S = (I + W^\top W/\sigma^2)^{-1}. $$
#
# `course_lib.linear_gaussian.linear_gaussian_vae` builds this model as a `VAE` (linear
# decoder, Gaussian likelihood, affine encoder), so the checks below run the *same* `elbo` and
# `iwae_bound` code that trains the MNIST models of chapter 7. First, Bayes' rule: the
# closed-form posterior must equal joint / evidence at any $z$.

# %%
D, d, logvar_x = 5, 2, math.log(0.3)
W = torch.linalg.qr(torch.randn(D, d, generator=g)).Q * torch.tensor(
    [2.0, 0.7]
)  # orthogonal columns
b = torch.randn(D, generator=g)
z_true = torch.randn(1, d, generator=g)
x = (
    z_true @ W.T + b + math.exp(0.5 * logvar_x) * torch.randn(1, D, generator=g)
)  # one draw from the model, (1, 5)

log_px = linear_gaussian_log_evidence(x, W, b, logvar_x)  # (1,)
m, S = linear_gaussian_posterior(x, W, b, logvar_x)  # (1, 2), (2, 2)
z = torch.randn(7, d, generator=g)
log_joint = log_normal_diag(x, z @ W.T + b, torch.tensor(logvar_x), dim=1) + Normal(
    0.0, 1.0
).log_prob(z).sum(1)
bayes = log_joint - log_px
assert torch.allclose(MultivariateNormal(m, S).log_prob(z), bayes, atol=1e-10)
print(
    f"log p(x) = {log_px.item():.4f};  posterior mean {m.squeeze().tolist()}, "
    f"variances {S.diagonal().tolist()}"
)

# %% [markdown]
# Now an encoder that is deliberately wrong: the right posterior shifted by $\delta$ posterior
# standard deviations along the first latent axis, and 1.5 times too wide. We check, by Monte Carlo with the library's one-sample
# `elbo`:
#
# 1. $\mathbb E_q[w] = p(x)$ and $\mathbb E_q[\log w] = \mathcal L < \log p(x)$ (Jensen);
# 2. $\mathcal L = \log p(x) - \mathrm{KL}(q\,\|\,p(z\mid x))$, with the KL from `torch.distributions`.

# %%
vae = linear_gaussian_vae(W, b, logvar_x)
set_exact_posterior(vae)  # the encoder now IS the posterior
exact_enc = {k: v.clone() for k, v in vae.encoder.state_dict().items()}


def set_encoder(delta: float, widen: float) -> None:
    """Shift q's mean by delta posterior standard deviations on axis 0;
    multiply its variance by widen."""
    vae.encoder.load_state_dict(exact_enc)
    with torch.no_grad():
        vae.encoder.linear.bias[0] += delta * S[0, 0].sqrt()
        vae.encoder.logvar += math.log(widen)


set_encoder(delta=1.0, widen=1.5)
with torch.no_grad():
    log_w = vae.log_weights(x, N_MC, generator=g).squeeze(
        1
    )  # (N_MC,): log p(x, z) - log q(z | x)
    elbo = vae.elbo(x.expand(N_MC, D), generator=g).elbo  # (N_MC,) one-sample ELBOs
mu_q, lv_q = vae.encode(x)
q = MultivariateNormal(mu_q.detach(), torch.diag_embed(lv_q.detach().exp()))
kl_post = kl_divergence(q, MultivariateNormal(m, S)).item()

se_w = (log_w.exp().std() / math.sqrt(N_MC)).item()
se_elbo = (elbo.std() / math.sqrt(N_MC)).item()
print(
    f"E[w]     = {log_w.exp().mean().item():.6f} ± {se_w:.6f}   vs p(x) = "
    f"{log_px.exp().item():.6f}"
)
print(
    f"E[log w] = {log_w.mean().item():.4f}   ELBO (closed-form KL) = "
    f"{elbo.mean().item():.4f} ± {se_elbo:.4f}"
)
print(
    f"log p(x) - KL(q || p(z|x)) = {log_px.item() - kl_post:.4f}   (KL = {kl_post:.4f})"
)
assert (
    abs(log_w.exp().mean().item() - log_px.exp().item()) < 4 * se_w
)  # importance sampling is unbiased
assert (
    elbo.mean().item() < log_px.item() - 0.5 * kl_post
)  # Jensen: a strict gap for a wrong q
assert (
    abs(elbo.mean().item() - (log_px.item() - kl_post)) < 4 * se_elbo + 1e-3
)  # the KL-gap identity
assert abs(log_w.mean().item() - elbo.mean().item()) < 4 * (
    se_elbo + log_w.std().item() / math.sqrt(N_MC)
)

# %% [markdown]
# The gap closes as $q$ approaches the posterior. We sweep the shift $\delta$ and plot the
# ELBO against $\log p(x) - \mathrm{KL}$: the two curves coincide, and touch $\log p(x)$ at
# $\delta = 0$ with the right width, where every importance weight is exactly $p(x)$.

# %%
deltas = torch.linspace(-3, 3, 13)
n_sweep = utils.fast_or_full(4000, 40_000)
curves = {"ELBO (Monte Carlo)": [], "log p(x) - KL(q || p(z|x))": []}
ses = []
for delta in deltas.tolist():
    set_encoder(delta, widen=1.0)
    with torch.no_grad():
        est = vae.elbo(x.expand(n_sweep, D), generator=g).elbo  # (n_sweep,)
    curves["ELBO (Monte Carlo)"].append(est.mean().item())
    ses.append(est.std().item() / math.sqrt(n_sweep))
    mu_q, lv_q = vae.encode(x)
    qd = MultivariateNormal(mu_q.detach(), torch.diag_embed(lv_q.detach().exp()))
    curves["log p(x) - KL(q || p(z|x))"].append(
        log_px.item() - kl_divergence(qd, MultivariateNormal(m, S)).item()
    )

set_encoder(0.0, 1.0)
with torch.no_grad():
    lw_exact = vae.log_weights(x, 1000, generator=g)
assert torch.allclose(lw_exact, log_px.expand_as(lw_exact), atol=1e-9), (
    "q = posterior: every log w is log p(x)"
)
gap = [a - c for a, c in zip(*curves.values())]
assert all(abs(v) < 4 * se + 1e-6 for v, se in zip(gap, ses)), (gap, ses)
assert all(
    v < log_px.item() + 4 * se for v, se in zip(curves["ELBO (Monte Carlo)"], ses)
)

fig, ax = plt.subplots(figsize=(6, 3.5))
for label, ys in curves.items():
    ax.plot(deltas, ys, "o-" if "Monte" in label else "--", label=label)
ax.axhline(log_px.item(), color="k", lw=0.8, label="log p(x)")
ax.set_xlabel("shift δ of the encoder mean (posterior standard deviations)")
ax.set_ylabel("nats")
ax.legend()
# %% [markdown]
# **Tighter bounds with more samples.** Jensen's gap shrinks if we average several importance
# weights *inside* the log: $\mathcal L_k(x) = \mathbb E\big[\log\frac1k\sum_{i=1}^k w_i\big]$ with
# $w_i = p(x, z_i)/q(z_i\mid x)$ is still a lower bound, it grows with $k$, and it tends to
# $\log p(x)$ {cite}`burda2016iwae`. Chapter 7 uses it to estimate the likelihood of MNIST VAEs;
# here we watch it close the gap left by the wrong encoder (`VAE.iwae_bound`).

# %%
set_encoder(delta=2.0, widen=0.5)  # far off, and too narrow: a large gap
reps = utils.fast_or_full(300, 3000)
iwae = {}
for k in (1, 10, 100, 1000):
    with torch.no_grad():
        est = vae.iwae_bound(
            x.expand(reps, D), k, generator=g
        )  # (reps,) independent estimates of L_k
    iwae[k] = (est.mean().item(), est.std().item() / math.sqrt(reps))
    print(
        f"k = {k:4d}: L_k = {iwae[k][0]:8.4f} ± {iwae[k][1]:.4f}   (log p(x) = "
        f"{log_px.item():.4f})"
    )
values = [v for v, _ in iwae.values()]
assert all(b > a for a, b in zip(values, values[1:])), "L_k grows with k"
assert values[-1] < log_px.item() + 4 * iwae[1000][1], "and stays below log p(x)"
assert log_px.item() - values[-1] < 0.25 * (log_px.item() - values[0]), (
    "closing most of the gap"
)

# %% [markdown]
# ## 5. The ELBO as reconstruction minus KL, and the closed-form Gaussian KL
#
# Splitting $p(x, z) = p(x\mid z)p(z)$ gives the form every VAE implements:
#
# $$ \mathcal L(x) = \underbrace{\mathbb E_{q(z\mid x)}[\log p(x\mid z)]}_{\text{reconstruction}}
#    - \underbrace{\mathrm{KL}\big(q(z\mid x)\,\|\,p(z)\big)}_{\text{rate}} . $$
#
# For $q = \mathcal N(\mu, \sigma^2)$ and $p = \mathcal N(\mu_p, \sigma_p^2)$ in one dimension,
# $\mathbb E_q[(z-\mu_p)^2] = \sigma^2 + (\mu - \mu_p)^2$ and $\mathbb E_q[(z-\mu)^2] = \sigma^2$, so
#
# $$ \mathrm{KL}(q\,\|\,p) = \mathbb E_q[\log q - \log p]
#    = \frac12\Big(\log\frac{\sigma_p^2}{\sigma^2} + \frac{\sigma^2 + (\mu-\mu_p)^2}{\sigma_p^2} - 1\Big), $$
#
# and for the standard normal prior, summed over independent dimensions,
# $\mathrm{KL} = \tfrac12\sum_j(\mu_j^2 + \sigma_j^2 - 1 - \log\sigma_j^2)$
# (appendix B of {cite}`kingma2014vae`). The arguments are not symmetric: the expectation is
# under the *encoder* $q$. `course_lib.distributions.gaussian_kl` implements it (tested against
# `torch.distributions` and Monte Carlo in `tests/test_distributions.py`); here is the same
# check in one cell.

# %%
mu_q, lv_q = torch.tensor([0.5, -1.0, 2.0]), torch.tensor([0.0, -2.0, 1.0])
closed = gaussian_kl(mu_q, lv_q, dim=0)
torch_kl = kl_divergence(Normal(mu_q, (0.5 * lv_q).exp()), Normal(0.0, 1.0)).sum()
zq = mu_q + (0.5 * lv_q).exp() * torch.randn(N_MC, 3, generator=g)
mc = (
    Normal(mu_q, (0.5 * lv_q).exp()).log_prob(zq) - Normal(0.0, 1.0).log_prob(zq)
).sum(1)
print(
    f"closed form {closed.item():.4f} | torch.distributions {torch_kl.item():.4f} | "
    f"Monte Carlo {mc.mean().item():.4f} ± {mc.std().item() / math.sqrt(N_MC):.4f}"
)
assert torch.allclose(closed, torch_kl, atol=1e-10)
assert abs(mc.mean().item() - closed.item()) < 4 * mc.std().item() / math.sqrt(N_MC)
swapped = gaussian_kl(torch.zeros(3), torch.zeros(3), mu_q, lv_q, dim=0)
assert abs(swapped.item() - closed.item()) > 0.5, "KL(p || q) is a different number"

# %% [markdown]
# ### Exercise 1: the closed-form KL
#
# Write `kl_standard_normal(mu, logvar)` returning $\mathrm{KL}(\mathcal N(\mu, \sigma^2)\,\|\,\mathcal N(0, I))$
# for each row of `mu`, `logvar` (shape `(B, d)`), summed over the $d$ latent dimensions: a
# tensor of shape `(B,)`. The check compares with `gaussian_kl` and names the classic mistakes
# (swapped arguments, a missing ½, a mean instead of a sum).

# %% nbgrader={"grade": false, "grade_id": "ch06-ex1", "locked": false, "schema_version": 3, "solution": true, "task": false}
import torch


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per row: (B, d) -> (B,)."""
    ### BEGIN SOLUTION
    return 0.5 * (mu**2 + logvar.exp() - 1.0 - logvar).sum(dim=1)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch06-ex1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from course_lib.checks.ch06 import check_kl_standard_normal

check_kl_standard_normal(kl_standard_normal)

# %% [markdown]
# ## 6. The reparameterisation trick
#
# To train $\phi$ we need $\nabla_\phi \mathbb E_{q_\phi(z\mid x)}[f(z)]$ with
# $f(z) = \log p_\theta(x\mid z)$. The expectation's *distribution* depends on $\phi$, so we
# cannot simply differentiate inside. Two unbiased estimators:
#
# * **score function** (REINFORCE, {cite}`williams1992reinforce`): since
#   $\nabla q = q\,\nabla\log q$,
#   $\nabla_\phi \mathbb E_q[f] = \mathbb E_q[f(z)\,\nabla_\phi \log q_\phi(z)]$. It needs only
#   values of $f$, but it multiplies them by a noisy score;
# * **reparameterisation** {cite}`kingma2014vae`: write $z = \mu + \sigma\odot\varepsilon$ with
#   $\varepsilon\sim\mathcal N(0, I)$ independent of $\phi$; then
#   $\nabla_\phi \mathbb E_q[f] = \mathbb E_\varepsilon[\nabla_\phi f(\mu + \sigma\odot\varepsilon)]$,
#   which uses the derivative of $f$.
#
# `course_lib.estimators.reparam_grads` and `score_function_grads` return $n$ single-sample
# estimates of both gradients (with respect to $\mu$ and $\log\sigma^2$). First, both must be unbiased:
# for $f(z) = \sum z_j^2$, $\mathbb E_q f = \sum(\mu_j^2 + \sigma_j^2)$, so
# $\nabla_\mu = 2\mu$ and $\nabla_{\log\sigma^2} = \sigma^2$.

# %%
mu0, lv0 = torch.tensor([0.5, -1.0]), torch.tensor([0.0, math.log(0.25)])


def quadratic(z):
    return (z**2).sum(1)


exact = torch.cat([2 * mu0, lv0.exp()])
rows = {}
for name, est in [
    ("reparameterised", reparam_grads),
    ("score function", score_function_grads),
]:
    gm, gl = est(quadratic, mu0, lv0, N_MC, generator=g)
    gr = torch.cat([gm, gl], 1)  # (N_MC, 4): d/dmu, d/dlogvar
    rows[name] = gr
    se = gr.std(0) / math.sqrt(N_MC)
    assert ((gr.mean(0) - exact).abs() < 4 * se + 1e-4).all(), name
    print(
        f"{name:16s} mean {[round(v, 3) for v in gr.mean(0).tolist()]}  variance "
        f"{[round(v, 2) for v in gr.var(0).tolist()]}"
    )
print(f"{'exact':16s} mean {[round(v, 3) for v in exact.tolist()]}")

# %% [markdown]
# Both are right on average. Their variances differ, and in a VAE much more: $f$ is a
# log-likelihood hundreds of nats below zero (the cell below prints it), and the score-function
# estimator multiplies that large number by a zero-mean score. We measure both estimators for a real decoder (a small random
# MLP with Bernoulli outputs) on an MNIST digit, per coordinate of $\nabla_\mu$, and also try
# the simplest variance reduction for REINFORCE, subtracting a constant baseline
# $\bar f \approx \mathbb E_q f$.

# %%
torch.manual_seed(0)
digit = data.load_mnist("test").data[:1].double()  # (1, 1, 28, 28)
decoder = V.MLPDecoder((1, 28, 28), z_dim=8, hidden=(64,)).double()
mu_z, lv_z = torch.zeros(8), torch.full((8,), -1.0)


def log_lik(z):  # (n, 8) -> (n,): log p(x | z)
    return log_bernoulli(digit.expand(len(z), -1, -1, -1), decoder(z), dim=(1, 2, 3))


n_var = utils.fast_or_full(2000, 20_000)
with torch.no_grad():
    baseline = log_lik(
        V.sample_normal_diag(mu_z.expand(500, 8), lv_z.expand(500, 8), g)
    ).mean()
r_mu, _ = reparam_grads(log_lik, mu_z, lv_z, n_var, generator=g)
s_mu, _ = score_function_grads(log_lik, mu_z, lv_z, n_var, generator=g)
b_mu, _ = score_function_grads(
    lambda z: log_lik(z) - baseline, mu_z, lv_z, n_var, generator=g
)
print(
    f"f(z) = log p(x | z) under this decoder, mean over q: {baseline.item():.0f} nats"
)
assert baseline < -100
var = {
    "reparameterised": r_mu.var(0).mean().item(),
    "score function": s_mu.var(0).mean().item(),
    "score function - baseline": b_mu.var(0).mean().item(),
}
for name, v in var.items():
    print(
        f"{name:26s} mean per-coordinate variance of d/dmu: {v:12.2f}   ratio to "
        f"reparam: {v / var['reparameterised']:8.1f}"
    )
assert var["score function"] > 100 * var["reparameterised"]
assert var["reparameterised"] < var["score function - baseline"] < var["score function"]

# %% [markdown]
# With the same number of samples, the score-function gradient is orders of magnitude noisier;
# a baseline helps but does not close the gap. That measured gap is why VAEs use the
# reparameterised sample. Discrete latents have no exact reparameterisation: a draw from a
# categorical distribution is a step function of its parameters, with zero gradient almost
# everywhere. There the score function is one tool; the other is a *relaxed*
# reparameterisation, the Gumbel-softmax or Concrete distribution
# {cite}`jang2017gumbel,maddison2017concrete`: $z = \operatorname{softmax}((\log\pi + g)/\tau)$ with
# Gumbel noise $g$, differentiable in $\pi$, which tends to a one-hot sample as the temperature
# $\tau \to 0$ (at the price of a biased gradient for $\tau > 0$).
#
# ### Exercise 2: the reparameterised sample
#
# Write `reparameterize(mu, logvar, eps)` returning $z = \mu + \sigma\odot\varepsilon$ where
# $\sigma = \exp(\tfrac12\log\sigma^2)$. Gradients must flow to `mu` and `logvar`. The check
# names the classic mistakes: scaling by the variance, or by `logvar` itself.

# %% nbgrader={"grade": false, "grade_id": "ch06-ex2", "locked": false, "schema_version": 3, "solution": true, "task": false}
import torch


def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """z = mu + exp(0.5 * logvar) * eps, all of shape (B, d)."""
    ### BEGIN SOLUTION
    return mu + torch.exp(0.5 * logvar) * eps
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch06-ex2-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from course_lib.checks.ch06 import check_reparameterize

check_reparameterize(reparameterize)

# %% [markdown]
# ## 7. Bernoulli or Gaussian likelihood?
#
# **Gaussian**, $p(x\mid z) = \mathcal N(\hat x(z), \sigma^2 I)$ over $D$ pixels:
#
# $$ \log p(x\mid z) = -\frac{\lVert x - \hat x\rVert^2}{2\sigma^2} - \frac D2\log(2\pi\sigma^2). $$
#
# The constant is $\tfrac12\log 2\pi\sigma^2$ *per pixel*, so $\tfrac D2 \log 2\pi\sigma^2$ in
# total; a known slip multiplies it by $D$ once more. With a fixed $\sigma$, maximising it is
# minimising the squared error, and $\sigma^2$ sets how much reconstruction weighs against the
# KL (like $\beta$ in chapter 8). We check `log_normal_diag` summed over 784 pixels against
# `torch.distributions`.
#
# **Bernoulli** with logits $l(z)$: $\log p(x\mid z) = \sum_i x_i\log\sigma(l_i) + (1-x_i)\log(1-\sigma(l_i))$,
# the negative binary cross-entropy. It is a probability for *binary* pixels. On grey pixels
# $x_i\in(0,1)$ three facts matter when we read numbers:
#
# 1. it is not a normalised density on $[0,1]$ (the *continuous Bernoulli* of Loaiza-Ganem &
#    Cunningham, 2019, adds the missing constant): $\int_0^1 p(x)\,dx \ne 1$;
# 2. it is exactly the **expected** Bernoulli log-probability of a random *binarisation* of the
#    image, $b_i \sim \text{Bernoulli}(x_i)$: $\mathbb E_b[\log p(b\mid z)] = \log p(x\mid z)$,
#    because the expression is linear in $x_i$. So grey-level numbers are on the same scale as
#    the "dynamically binarised MNIST" numbers of papers, for the same decoder output;
# 3. its best possible value is not 0: the reconstruction term is at most $-\sum_i H(x_i)$, the
#    binary entropies of the grey levels, reached when the decoder predicts $\sigma(l_i) = x_i$
#    (`course_lib.distributions.bernoulli_entropy`).
#    For binarised data the same amount is the entropy of the binarisation noise. On our test
#    digits that floor is measured below.

# %%
digits = data.load_mnist("test").data.double()  # (1000, 1, 28, 28) in [0, 1]
xhat = torch.rand(digits.shape, generator=g)
lv_pix = torch.tensor(math.log(0.1))
ours = log_normal_diag(digits, xhat, lv_pix, dim=(1, 2, 3))
ref = Normal(xhat, math.exp(0.5 * lv_pix.item())).log_prob(digits).sum((1, 2, 3))
assert torch.allclose(ours, ref, atol=1e-8)
mse_form = -((digits - xhat) ** 2).sum((1, 2, 3)) / (2 * 0.1) - 784 / 2 * math.log(
    2 * math.pi * 0.1
)
assert torch.allclose(ours, mse_form, atol=1e-8)

# 1. not normalised on [0, 1]: integrate exp(log_bernoulli) over x for a few logits
xs = torch.linspace(0, 1, 2001)
for logit in (0.0, 2.0, -4.0):
    mass = torch.trapezoid(
        log_bernoulli(xs, torch.full_like(xs, logit)).exp(), xs
    ).item()
    print(
        f"logit {logit:+.0f}: integral over [0, 1] of the 'Bernoulli density' = "
        f"{mass:.3f}"
    )
    assert mass < 0.99

# 2. the grey-level loss is the expected loss over random binarisations b ~ Bernoulli(x)
logits_rand = 3 * torch.randn(digits[:20].shape, generator=g)
grey = log_bernoulli(digits[:20], logits_rand, dim=(1, 2, 3))  # (20,)
n_bin = utils.fast_or_full(2000, 20_000)
binarised = torch.stack(
    [
        log_bernoulli(
            torch.bernoulli(digits[:20], generator=g), logits_rand, dim=(1, 2, 3)
        )
        for _ in range(n_bin)
    ]
)  # (n_bin, 20)
se_bin = binarised.std(0) / math.sqrt(n_bin)
print(
    f"grey-level log p(x|z) {grey[0].item():.2f} vs mean over {n_bin} binarisations "
    f"{binarised[:, 0].mean().item():.2f} ± {se_bin[0].item():.2f} (first digit)"
)
assert ((binarised.mean(0) - grey).abs() < 4 * se_bin + 1e-6).all()

# 3. the floor: the best logits are logit(x) itself, where the loss is the binary
# entropy
clamped = digits.clamp(1e-6, 1 - 1e-6)
floor = -log_bernoulli(digits, torch.logit(clamped), dim=(1, 2, 3))  # (1000,)
assert torch.allclose(
    floor, bernoulli_entropy(digits, dim=(1, 2, 3)), atol=1e-3
)  # course_lib's home for H
print(
    f"best possible -log p(x|z) on the 1,000 test digits: {floor.mean().item():.1f} "
    "nats per image "
    f"({(((digits > 0) & (digits < 1)).double().mean().item()):.0%} of pixels are grey)"
)
assert 30 < floor.mean().item() < 60

# %% [markdown]
# ## Summary
#
# * $\log p(x) = \mathcal L(x) + \mathrm{KL}(q\,\|\,p(z\mid x))$: checked to Monte Carlo
#   precision on a linear-Gaussian model; the bound is tight, with zero-variance weights, exactly
#   when $q$ is the posterior.
# * $\mathrm{KL}(\mathcal N(\mu,\sigma^2)\,\|\,\mathcal N(0,1)) = \tfrac12(\mu^2+\sigma^2-1-\log\sigma^2)$,
#   per dimension, summed over dimensions; order matters.
# * The reparameterised gradient is unbiased like REINFORCE and, measured on a decoder, has a
#   variance smaller by orders of magnitude.
# * The Bernoulli loss on grey pixels is the expected loss of a random binarisation, and has a
#   floor, $\sum_i H(x_i)$, printed above for our test digits.
#
# Chapter 7 trains VAEs on MNIST with `course_lib.vae`, reports the ELBO in nats and tightens it
# with the importance-weighted bound of {cite}`burda2016iwae`.
