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
# # Chapter 1 — Generative modelling basics
#
# A **generative model** is a probability distribution $p_\theta(x)$ with parameters $\theta$
# that we can *sample* from, and often also *evaluate*: compute the density $p_\theta(x)$ of a
# given $x$. The data come from an unknown distribution $p_\text{data}$ that we only see through
# samples $x_1, \dots, x_N$. Learning means choosing $\theta$ so that $p_\theta$ is close to
# $p_\text{data}$, and "close" needs a measure: this chapter uses the
# **Kullback–Leibler divergence** {cite}`kullback1951information`.
#
# You will:
#
# 1. derive the closed-form KL between two Gaussians and check it three ways;
# 2. show that **maximum likelihood** is minimising $\mathrm{KL}(p_\text{data}\,\|\,p_\theta)$;
# 3. see that KL is **not symmetric**: fitting one Gaussian to two modes covers both modes with
#    one direction and picks one mode with the other;
# 4. **sample** from mixtures and **estimate densities** of 2-D toy data, scoring every model
#    against the true log-density.
#
# Every result is derived first, then checked numerically with `assert`. The formulas live in
# `course_lib.distributions` and `course_lib.likelihood`; the four exercises ask you to write
# some of them yourself. Good references are {cite}`bishop2006prml` (sections 1.6 and 2.3),
# {cite}`mackay2003itila` (chapter 2) and {cite}`cover2006elements` (chapter 2).

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy import stats
from torch.distributions import Normal, kl_divergence

from course_lib import data, utils, viz
from course_lib.distributions import gaussian_kl, log_normal_diag
from course_lib.likelihood import (
    gaussian_entropy,
    gaussian_mixture,
    gaussian_mle,
    kl_mixture_normal,
    kl_normal_mixture,
    monte_carlo_kl,
    toy_density,
)
from course_lib.train import fit

gen = utils.seed_everything(0)
N_MC = utils.fast_or_full(20_000, 400_000)  # Monte Carlo samples
print("fast mode:", utils.fast_mode(), "| Monte Carlo samples:", N_MC)

# %% [markdown]
# ## 1. The KL divergence
#
# For two densities $p$ and $q$,
#
# $$
# \mathrm{KL}(p\,\|\,q) = \mathbb E_{x\sim p}\big[\log p(x) - \log q(x)\big] = \int p(x) \log\frac{p(x)}{q(x)}\,dx .
# $$
#
# It is never negative, and zero only when $p = q$ (Gibbs' inequality: $-\log$ is convex, so by
# Jensen $\mathbb E_p[-\log(q/p)] \ge -\log \mathbb E_p[q/p] = -\log 1 = 0$). The expectation is
# taken under the **first** argument, which is why the two arguments play different roles.
#
# **Two Gaussians.** Let $p = \mathcal N(\mu_1, \sigma_1^2)$ and $q = \mathcal N(\mu_2, \sigma_2^2)$. Then
#
# $$
# \log p(x) - \log q(x) = \log\frac{\sigma_2}{\sigma_1} - \frac{(x-\mu_1)^2}{2\sigma_1^2} + \frac{(x-\mu_2)^2}{2\sigma_2^2}.
# $$
#
# Under $p$, $\mathbb E[(x-\mu_1)^2] = \sigma_1^2$ and
# $\mathbb E[(x-\mu_2)^2] = \mathbb E[(x-\mu_1 + \mu_1-\mu_2)^2] = \sigma_1^2 + (\mu_1-\mu_2)^2$, so
#
# $$
# \mathrm{KL}(p\,\|\,q) = \log\frac{\sigma_2}{\sigma_1} + \frac{\sigma_1^2 + (\mu_1-\mu_2)^2}{2\sigma_2^2} - \frac12 .
# $$
#
# `course_lib.distributions.gaussian_kl(mu_q, logvar_q, mu_p, logvar_p)` implements this with
# log-variances (the form a VAE encoder outputs, chapter 6). We check it against
# `torch.distributions.kl_divergence` and against a Monte Carlo average of
# $\log p(x) - \log q(x)$ over samples $x \sim p$, whose standard error tells us how close the
# two must be.

# %%
mu1, s1, mu2, s2 = 0.5, 1.3, -0.4, 0.7
p, q = Normal(mu1, s1), Normal(mu2, s2)
logvar1, logvar2 = torch.tensor(2 * math.log(s1)), torch.tensor(2 * math.log(s2))
closed = gaussian_kl(torch.tensor(mu1), logvar1, torch.tensor(mu2), logvar2)
by_torch = kl_divergence(p, q)
x = p.sample((N_MC,))  # (N,) samples of p
mc, se = monte_carlo_kl(p.log_prob(x), q.log_prob(x))
print(
    f"closed form {closed:.4f} | torch {by_torch:.4f} | Monte Carlo {mc:.4f} ± {se:.4f}"
)
assert torch.allclose(closed, by_torch, atol=1e-5)
assert abs(mc - closed) < 4 * se, "Monte Carlo must agree within 4 standard errors"

reverse = kl_divergence(q, p)
print(f"KL(p||q) = {closed:.4f} but KL(q||p) = {reverse:.4f}")
assert abs(reverse - closed) > 0.5, "KL is not symmetric"

# %% [markdown]
# ### Exercise 1: the Gaussian KL
#
# Write `kl_two_gaussians(mu1, sigma1, mu2, sigma2)`, the KL divergence
# $\mathrm{KL}(\mathcal N(\mu_1,\sigma_1^2)\,\|\,\mathcal N(\mu_2,\sigma_2^2))$ from the formula
# above. The arguments are tensors (standard deviations, not variances); work elementwise with
# `torch` functions. The check compares your function with `course_lib` on random inputs. (The
# exercises use their own names, so your answers never replace the `course_lib` functions that
# the rest of the notebook uses.)

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "ch01-ex1", "locked": false, "schema_version": 3, "solution": true, "task": false}
import torch


def kl_two_gaussians(mu1, sigma1, mu2, sigma2):
    """KL(N(mu1, sigma1^2) || N(mu2, sigma2^2)), elementwise."""
    ### BEGIN SOLUTION
    ratio = (sigma1**2 + (mu1 - mu2) ** 2) / (2 * sigma2**2)
    return torch.log(sigma2 / sigma1) + ratio - 0.5
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch01-ex1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from course_lib.checks.ch01 import check_gaussian_kl

check_gaussian_kl(kl_two_gaussians)

# %% [markdown]
# ## 2. Maximum likelihood minimises $\mathrm{KL}(p_\text{data}\,\|\,p_\theta)$
#
# Split the KL from the data to the model into two expectations under the data:
#
# $$
# \mathrm{KL}(p_\text{data}\,\|\,p_\theta)
# = \underbrace{\mathbb E_{p_\text{data}}[\log p_\text{data}(x)]}_{-H(p_\text{data}),\ \text{independent of }\theta}
# \; - \; \mathbb E_{p_\text{data}}[\log p_\theta(x)] .
# $$
#
# The first term does not depend on $\theta$, so
#
# $$
# \arg\min_\theta \mathrm{KL}(p_\text{data}\,\|\,p_\theta) = \arg\max_\theta \mathbb E_{p_\text{data}}[\log p_\theta(x)]
# \approx \arg\max_\theta \frac1N \sum_{i=1}^N \log p_\theta(x_i),
# $$
#
# the **maximum-likelihood** estimate: the sample average replaces the expectation (law of large
# numbers). Equivalently, the average negative log-likelihood (the *cross-entropy*) equals
# $H(p_\text{data}) + \mathrm{KL}(p_\text{data}\,\|\,p_\theta)$: it is the KL plus a constant.
#
# **Check.** We choose $p_\text{data} = \mathcal N(1, 1.5^2)$ so that every term is known in closed
# form: $H(p_\text{data}) = \tfrac12(\log 2\pi + 1 + \log\sigma^2)$ (`gaussian_entropy`) and the KL
# from `gaussian_kl`. For many models $p_\theta = \mathcal N(\mu, \sigma^2)$ the average NLL of a
# sample must equal entropy + KL, within the Monte Carlo error.

# %%
MU_DATA, SIGMA_DATA = 1.0, 1.5
lv_data = torch.tensor(2 * math.log(SIGMA_DATA))
x_data = MU_DATA + SIGMA_DATA * torch.randn(N_MC, generator=gen)  # (N,) from p_data

mus = torch.linspace(-1.0, 3.0, 41)  # candidate means, for two standard deviations
rows = []
for sigma in (1.0, 1.5):
    lv = torch.full_like(mus, 2 * math.log(sigma))
    nll = -log_normal_diag(x_data[:, None], mus, lv)  # (N, 41): -log p_theta(x_i)
    avg_nll, se_nll = nll.mean(0), nll.std(0) / math.sqrt(N_MC)
    kl = gaussian_kl(torch.tensor(MU_DATA), lv_data, mus, lv)  # (41,)
    theory = gaussian_entropy(lv_data) + kl
    # the average NLL is H(p_data) + KL(p_data || p_theta), within Monte Carlo error
    assert ((avg_nll - theory).abs() < 4 * se_nll + 1e-4).all()
    rows.append((sigma, avg_nll, theory))
    best_nll, best_kl = mus[avg_nll.argmin()], mus[theory.argmin()]
    print(
        f"sigma={sigma}: NLL smallest at mu = {best_nll:.1f}, KL at mu = {best_kl:.1f}"
    )

fig, ax = plt.subplots(figsize=(6, 3.5))
for sigma, avg_nll, theory in rows:
    ax.plot(mus, avg_nll, lw=3, alpha=0.5, label=f"average NLL, σ={sigma}")
    ax.plot(mus, theory, "k--", lw=1)
ax.plot([], [], "k--", lw=1, label="H(p_data) + KL (closed form)")
ax.axvline(MU_DATA, color="grey", lw=0.8)
ax.set_xlabel("model mean μ")
ax.set_ylabel("nats")
ax.legend(fontsize=8)
ax.set_title("Average NLL is the KL from the data plus a constant");
# %% [markdown]
# **The Gaussian MLE.** For $p_\theta = \mathcal N(\mu, \sigma^2)$ the log-likelihood is
# $\ell(\mu,\sigma^2) = -\frac N2 \log(2\pi\sigma^2) - \sum_i \frac{(x_i-\mu)^2}{2\sigma^2}$. Setting
# its derivatives to zero,
#
# $$
# \begin{aligned}
# \frac{\partial \ell}{\partial \mu} &= \sum_i \frac{x_i-\mu}{\sigma^2} = 0
# &&\Rightarrow\quad \hat\mu = \frac1N\sum_i x_i, \\
# \frac{\partial \ell}{\partial \sigma^2} &= -\frac{N}{2\sigma^2} + \sum_i\frac{(x_i-\mu)^2}{2\sigma^4} = 0
# &&\Rightarrow\quad \hat\sigma^2 = \frac1N \sum_i (x_i-\hat\mu)^2 .
# \end{aligned}
# $$
#
# Note the $1/N$: the maximum-likelihood variance is the *biased* one. `course_lib.likelihood.gaussian_mle`
# returns $(\hat\mu, \log\hat\sigma^2)$. Gradient descent on the average NLL, the way every deep
# generative model in this course is trained, must land on the same point. We run it with the
# course's training loop `course_lib.train.fit` (full batches, Adam).

# %%
x_small = x_data[:2000]
mu_hat, lv_hat = gaussian_mle(x_small)
theta = torch.zeros(2, requires_grad=True)  # (mu, log sigma^2), started at N(0, 1)
opt = torch.optim.Adam([theta], lr=0.05)


def step(batch):
    (xb,) = batch
    loss = -log_normal_diag(xb, theta[0], theta[1]).mean()  # average NLL
    opt.zero_grad()
    loss.backward()
    opt.step()
    return {"nll": loss.item()}


steps = utils.fast_or_full(400, 1000)
history = fit(step, x_small, batch_size=len(x_small), steps=steps, desc="MLE by Adam")
print(f"closed form: mu={mu_hat:.4f}, var={lv_hat.exp():.4f}")
print(f"Adam:        mu={theta[0]:.4f}, var={theta[1].exp():.4f}")
assert torch.allclose(theta.detach(), torch.stack([mu_hat, lv_hat]), atol=1e-2)
assert history["nll"][-1] < history["nll"][0] - 0.1, "the NLL fell"
viz.plot_history(history, ["nll"]).set_title("Average NLL during gradient descent");
# %% [markdown]
# **How far is the MLE from the truth?** The KL from $p_\text{data}$ to the fitted Gaussian
# shrinks as the sample grows. Write $\hat\mu = \mu + \sigma a/\sqrt N$ and
# $\hat\sigma^2 = \sigma^2(1 + b\sqrt{2/N})$, where $a$ and $b$ are approximately standard normal for
# large $N$ (the sample mean has variance $\sigma^2/N$, the sample variance $2\sigma^4/N$). Expanding
# the Gaussian KL to second order in the small deviations,
#
# $$
# \mathrm{KL}(p_\text{data}\,\|\,p_{\hat\theta}) = \tfrac12\Big(\log\frac{\hat\sigma^2}{\sigma^2} + \frac{\sigma^2 + (\mu-\hat\mu)^2}{\hat\sigma^2} - 1\Big)
# \approx \frac{(\hat\mu-\mu)^2}{2\sigma^2} + \frac14\Big(\frac{\hat\sigma^2-\sigma^2}{\sigma^2}\Big)^2
# = \frac{a^2}{2N} + \frac{b^2}{2N},
# $$
#
# so $\mathbb E[\mathrm{KL}] \approx 1/N$: half a nat per fitted parameter, divided by $N$, plus
# $O(1/N^2)$. We repeat the fit on many independent samples to check it.

# %%
repeats = utils.fast_or_full(2000, 20_000)
for n in (25, 400):
    noise = torch.randn(repeats, n, generator=gen, dtype=torch.float64)
    xs = MU_DATA + SIGMA_DATA * noise  # (R, n): R independent data sets
    m_hat, l_hat = gaussian_mle(xs, dim=1)  # (R,), (R,)
    kl = gaussian_kl(
        torch.tensor(MU_DATA).double(), lv_data.double(), m_hat, l_hat
    )  # (R,)
    ratio, ratio_se = n * kl.mean(), n * kl.std() / math.sqrt(repeats)
    print(f"N = {n:4d}: N * E[KL] = {ratio:.3f} ± {ratio_se:.3f}")
# N * E[KL] tends to 1; the O(1/N) correction is about 0.01 at N = 400
assert abs(ratio - 1) < 4 * ratio_se + 0.02

# %% [markdown]
# ### Exercise 2: the Gaussian maximum-likelihood estimate
#
# Write `gaussian_ml_estimate(x)` for a 1-D tensor of samples `x`, returning the pair `(mu, var)` of the
# maximum-likelihood mean and **variance** derived above. (Careful: `torch.var` divides by
# $N-1$ unless you ask otherwise.)


# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "ch01-ex2", "locked": false, "schema_version": 3, "solution": true, "task": false}
def gaussian_ml_estimate(x):
    """Maximum-likelihood (mu, var) of a Gaussian for samples x of shape (N,)."""
    ### BEGIN SOLUTION
    mu = x.mean()
    var = ((x - mu) ** 2).mean()
    return mu, var
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch01-ex2-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from course_lib.checks.ch01 import check_gaussian_mle

check_gaussian_mle(gaussian_ml_estimate)

# %% [markdown]
# ## 3. KL is not symmetric: mode covering and mode seeking
#
# Take a data distribution with two well-separated modes,
# $p(x) = 0.4\,\mathcal N(x; -2, 0.5^2) + 0.6\,\mathcal N(x; 2, 0.5^2)$, and fit a *single*
# Gaussian $q = \mathcal N(\mu, \sigma^2)$ to it. The model cannot be right, so the direction of
# the KL decides which error it prefers {cite}`minka2005divergence,bishop2006prml`.
#
# **The mixture's log-density.** $\log p(x) = \log \sum_k \pi_k \mathcal N(x; \mu_k, \sigma_k^2)$.
# Far from the modes every $\mathcal N(x;\mu_k,\sigma_k^2)$ underflows to 0 in floating point, so
# compute it as a log-sum-exp of $\log\pi_k + \log\mathcal N(x;\mu_k,\sigma_k^2)$, which subtracts
# the largest term before exponentiating. `course_lib.likelihood.gaussian_mixture` returns a
# `torch.distributions.MixtureSameFamily` that does exactly that.

# %% [markdown]
# ### Exercise 3: the log-density of a mixture
#
# Write `mixture_log_prob(x, weights, means, stds)` returning
# $\log\sum_k w_k\,\mathcal N(x; \mu_k, \sigma_k^2)$ for each entry of `x` (shape `(N,)`), with
# `weights`, `means`, `stds` of shape `(K,)`. It must stay finite far from every mode.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "ch01-ex3", "locked": false, "schema_version": 3, "solution": true, "task": false}
import math

import torch


def mixture_log_prob(x, weights, means, stds):
    """log sum_k w_k N(x; mu_k, sigma_k^2) for x of shape (N,); returns (N,)."""
    ### BEGIN SOLUTION
    z = (x[:, None] - means) / stds  # (N, K)
    log_comp = -0.5 * math.log(2 * math.pi) - torch.log(stds) - 0.5 * z**2  # (N, K)
    return torch.logsumexp(torch.log(weights) + log_comp, dim=1)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch01-ex3-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from course_lib.checks.ch01 import check_mixture_log_prob

check_mixture_log_prob(mixture_log_prob)

# %% [markdown]
# **Forward KL, $\mathrm{KL}(p\,\|\,q)$: moment matching.** Only $q$ depends on $(\mu, \sigma^2)$:
#
# $$
# \mathrm{KL}(p\,\|\,q) = -H(p) - \mathbb E_p[\log q(x)]
# = -H(p) + \tfrac12\log(2\pi\sigma^2) + \frac{\mathbb E_p[(x-\mu)^2]}{2\sigma^2}.
# $$
#
# Setting the derivatives to zero gives $\mu = \mathbb E_p[x]$ and $\sigma^2 = \mathbb E_p[(x-\mu)^2]$:
# the best $q$ has the **mean and variance of $p$**. The expectation is under $p$, so $q$ pays
# $-\log q(x)$ wherever the *data* are: it must spread over both modes (mode covering), even if
# that puts its peak where $p$ has almost no mass. For a mixture, the law of total variance gives
#
# $$
# \mathbb E_p[x] = \sum_k \pi_k\mu_k, \qquad
# \mathrm{Var}_p[x] = \sum_k \pi_k(\sigma_k^2 + \mu_k^2) - \Big(\sum_k\pi_k\mu_k\Big)^2 .
# $$
#
# **Reverse KL, $\mathrm{KL}(q\,\|\,p)$: mode seeking.**
# $\mathrm{KL}(q\,\|\,p) = -H(q) - \mathbb E_q[\log p(x)]$ with
# $H(q) = \tfrac12(\log 2\pi + 1 + \log\sigma^2)$. Now the expectation is under $q$: $q$ pays
# $-\log p(x)$ wherever **it** puts mass, and $-\log p$ is huge between the modes. So $q$ hides inside
# one mode. If $q$ equals component $k$ and the modes are far apart, then on the support of $q$,
# $p(x) \approx \pi_k\,\mathcal N(x;\mu_k,\sigma_k^2) = \pi_k\,q(x)$, hence
#
# $$
# \mathrm{KL}(q\,\|\,p) \approx \mathbb E_q\Big[\log \frac{q(x)}{\pi_k q(x)}\Big] = -\log \pi_k ,
# $$
#
# a local minimum at each mode, the deepest at the heaviest mode.
#
# ### Exercise 4: the moments of a mixture
#
# Write `mixture_moments(weights, means, stds)` returning `(mean, var)` of the 1-D mixture
# $\sum_k w_k\,\mathcal N(\mu_k, \sigma_k^2)$, from the formulas above.


# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "ch01-ex4", "locked": false, "schema_version": 3, "solution": true, "task": false}
def mixture_moments(weights, means, stds):
    """Mean and variance of the mixture sum_k w_k N(mu_k, sigma_k^2)."""
    ### BEGIN SOLUTION
    mean = (weights * means).sum()
    var = (weights * (stds**2 + means**2)).sum() - mean**2
    return mean, var
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch01-ex4-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from course_lib.checks.ch01 import check_mixture_moments

check_mixture_moments(mixture_moments)

# %% [markdown]
# **Check.** `kl_mixture_normal(p, mu, logvar)` and `kl_normal_mixture(mu, logvar, p)` in
# `course_lib.likelihood` compute the two directions by quadrature on a fine grid (argument order
# = KL order). We minimise each with L-BFGS, starting the reverse fit once on each side, and
# assert the derivation: the forward fit has the moments of $p$ (`torch` knows them:
# `p.mean`, `p.variance`), each reverse fit sits on one mode with $\mathrm{KL} \approx -\log\pi_k$.
# Monte Carlo estimates (samples from $p$ for the forward KL, from $q$ for the reverse) confirm
# the quadrature.

# %%
f64 = dict(dtype=torch.float64)
weights = torch.tensor([0.4, 0.6], **f64)
means = torch.tensor([-2.0, 2.0], **f64)
stds = torch.tensor([0.5, 0.5], **f64)
p_mix = gaussian_mixture(weights, means, stds)


def fit_gaussian(kl, mu0, logvar0=0.0):
    """Minimise kl(mu, logvar) over 1-D Gaussians with L-BFGS; returns (mu, logvar)."""
    params = torch.tensor([mu0, logvar0], **f64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [params],
        max_iter=200,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-10,
        tolerance_change=1e-14,
    )

    def closure():
        opt.zero_grad()
        loss = kl(params[0], params[1])
        loss.backward()
        return loss

    opt.step(closure)
    return params.detach()[0], params.detach()[1]


def forward_kl(mu, lv):
    return kl_mixture_normal(p_mix, mu, lv)  # KL(p || q)


def reverse_kl(mu, lv):
    return kl_normal_mixture(mu, lv, p_mix)  # KL(q || p)


forward = fit_gaussian(forward_kl, mu0=1.0)
reverse = {start: fit_gaussian(reverse_kl, mu0=start) for start in (-1.0, 1.0)}

print(f"mixture: mean {p_mix.mean:.4f}, variance {p_mix.variance:.4f}")
print(f"forward fit: mu {forward[0]:.4f}, variance {forward[1].exp():.4f}")
assert torch.allclose(forward[0], p_mix.mean, atol=1e-4)  # moment matching
assert torch.allclose(forward[1].exp(), p_mix.variance, rtol=1e-4)

for (start, (mu_r, lv_r)), mode, w in zip(reverse.items(), means, weights):
    kl_r, sigma_r = reverse_kl(mu_r, lv_r), (0.5 * lv_r).exp()
    print(
        f"reverse fit from {start:+.0f}: mu {mu_r:.4f}, sigma {sigma_r:.4f}, "
        f"KL {kl_r:.4f}, -log(pi_k) {-math.log(w):.4f}"
    )
    assert abs(mu_r - mode) < 0.01 and abs(sigma_r - 0.5) < 0.01, "q sits on one mode"
    assert abs(kl_r + math.log(w)) < 1e-3

# each fit is bad in the other direction, and Monte Carlo agrees with the quadrature
fits = {"forward fit": forward, "reverse fit (+2)": reverse[1.0]}
x_p = p_mix.sample((N_MC,))  # samples of p
for name, (mu_, lv_) in fits.items():
    q_ = Normal(mu_, (0.5 * lv_).exp())
    fwd, rev = forward_kl(mu_, lv_), reverse_kl(mu_, lv_)
    fwd_mc, fwd_se = monte_carlo_kl(p_mix.log_prob(x_p), q_.log_prob(x_p))
    x_q = q_.sample((N_MC,))
    rev_mc, rev_se = monte_carlo_kl(q_.log_prob(x_q), p_mix.log_prob(x_q))
    print(
        f"{name}: KL(p||q) = {fwd:.3f} (MC {fwd_mc:.3f} ± {fwd_se:.3f}), "
        f"KL(q||p) = {rev:.3f} (MC {rev_mc:.3f} ± {rev_se:.3f})"
    )
    assert abs(fwd - fwd_mc) < 4 * fwd_se and abs(rev - rev_mc) < 4 * rev_se
assert forward_kl(*forward) < forward_kl(*reverse[1.0]) - 5  # covers both modes
assert reverse_kl(*reverse[1.0]) < reverse_kl(*forward) - 1  # avoids the gap

# %%
grid_x = torch.linspace(-5, 5, 801, **f64)
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.fill_between(grid_x, p_mix.log_prob(grid_x).exp(), color="lightgrey", label="p")
q_fwd = log_normal_diag(grid_x, *forward).exp()
ax.plot(grid_x, q_fwd, lw=2, label="argmin KL(p‖q): mode covering")
for start, (mu_r, lv_r) in reverse.items():
    q_rev = log_normal_diag(grid_x, mu_r, lv_r).exp()
    label = f"argmin KL(q‖p) from μ₀={start:+.0f}: mode seeking"
    ax.plot(grid_x, q_rev, "--", lw=2, label=label)
ax.set_xlabel("x")
ax.set_ylabel("density")
ax.legend(fontsize=8, loc="upper left")
ax.set_title("One Gaussian fitted to two modes");
# %% [markdown]
# Maximum likelihood is the forward direction, $\mathrm{KL}(p_\text{data}\,\|\,p_\theta)$: models trained
# by likelihood (VAEs, chapter 6) tend to cover every mode and spread mass between them, which is one
# reason their samples look blurry. GANs follow other divergences: with the optimal discriminator
# and the original minimax loss the generator minimises the Jensen–Shannon divergence
# {cite}`goodfellow2014gan`, and with the non-saturating loss used in practice it follows
# $\mathrm{KL}(p_\theta\,\|\,p_\text{data}) - 2\,\mathrm{JSD}$, the *reverse* KL minus a JSD
# {cite}`arjovsky2017principled` (both derived in chapter 2). That is mode seeking, and GANs are
# prone to dropping modes (chapter 5, mode collapse). {cite:t}`theis2016note`
# discuss how the choice of divergence shapes what a model gets right.
#
# ## 4. Sampling and density estimation in 2-D
#
# **Ancestral sampling.** A mixture is a two-step story: $p(x) = \sum_k p(k)\,p(x\mid k)$ with
# $p(k) = \pi_k$ and $p(x\mid k) = \mathcal N(x; \mu_k, \sigma_k^2 I)$. Drawing $k \sim \pi$ and then
# $x \sim p(x\mid k)$ therefore produces samples of $p$: the pair has density $\pi_k\,p(x\mid k)$,
# and summing out $k$ leaves $p(x)$. `MixtureSameFamily.sample` and `course_lib.data.toy_mixture`
# both sample this way. We test the 1-D sampler against the mixture's CDF
# $F(x) = \sum_k \pi_k \Phi\big((x-\mu_k)/\sigma_k\big)$ with a Kolmogorov–Smirnov test, and show the
# test has the power to reject a sampler that ignores the weights.

# %%
samples = p_mix.sample((utils.fast_or_full(5000, 50_000),))
ks = stats.kstest(samples.numpy(), lambda v: p_mix.cdf(torch.as_tensor(v)).numpy())
equal_weights = gaussian_mixture(
    torch.full((2,), 0.5, **f64), means, stds
)  # ignores pi
wrong = equal_weights.sample((len(samples),))
ks_wrong = stats.kstest(wrong.numpy(), lambda v: p_mix.cdf(torch.as_tensor(v)).numpy())
print(
    f"KS p-value: ancestral sampler {ks.pvalue:.3f}, "
    f"equal weights {ks_wrong.pvalue:.2e}"
)
assert ks.pvalue > 0.01 and ks_wrong.pvalue < 1e-6

# %% [markdown]
# **Density estimation.** Now the data are the 8-mode ring of `course_lib.data.toy_mixture`
# {cite}`lin2018pacgan` (here with component standard deviation 0.05, wider than PacGAN's 0.01 so
# that the figures are readable). Its true density is known (`course_lib.likelihood.toy_density`),
# so we can score any model $q$ on held-out data $x_i \sim p_\text{data}$:
#
# $$
# \widehat{\mathrm{KL}}(p_\text{data}\,\|\,q) = \frac1N\sum_i \big(\log p_\text{data}(x_i) - \log q(x_i)\big),
# $$
#
# the gap between the true and the model's average log-likelihood (`monte_carlo_kl`, with its
# standard error). We fit three models on a training split and choose every hyper-parameter by
# the log-likelihood of a validation split, never from the truth:
#
# * one Gaussian, by maximum likelihood (`gaussian_mle`, section 2); it has none;
# * a Gaussian mixture fitted by EM (`sklearn.mixture.GaussianMixture`), with the number of
#   components $K$ and the covariance type (full or spherical) chosen on the validation split;
# * a kernel density estimate (`sklearn.neighbors.KernelDensity`) {cite}`silverman1986density`,
#   with the bandwidth chosen on the validation split.
#
# The comparison is still not neutral: the mixture's *form*, Gaussian bumps, is the form of the
# truth, while the KDE assumes only smoothness. The cell prints what the validation split chose.
#
# For well-separated modes the true density has a closed-form entropy,
# $H(p_\text{data}) \approx \log 8 + \log(2\pi e\,\sigma^2)$ (pick a mode, then a 2-D Gaussian),
# so the true average log-likelihood on held-out data must be close to $-H$.

# %%
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KernelDensity

STD, N_TRAIN = 0.05, utils.fast_or_full(2000, 10_000)
train = data.toy_mixture("ring", N_TRAIN, seed=0, std=STD).samples  # (N, 2)
valid = data.toy_mixture("ring", N_TRAIN // 2, seed=1, std=STD).samples
test = data.toy_mixture("ring", N_TRAIN, seed=2, std=STD).samples
truth = toy_density("ring", std=STD)
log_p = truth.log_prob(test).double()  # (N,) the true log-density of held-out points

entropy = math.log(8) + math.log(2 * math.pi * math.e * STD**2)
se_true = log_p.std() / math.sqrt(len(test))
print(
    f"true average log-likelihood {log_p.mean():.3f} ± {se_true:.3f}, "
    f"-H = {-entropy:.3f}"
)
assert abs(log_p.mean() + entropy) < 4 * se_true

mu_g, lv_g = gaussian_mle(train)  # one diagonal Gaussian, (2,) and (2,)
gmm_valid = {
    (k, cov): GaussianMixture(k, covariance_type=cov, n_init=2, random_state=0).fit(
        train.numpy()
    )
    for k in (4, 6, 8, 10, 12)
    for cov in ("full", "spherical")
}
best_k, best_cov = max(gmm_valid, key=lambda key: gmm_valid[key].score(valid.numpy()))
gmm = gmm_valid[best_k, best_cov]
print(f"validation chose K = {best_k} ({best_cov} covariances) for the mixture")
bandwidths = [0.01, 0.02, 0.03, 0.05, 0.1]
valid_ll = [
    KernelDensity(bandwidth=b).fit(train.numpy()).score_samples(valid.numpy()).mean()
    for b in bandwidths
]
best_bw = bandwidths[int(np.argmax(valid_ll))]
kde = KernelDensity(bandwidth=best_bw).fit(train.numpy())

log_q = {
    "one Gaussian (MLE)": log_normal_diag(test, mu_g, lv_g, dim=1).double(),
    f"Gaussian mixture, K={best_k} (EM)": torch.from_numpy(
        gmm.score_samples(test.numpy())
    ),
    f"KDE, bandwidth {best_bw}": torch.from_numpy(kde.score_samples(test.numpy())),
}
gaps = {}
for name, lq in log_q.items():
    gaps[name] = monte_carlo_kl(log_p, lq)
    kl, se = gaps[name]
    print(
        f"{name:27s} held-out log-lik {lq.mean():6.3f} | "
        f"KL(p_data||q) ≈ {kl:.4f} ± {se:.4f}"
    )

kl_gauss, kl_gmm, kl_kde = (gaps[k][0] for k in log_q)
assert all(kl > -4 * se for kl, se in gaps.values()), "no model beats the truth (Gibbs)"
assert kl_gmm < 0.05, "the validated mixture recovers the true density"
assert kl_gmm < kl_kde < kl_gauss and kl_gauss > 2, "one Gaussian cannot fit a ring"
# EM found every mode: each true centre has a fitted mean within 3 standard deviations
fitted_means = torch.as_tensor(gmm.means_, dtype=torch.float64)  # (8, 2)
dist = torch.cdist(data.toy_centres("ring").double(), fitted_means)  # (8, 8)
assert (dist.min(1).values < 3 * STD).all()

# %% [markdown]
# A density model is also a sampler. Below: the training data, samples drawn from the fitted
# mixture (ancestral sampling again, `GaussianMixture.sample`), and the log-densities of the truth,
# the mixture and the KDE on a grid. The KDE puts a small bump on every training point; the mixture,
# having the right form, is nearly indistinguishable from the truth.

# %%
gmm_samples, _ = gmm.sample(N_TRAIN)
fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
viz.plot_samples_2d(train, data.toy_centres("ring"), ax=axes[0], title="training data")
viz.plot_samples_2d(
    torch.from_numpy(gmm_samples), ax=axes[1], title="samples of the fitted mixture"
);
# %%
lim = 1.35
g1 = torch.linspace(-lim, lim, 121)
gx, gy = torch.meshgrid(g1, g1, indexing="xy")
points = torch.stack([gx.flatten(), gy.flatten()], 1)  # (121*121, 2)
fields = {
    "true log-density": truth.log_prob(points),
    "mixture (EM)": torch.from_numpy(gmm.score_samples(points.numpy())),
    f"KDE (bandwidth {best_bw})": torch.from_numpy(kde.score_samples(points.numpy())),
}
top = max(
    float(f.max()) for f in fields.values()
)  # one colour scale for the three panels
fig, axes = plt.subplots(1, 3, figsize=(13, 4.5))
for ax, (title, field) in zip(axes, fields.items()):
    image = field.reshape(gx.shape).numpy()  # (121, 121)
    shown = ax.imshow(
        image, origin="lower", extent=(-lim, lim, -lim, lim), vmin=-10, vmax=top
    )
    ax.set_title(title)
fig.colorbar(shown, ax=axes, shrink=0.8, label="log-density (nats)");

# %% [markdown]
# ## Summary
#
# * $\mathrm{KL}(p\,\|\,q) = \mathbb E_p[\log p - \log q] \ge 0$; for Gaussians it has a closed form
#   (`course_lib.distributions.gaussian_kl`), which agrees with `torch` and with Monte Carlo.
# * Maximum likelihood minimises $\mathrm{KL}(p_\text{data}\,\|\,p_\theta)$: the average NLL is that KL
#   plus the data entropy. The Gaussian MLE is the sample mean and the $1/N$ variance, and the KL of
#   the fit to the truth falls like $1/N$.
# * The forward KL covers modes (moment matching), the reverse KL seeks one mode
#   ($\mathrm{KL}\approx-\log\pi_k$).
# * Mixtures are sampled ancestrally, and the held-out log-likelihood gap to the true density
#   estimates the KL of any density model. Here the right model family (a mixture, its size chosen on
#   validation data) beats a
#   non-parametric KDE, which beats a single Gaussian.
#
# Next, chapter 2 replaces the likelihood with a discriminator: GANs, which minimise the
# Jensen–Shannon divergence only with the optimal discriminator and the minimax loss
# {cite}`goodfellow2014gan`, and chapter 6 returns to likelihood with
# latent variables, where the KL of this chapter reappears in the ELBO {cite}`kingma2014vae`.
