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
# # Chapter 14 — Diffusion models and flow matching
#
# A GAN learns a map from noise to data by a game; a VAE by a bound on the likelihood. The
# models of this chapter learn the map *one small step at a time*: they destroy data by adding
# noise along a fixed path, and learn to undo each step by regression. There is no
# discriminator to balance and no posterior to approximate; the price is paid at sampling time,
# when the learned step is taken many times. The chapter:
#
# * derives the **DDPM** forward process, its closed-form marginal and the ELBO's reduction to
#   a weighted noise-prediction loss, and checks each step numerically
#   {cite}`ho2020ddpm`;
# * shows that predicting the noise *is* Tweedie's formula of chapter 11, and derives the
#   **DDIM** sampler {cite}`song2021ddim`;
# * derives **flow matching** on the straight path {cite}`lipman2023flow,liu2023rectified`,
#   checks the exact velocity field of a 1-D mixture with the continuity equation, and trains
#   it on chapter 5's ring and grid;
# * trains both on the embedded digits, measures quality against the number of sampling steps,
#   and compares them with the GAN and VAE recipes at equal training time;
# * builds the course's recipe, **flow matching in the latent space of chapter 7's VAE**
#   {cite}`rombach2022ldm`, adds **classifier-free guidance** {cite}`ho2022cfg`, and edits
#   digits by **inpainting** {cite}`lugmayr2022repaint` and **SDEdit** {cite}`meng2022sdedit`.
#
# **Conventions.** Images are (B, 1, 28, 28) in $[0, 1]$; the networks work in $[-1, 1]$, the
# range the noise is matched to. DDPM time is an integer $t = 0, \dots, T$ and the code indexes
# its arrays by $t$ directly ($\bar\alpha_0 = 1$). Flow time is $t \in [0, 1]$, noise at
# $t = 0$ and data at $t = 1$. Classifier-FID (chapter 9) compares sets of equal size only.

# %%
import math
import time

import matplotlib.pyplot as plt
import torch

from course_lib import data, features, metrics, recipes, toy_gan, utils
from course_lib import diffusion as D
from course_lib import diffusion_train as DT
from course_lib import restoration as R
from course_lib.viz import show_images

t_start = time.perf_counter()
FAST = utils.fast_mode()
MODE = "fast" if FAST else "full"
CKPT = utils.checkpoint_dir()
utils.seed_everything(0)
clf = features.load_mnist_classifier()
test = data.load_mnist("test")
N_FID = 200 if FAST else 1000  # samples per classifier-FID
test_features = features.extract(clf, test.data[:N_FID])
results = {}  # name -> measured number, printed at the end
print("fast mode:", FAST)


def fid(images: torch.Tensor) -> float:
    """Classifier-FID of ``images`` against as many held-out test digits (chapter 9)."""
    return metrics.fid(features.extract(clf, images), test_features)


# %% [markdown]
# ## 14.1 The forward process
#
# Fix $\beta_1, \dots, \beta_T \in (0, 1)$ and add a little Gaussian noise at each step:
#
# $$q(x_t \mid x_{t-1}) = \mathcal N\big(\sqrt{1 - \beta_t}\, x_{t-1},\ \beta_t I\big).$$
#
# The factor $\sqrt{1 - \beta_t}$ keeps the variance of a unit-variance signal at one. With
# $\alpha_t = 1 - \beta_t$, two steps compose into one Gaussian,
# $x_t = \sqrt{\alpha_t}\big(\sqrt{\alpha_{t-1}} x_{t-2} + \sqrt{1 - \alpha_{t-1}}\,
# \epsilon'\big) + \sqrt{1 - \alpha_t}\,\epsilon''$, whose noise has variance
# $\alpha_t(1 - \alpha_{t-1}) + 1 - \alpha_t = 1 - \alpha_t\alpha_{t-1}$; by induction
#
# $$q(x_t \mid x_0) = \mathcal N\big(\sqrt{\bar\alpha_t}\, x_0,\ (1 - \bar\alpha_t) I\big),
# \qquad \bar\alpha_t = \prod_{s=1}^t \alpha_s,$$
#
# so $x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\,\epsilon$ can be drawn in one
# step at any $t$ (`D.q_sample`). Below, the chain is simulated step by step for a Gaussian
# $x_0$ and compared with the closed form; using $\alpha_t$ where $\bar\alpha_t$ belongs (the
# classic slip) misses by far.

# %%
sched = D.schedule("linear", 1000)
g = torch.Generator().manual_seed(0)
x0 = 0.5 + 0.3 * torch.randn(100_000, generator=g, dtype=torch.float64)
x = x0.clone()
for t in range(1, 301):
    beta = sched.betas[t].double()
    x = (1 - beta).sqrt() * x + beta.sqrt() * torch.randn(
        x.shape, generator=g, dtype=torch.float64
    )
ab = sched.alpha_bar[300].double()
closed_var = ab * 0.09 + 1 - ab
alpha_var = sched.alphas[300].double() * 0.09 + sched.betas[300].double()
print(
    f"t = 300: simulated mean {x.mean():.4f}, var {x.var():.4f}; closed form mean "
    f"{ab.sqrt() * 0.5:.4f}, var {closed_var:.4f}; with alpha_t: var {alpha_var:.4f}"
)
assert abs(x.mean() - ab.sqrt() * 0.5) < 0.01 and abs(x.var() - closed_var) < 0.01
assert abs(x.var() - alpha_var) > 0.1
results["forward process: |simulated - closed-form variance|"] = float(
    abs(x.var() - closed_var)
)

# %% [markdown]
# Ho et al. chose $\beta_t$ rising linearly from $10^{-4}$ to $0.02$ over $T = 1000$ steps;
# Nichol and Dhariwal {cite}`nichol2021improved` observed that this destroys a small image
# long before $t = T$ (most steps are spent on almost pure noise) and proposed a **cosine**
# schedule, $\bar\alpha_t = f(t)/f(0)$ with $f(t) = \cos^2\big(\frac{t/T + s}{1 + s}
# \frac{\pi}{2}\big)$. The digit below, noised at ten times, shows the difference.

# %%
cos_sched = D.schedule("cosine", 1000)
digit = 2 * test.data[:1] - 1  # (1, 1, 28, 28) in [-1, 1]
times = torch.linspace(0, 1000, 10).round().long()
eps = torch.randn(digit.shape, generator=torch.Generator().manual_seed(1))
fig, axes = plt.subplots(1, 3, figsize=(13, 2.8), width_ratios=[1, 2, 2])
for s, name in ((sched, "linear"), (cos_sched, "cosine")):
    axes[0].plot(s.alpha_bar.sqrt(), label=name)
axes[0].set(xlabel="t", ylabel=r"$\sqrt{\bar\alpha_t}$", title="signal left")
axes[0].legend()
for ax, s, name in ((axes[1], sched, "linear"), (axes[2], cos_sched, "cosine")):
    noised = torch.cat([D.q_sample(digit, int(t), s, eps) for t in times])
    show_images((noised + 1).div(2).clamp(0, 1), nrow=10, ax=ax, title=name)
fig.tight_layout()
plt.show()
low_lin = int((sched.alpha_bar.sqrt() < 0.1).nonzero()[0])
low_cos = int((cos_sched.alpha_bar.sqrt() < 0.1).nonzero()[0])
print(f"signal below 10 %: from t = {low_lin} (linear), t = {low_cos} (cosine)")
assert low_lin < low_cos  # the linear schedule spends more of its steps on noise

# %% [markdown]
# ## 14.2 From the ELBO to the noise-prediction loss
#
# The reverse model is a chain $p_\theta(x_{t-1} \mid x_t) = \mathcal N(\mu_\theta(x_t, t),
# \sigma_t^2 I)$ from $p(x_T) = \mathcal N(0, I)$. Chapter 6's ELBO, with the forward chain as
# the "encoder", splits into one KL term per step {cite}`ho2020ddpm`:
#
# $$-\log p_\theta(x_0) \le \mathbb E_q\Big[\underbrace{\mathrm{KL}(q(x_T \mid x_0) \,\|\,
# p(x_T))}_{L_T} + \sum_{t > 1} \underbrace{\mathrm{KL}(q(x_{t-1} \mid x_t, x_0) \,\|\,
# p_\theta(x_{t-1} \mid x_t))}_{L_{t-1}} - \log p_\theta(x_0 \mid x_1)\Big].$$
#
# Bayes' rule on the Gaussians gives the forward posterior in closed form,
# $q(x_{t-1} \mid x_t, x_0) = \mathcal N(\tilde\mu_t, \tilde\beta_t I)$ with
# $\tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\beta_t}{1 - \bar\alpha_t} x_0 +
# \frac{\sqrt{\alpha_t}(1 - \bar\alpha_{t-1})}{1 - \bar\alpha_t} x_t$ and
# $\tilde\beta_t = \frac{1 - \bar\alpha_{t-1}}{1 - \bar\alpha_t}\beta_t$. Substituting
# $x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\,\epsilon)/\sqrt{\bar\alpha_t}$ turns the mean into
# $\tilde\mu_t = \frac{1}{\sqrt{\alpha_t}}\big(x_t - \frac{\beta_t}{\sqrt{1 - \bar\alpha_t}}
# \epsilon\big)$, so the model's mean is best written the same way with a **noise prediction**
# $\hat\epsilon = \epsilon_\theta(x_t, t)$. Two Gaussians of equal variance have
# $\mathrm{KL} = \lVert\tilde\mu_t - \mu_\theta\rVert^2 / 2\sigma_t^2$ plus a constant, hence
#
# $$L_{t-1} = \lambda_t\, \lVert \epsilon - \epsilon_\theta(x_t, t)\rVert^2 + C_t,
# \qquad \lambda_t = \frac{\beta_t^2}{2\sigma_t^2\, \alpha_t\, (1 - \bar\alpha_t)}.$$
#
# Ho et al. train with $\lambda_t$ dropped (the "simple" loss, `D.eps_loss`): it weights the
# noisy steps more than the bound does, and gave better samples. The cell computes each KL from
# the two Gaussians (`D.posterior_kl`) for a random $\hat\epsilon$ and compares.

# %%
g = torch.Generator().manual_seed(2)
x0 = torch.rand(8, 1, 6, 6, generator=g, dtype=torch.float64) * 2 - 1
eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
eps_hat = eps + 0.2 * torch.randn(x0.shape, generator=g, dtype=torch.float64)
worst = 0.0
for t in (2, 10, 100, 500, 999):
    xt = D.q_sample(x0, t, sched, eps)
    kl = D.posterior_kl(x0, xt, eps_hat, t, sched) - D.posterior_kl(
        x0, xt, eps, t, sched
    )
    weighted = D.elbo_weight(sched, t) * (eps - eps_hat).flatten(1).pow(2).sum(1)
    worst = max(worst, float(((kl - weighted) / weighted).abs().max()))
print(f"largest relative difference between the KL and the weighted loss: {worst:.1e}")
assert worst < 1e-4
results["ELBO term vs weighted eps-loss (relative)"] = worst
lam = D.elbo_weight(sched, torch.arange(1, 1001))
print(
    f"lambda_t: {lam[0]:.3g} at t = 1, {lam[499]:.3g} at t = 500, "
    f"{lam[-1]:.3g} at t = T"
)
assert lam[0] > 10 * lam[499]  # the bound's weights favour the cleanest steps

# %% [markdown]
# ## 14.3 Noise prediction is Tweedie's formula
#
# The network that minimises $\mathbb E\lVert\epsilon - \epsilon_\theta(x_t, t)\rVert^2$ is
# the posterior mean $\mathbb E[\epsilon \mid x_t]$; since $x_0$ and $\epsilon$ are tied by
# $x_t = \sqrt{\bar\alpha_t} x_0 + \sqrt{1 - \bar\alpha_t}\,\epsilon$,
#
# $$\hat x_0 = \frac{x_t - \sqrt{1 - \bar\alpha_t}\,\hat\epsilon}{\sqrt{\bar\alpha_t}}
# = \mathbb E[x_0 \mid x_t],$$
#
# the MMSE denoiser of chapter 11. There, Tweedie's formula wrote the same mean with the score:
# $y = x_t/\sqrt{\bar\alpha_t} = x_0 + \sigma n$ with $\sigma^2 = (1 - \bar\alpha_t)/\bar\alpha_t$
# gives $\mathbb E[x_0 \mid y] = y + \sigma^2 \nabla \log p(y)$. For Gaussian data
# $x_0 \sim \mathcal N(m, s^2)$ everything is known in closed form: the three computations
# below must agree.

# %%
m, s, t = 0.3, 0.5, 400
ab = cos_sched.alpha_bar[t].double()
xt = torch.linspace(-2, 2, 9, dtype=torch.float64)
a, b = ab.sqrt(), (1 - ab).sqrt()
eps_opt = D.gaussian_data_eps(xt, t, cos_sched, m, s)  # E[eps | x_t]
exact = m + a * s**2 / (a**2 * s**2 + b**2) * (xt - a * m)  # E[x_0 | x_t]
via_eps = D.predict_x0(xt, eps_opt, t, cos_sched)
sigma = float(b / a)
log_p = torch.distributions.Normal(m, math.sqrt(s**2 + sigma**2)).log_prob
via_score = R.tweedie(xt / a, lambda y: log_p(y).sum(), sigma)
err = max(float((via_eps - exact).abs().max()), float((via_score - exact).abs().max()))
print(f"posterior mean: largest disagreement of the three = {err:.1e}")
assert err < 1e-6

# %% [markdown]
# ## 14.4 Samplers: ancestral and DDIM
#
# **Ancestral sampling** runs the learned chain: $x_T \sim \mathcal N(0, I)$, then
# $x_{t-1} = \mu_\theta(x_t, t) + \sigma_t z$ for $t = T, \dots, 1$ (`D.ddpm_sample`), $T$
# network calls. A subsequence $\tau_1 < \dots < \tau_S$ of the steps is itself a Markov chain
# with $\beta'_i = 1 - \bar\alpha_{\tau_i}/\bar\alpha_{\tau_{i-1}}$ (`D.respace`), so a network
# trained on $T$ steps samples in $S$.
#
# **DDIM** {cite}`song2021ddim` notices that the loss only involves the marginals
# $q(x_t \mid x_0)$, so any process with those marginals is trained by the same network. The
# deterministic one moves $x_t$ to $x_s$ ($s < t$) by keeping the predicted noise:
#
# $$x_s = \sqrt{\bar\alpha_s}\,\hat x_0 + \sqrt{1 - \bar\alpha_s}\,\hat\epsilon,
# \qquad \hat x_0 = \frac{x_t - \sqrt{1 - \bar\alpha_t}\,\hat\epsilon}{\sqrt{\bar\alpha_t}}.$$
#
# It is a discretisation of an ODE (the probability-flow ODE): its error shrinks with the step
# count. With the *exact* $\hat\epsilon$ of Gaussian data (14.3), both samplers must return
# $\mathcal N(m, s^2)$; the table measures how fast.

# %%
m, s = 0.5, 0.2


def exact_eps(schedule):  # the ideal noise predictor of N(m, s^2) data
    def net(x, t, labels=None):
        return D.gaussian_data_eps(x, (t * schedule.T).round().long(), schedule, m, s)

    return net


print(f"{'steps':>6}  {'DDIM std':>9}  {'ancestral std':>13}   (target {s})")
ddim_err = {}
for steps in (10, 50, 250):
    gen = torch.Generator().manual_seed(0)
    xd = D.ddim_sample(exact_eps(sched), (20_000, 1), sched, steps, generator=gen)
    short = D.respace(sched, steps)
    xa = D.ddpm_sample(exact_eps(short), (20_000, 1), short, gen)
    ddim_err[steps] = abs(float(xd.std()) - s)
    print(f"{steps:6d}  {xd.std():9.4f}  {xa.std():13.4f}")
assert ddim_err[250] < 0.01 and ddim_err[10] > 5 * ddim_err[250]

# %% [markdown]
# ## 14.5 Flow matching
#
# Flow matching {cite}`lipman2023flow` skips the chain. Take noise $x_0 \sim \mathcal N(0, I)$,
# data $x_1$, and the straight path $x_t = (1 - t)\, x_0 + t\, x_1$, whose velocity is
# $x_1 - x_0$. Many paths cross each point, so no network can match every path's velocity; the
# regression
#
# $$\min_\theta\ \mathbb E_{t, x_0, x_1}\lVert v_\theta(x_t, t) - (x_1 - x_0)\rVert^2$$
#
# is minimised by their average, $u(x, t) = \mathbb E[x_1 - x_0 \mid x_t = x]$, and that
# average field moves the whole distribution of $x_0$ onto the data's: the density $p_t$ of
# $x_t$ satisfies the continuity equation $\partial_t p_t + \nabla\cdot(p_t u) = 0$. Rectified
# flow {cite}`liu2023rectified` is the same construction. Sampling integrates
# $\dot x = v_\theta(x, t)$ from $t = 0$ to 1: Euler's method (one call per step) or Heun's
# (two calls, second order).
#
# For 1-D data $\sum_k w_k \mathcal N(m_k, s_k^2)$ the field is exact: within component $k$,
# $x_t \sim \mathcal N(t m_k, v_k)$ with $v_k = t^2 s_k^2 + (1 - t)^2$, and Gaussian
# conditioning gives $\mathbb E[x_1 - x_0 \mid x_t = x, k] = (m_k(1 - t) + x(t s_k^2 -
# (1 - t)))/v_k$, averaged with the components' posterior weights (`D.mixture_velocity`). The
# cell checks the continuity equation by finite differences, then trains a small network on
# samples of the mixture and compares its field with the exact one.

# %%
MIX = dict(means=[-2.0, 0.5, 2.5], stds=[0.3, 0.4, 0.2], weights=[0.3, 0.5, 0.2])
xs = torch.linspace(-4, 4, 401, dtype=torch.float64)
residual = 0.0
for t in (0.1, 0.5, 0.9):
    h = 1e-5
    dp = (D.mixture_density(xs, t + h, **MIX) - D.mixture_density(xs, t - h, **MIX)) / (
        2 * h
    )

    def flux(y, t=t):
        return D.mixture_density(y, t, **MIX) * D.mixture_velocity(y, t, **MIX)

    residual = max(
        residual, float((dp + (flux(xs + h) - flux(xs - h)) / (2 * h)).abs().max())
    )
print(f"continuity equation: largest residual {residual:.1e}")
assert residual < 1e-5

g = torch.Generator().manual_seed(3)
k = torch.multinomial(torch.tensor(MIX["weights"]), 50_000, True, generator=g)
x1 = torch.tensor(MIX["means"])[k] + torch.tensor(MIX["stds"])[k] * torch.randn(
    50_000, generator=g
)
flow_1d = DT.train_diffusion(
    x1[:, None],
    steps=150 if FAST else 3000,
    seed=0,
    config={"hidden": 128, "depth": 3, "batch_size": 512, "lr": 3e-3},
    desc="1-D flow",
)
grid_x = torch.linspace(-3, 3, 121)
fig, axes = plt.subplots(1, 3, figsize=(13, 3))
rel = {}
for ax, t in zip(axes, (0.2, 0.6, 0.9)):
    with torch.no_grad():
        learned = flow_1d.net(grid_x[:, None], torch.full((121,), t)).squeeze(1)
    exact = D.mixture_velocity(grid_x.double(), t, **MIX).float()
    weight = D.mixture_density(grid_x.double(), t, **MIX).float()  # where the data is
    rel[t] = float((weight * (learned - exact) ** 2).sum() / (weight * exact**2).sum())
    ax.plot(grid_x, exact, label="exact u(x, t)")
    ax.plot(grid_x, learned, "--", label="learned")
    ax.set(title=f"t = {t}: weighted relative error {rel[t]:.3f}", xlabel="x")
axes[0].legend()
fig.tight_layout()
plt.show()
results["1-D flow: weighted relative error of the field at t = 0.6"] = rel[0.6]
assert rel[0.6] < (0.5 if FAST else 0.05)

# %% [markdown]
# ## 14.6 The ring and the grid
#
# Chapter 5's mixtures are hard for GANs because their modes are narrow (standard deviation
# 0.01 on the ring, 0.05 on the grid) and far apart. Flow matching has no game to collapse: the
# regression sees every mode in every batch. Below, the same small MLP (`DT.PointNet`) trains
# for 30 s on each mixture (fast mode: a few hundred steps) and is scored with chapter 5's
# protocol (a sample is of high quality within 3 standard deviations of a centre; a mode is
# captured when a high-quality sample is nearest to it), beside chapter 5's GAN recipe trained
# for 60 s (from `benchmarks/bench_toy_gan.py`). Sampling uses 100 Heun steps: the field is
# sharp near $t = 1$, where it must squeeze each mode to its width.

# %%
TOY = dict(steps=200) if FAST else dict(seconds=30.0)
gan_bench = toy_gan.load_benchmark()
toy_rows = {}
fig, axes = plt.subplots(1, 4, figsize=(14, 3.4))
for i, kind in enumerate(("ring", "grid")):
    pts = data.toy_mixture(kind, 100_000, seed=0).samples
    model = DT.train_diffusion(
        pts,
        **TOY,
        seed=0,
        config={"batch_size": 512},
        checkpoint=CKPT / f"ch14_flow_{kind}_{MODE}.pt",
        shipped=f"ch14_flow_{kind}",
        desc=f"flow on the {kind}",
    )
    samples = model.sample(2500, steps=100, generator=torch.Generator().manual_seed(1))
    score = toy_gan.score(samples, kind)
    gan = toy_gan.score(gan_bench["runs"][f"{kind}/recipe/0"]["samples"].float(), kind)
    toy_rows[kind] = (score, gan, len(model.history["step"]))
    for ax, pts_, name in (
        (axes[2 * i], samples, "flow matching"),
        (
            axes[2 * i + 1],
            gan_bench["runs"][f"{kind}/recipe/0"]["samples"].float(),
            "GAN recipe (ch. 5)",
        ),
    ):
        ax.scatter(*pts_[:2500].T, s=1, alpha=0.4)
        ax.set(title=f"{kind}: {name}", aspect="equal")
fig.tight_layout()
plt.show()
for kind, (score, gan, steps) in toy_rows.items():
    print(
        f"{kind}: flow matching ({steps} steps) {score['modes']} modes, "
        f"{score['high quality']:.1%} high quality | GAN recipe {gan['modes']} modes, "
        f"{gan['high quality']:.1%}"
    )
    results[f"{kind}: flow matching, modes"] = score["modes"]
    results[f"{kind}: flow matching, high-quality fraction"] = score["high quality"]
    results[f"{kind}: GAN recipe (ch. 5), high-quality fraction"] = gan["high quality"]
if not FAST:
    assert toy_rows["ring"][0]["modes"] == 8 and toy_rows["grid"][0]["modes"] == 25

# %% [markdown]
# ## 14.7 Digits in pixel space
#
# On images the network is a U-Net (`blocks.TimeUNet`, chapter 11's shape with the time added
# to every residual block), here 16–32–32 channels: on two CPU cores every convolution counts.
# Both models train for the same time (300 s in the default mode): a DDPM (noise prediction,
# cosine schedule, sampled with DDIM and with the ancestral sampler on the respaced chain) and a
# flow (sampled with Heun's method). Quality against
# the number of network calls (NFE) is the practical question: sampling cost is where these
# models pay.

# %%
PIXEL = dict(steps=15) if FAST else dict(seconds=300.0)
train_x = data.load_mnist("train").data
pixel = {}
for kind in ("ddpm", "flow"):
    pixel[kind] = DT.train_diffusion(
        train_x,
        **PIXEL,
        seed=0,
        config={"kind": kind},
        checkpoint=CKPT / f"ch14_pixel_{kind}_{MODE}.pt",
        shipped=f"ch14_pixel_{kind}",
        desc=f"pixel {kind}",
    )
NFES = (20,) if FAST else (5, 10, 20, 50, 100)
SAMPLERS = {  # name: (model, sampler, steps for a number of network calls)
    "DDPM + DDIM": (pixel["ddpm"], "ddim", lambda nfe: nfe),
    "DDPM ancestral": (pixel["ddpm"], "ddpm", lambda nfe: nfe),
    "flow + Heun": (
        pixel["flow"],
        "heun",
        lambda nfe: max(1, nfe // 2),
    ),  # 2 calls a step
}
nfe_fid = {name: {} for name in SAMPLERS}
for nfe in NFES:
    for name, (model, sampler, steps) in SAMPLERS.items():
        imgs = model.sample(
            N_FID,
            steps=steps(nfe),
            sampler=sampler,
            generator=torch.Generator().manual_seed(1),
        )
        nfe_fid[name][nfe] = fid(imgs)
print(
    f"classifier-FID of {N_FID} samples (lower is better) against network calls (NFE)"
)
print("  NFE" + "".join(f"{name:>16}" for name in SAMPLERS))
for nfe in NFES:
    print(f"{nfe:5d}" + "".join(f"{nfe_fid[name][nfe]:16.1f}" for name in SAMPLERS))
fig, axes = plt.subplots(1, 2, figsize=(12, 2.6))
for ax, (kind, model) in zip(axes, pixel.items()):
    show_images(
        model.sample(20, generator=torch.Generator().manual_seed(2)),
        nrow=10,
        ax=ax,
        title=f"pixel {kind}, {len(model.history['step'])} steps",
    )
plt.show()
for name in SAMPLERS:
    results[f"pixel {name}: classifier-FID at NFE 20"] = nfe_fid[name][20]
if not FAST:
    assert nfe_fid["flow + Heun"][20] < nfe_fid["flow + Heun"][5]  # more steps, better
    ddim, anc = nfe_fid["DDPM + DDIM"], nfe_fid["DDPM ancestral"]
    assert ddim[5] < anc[5] and anc[100] < ddim[100]  # DDIM for few steps only
    assert nfe_fid["flow + Heun"][20] < min(ddim[20], anc[20])

# %% [markdown]
# Read the table by rows. With few network calls, DDIM's deterministic steps beat the ancestral
# sampler, which is what DDIM was designed for; as the calls grow, the ancestral sampler
# overtakes it: its fresh noise at every step corrects part of the model's error, which the
# deterministic ODE carries along to the end (Karras et al. {cite}`karras2022elucidating`
# make the same observation on larger models). The flow, integrated with Heun's method, beats
# both at 20 calls; with 5 calls Heun's method has two steps, too few. In the default mode the
# cell asserts these orderings; fast mode's models are barely trained.

# %% [markdown]
# ## 14.8 The recipe: flow matching in a VAE's latent space
#
# In 300 s the pixel-space U-Net takes a few thousand steps, too few for sharp digits, and
# each of its samples costs 20 U-Net calls. Latent diffusion {cite}`rombach2022ldm` moves the
# generative model into the latent space of an autoencoder. Chapter 7's VAE is one: its decoder
# turns a 32-dimensional code into a digit. Sampled from its prior $\mathcal N(0, I)$, it draws
# blurry, often ambiguous digits, because the codes of real digits (the *aggregate posterior*
# $\frac1N\sum_n q(z \mid x_n)$) do not fill the prior: the prior puts mass where no digit's
# code lies. Flow matching on the codes of the training digits learns the aggregate posterior
# instead (Dai and Wipf's two-stage VAE {cite}`dai2019diagnosing` makes the same argument).
# An MLP on 32 numbers costs far less per step than the U-Net on 784 pixels: the cell prints
# the steps per second of both.
#
# `recipes.train_mnist_diffusion(seconds)` spends 60 % of the budget on the VAE recipe, encodes
# the training digits and four one-pixel-shifted copies to their posterior means, standardises
# them, and trains the flow in the rest. The same decoder with the prior's codes is the
# ablation that isolates what the flow adds.

# %%
RECIPE = dict(steps=100) if FAST else dict(seconds=300.0)
recipe = recipes.train_mnist_diffusion(
    **RECIPE, seed=0, checkpoint=CKPT / f"ch14_recipe_{MODE}", shipped="ch14_recipe"
)
gen = torch.Generator().manual_seed(1)
t0 = time.perf_counter()
recipe_imgs = recipe.sample(N_FID, generator=gen)
recipe_sample_s = time.perf_counter() - t0
prior_imgs = recipe.vae.sample(N_FID, generator=torch.Generator().manual_seed(1))
recon_imgs = recipe.vae.reconstruct(train_x[:N_FID])
fids = {
    "flow on the codes": fid(recipe_imgs),
    "VAE prior": fid(prior_imgs),
    "VAE reconstructions (training digits)": fid(recon_imgs),
}
for name, value in fids.items():
    print(f"{name:40s} classifier-FID {value:6.1f}")
print(f"{N_FID} samples of the recipe in {recipe_sample_s:.1f} s")
for name, hist in (
    ("pixel flow", pixel["flow"].history),
    ("latent flow", recipe.history["flow"]),
):
    print(
        f"{name}: {len(hist['step'])} steps, "
        f"{len(hist['step']) / hist['time'][-1]:.0f} per second"
    )
fig, axes = plt.subplots(1, 2, figsize=(12, 2.6))
show_images(
    recipe_imgs[:20], nrow=10, ax=axes[0], title="recipe: flow on the VAE's codes"
)
show_images(prior_imgs[:20], nrow=10, ax=axes[1], title="same decoder, prior codes")
plt.show()
results["recipe: classifier-FID"] = fids["flow on the codes"]
results["recipe's VAE, prior samples: classifier-FID"] = fids["VAE prior"]
results[f"recipe: seconds to draw {N_FID} samples"] = recipe_sample_s
if not FAST:
    assert fids["flow on the codes"] < 0.6 * fids["VAE prior"]
    assert fids["flow on the codes"] < nfe_fid["flow + Heun"][20]  # beats pixel space

# %% [markdown]
# ## 14.9 Classifier-free guidance
#
# A class-conditional model $v_\theta(x, t, c)$ can be pushed towards its class. Ho and
# Salimans {cite}`ho2022cfg` train one network for both the conditional and the unconditional
# model, replacing the label by a "no class" token 10 % of the time, and sample with
#
# $$\tilde v = (1 + w)\, v_\theta(x, t, c) - w\, v_\theta(x, t, \varnothing).$$
#
# For noise prediction this is the score of $p(x \mid c)\, p(c \mid x)^w$: $w > 0$ sharpens
# the class at the cost of diversity. The recipe's flow is retrained with the labels on the
# same VAE's codes; the course's classifier then reads the samples.

# %%
COND = dict(steps=100) if FAST else dict(seconds=150.0)
train_y = data.load_mnist("train").targets
cond = recipes.train_mnist_diffusion(
    **COND,
    seed=0,
    labels=train_y,
    n_classes=10,
    vae=recipe.vae,
    checkpoint=CKPT / f"ch14_cond_{MODE}",
    shipped="ch14_cond",
    desc="conditional flow",
)
want = torch.arange(N_FID) % 10
guidance = {}
for w in (0.0, 1.0, 3.0):
    imgs = cond.sample(
        N_FID, labels=want, guidance=w, generator=torch.Generator().manual_seed(1)
    )
    guidance[w] = (features.accuracy(clf, imgs, want), fid(imgs))
    if w == 3.0:
        show_images(imgs[:30], nrow=10, title="w = 3, classes 0-9")
print(f"{'w':>4}  {'read as the class':>17}  {'classifier-FID':>14}")
for w, (acc, f) in guidance.items():
    print(f"{w:4g}  {acc:17.1%}  {f:14.1f}")
    results[f"guidance w = {w:g}: read as the class"] = acc
if not FAST:
    assert guidance[3.0][0] > guidance[0.0][0] and guidance[3.0][0] > 0.95

# %% [markdown]
# ## 14.10 Editing: inpainting and SDEdit
#
# A trained diffusion model edits images without retraining.
#
# **Inpainting** (RePaint {cite}`lugmayr2022repaint`): at every reverse step, the known pixels
# are replaced by a fresh sample of $q(x_{t-1} \mid y)$, the unknown ones follow the model; to
# let the two parts agree, each step is repeated a few times, jumping back with
# $q(x_t \mid x_{t-1})$ in between (`D.repaint`). Below, the pixel DDPM fills the lower half of
# held-out digits (chapter 11's masks), against chapter 11's biharmonic inpainting. The
# classifier-FID of the completions says whether they look like digits, the PSNR how close they
# are to the hidden half, and the classifier whether the completed digit is still the original's
# class.

# %%
N_EDIT = 10 if FAST else 200
y = test.data[:N_EDIT]
labels_y = test.targets[:N_EDIT]
mask = torch.ones_like(y)
mask[..., 14:, :] = 0  # the lower half is unknown
ddpm = pixel["ddpm"]
t0 = time.perf_counter()
filled = ddpm.inpaint(
    y,
    mask,
    steps=10 if FAST else 50,
    resample=2 if FAST else 5,
    generator=torch.Generator().manual_seed(0),
)
repaint_s = time.perf_counter() - t0
biharmonic = R.inpaint_biharmonic(y * mask, mask)
inpaint = {}
for name, im in (
    ("masked input", y * mask),
    ("biharmonic (ch. 11)", biharmonic),
    ("RePaint (pixel DDPM)", filled),
):
    inpaint[name] = (features.accuracy(clf, im, labels_y), fid(im), R.psnr(y, im))
print(f"{'':22s} {'read as the class':>17}  {'classifier-FID':>14}  {'PSNR dB':>7}")
for name, (a, f, p) in inpaint.items():
    print(f"{name:22s} {a:17.1%}  {f:14.1f}  {p:7.2f}")
print(f"RePaint: {N_EDIT} digits in {repaint_s:.0f} s")
fig, axes = plt.subplots(4, 1, figsize=(9, 4.6))
for ax, (name, im) in zip(
    axes,
    [
        ("original", y),
        ("masked", y * mask),
        ("biharmonic", biharmonic),
        ("RePaint", filled),
    ],
):
    show_images(im[:12], nrow=12, ax=ax, title=name)
fig.tight_layout()
plt.show()
for name, (a, f, _p) in inpaint.items():
    results[f"inpainting, {name}: classifier-FID"] = f
    results[f"inpainting, {name}: read as the class"] = a
if not FAST:
    rp, bh = inpaint["RePaint (pixel DDPM)"], inpaint["biharmonic (ch. 11)"]
    assert (
        rp[1] < 0.5 * bh[1] and rp[2] > bh[2]
    )  # more realistic, and closer to the truth

# %% [markdown]
# RePaint's completions look like digits (a classifier-FID far below the smooth biharmonic
# fill's) and are closer to the hidden halves in PSNR, but read the printed table's first column
# too: the classifier does not recognise the original digit more often in them. Half a digit is
# often ambiguous, and a realistic completion commits to *one* of the digits it could be, not
# always the original. A sample is not the MMSE estimate: for "which digit was it?", chapter
# 11's posterior mean (or many samples) is the better answer; for "show me a plausible image",
# the sample is.

# %% [markdown]
# **SDEdit** {cite}`meng2022sdedit` turns a rough sketch into a realistic image: noise the
# sketch to an intermediate time $t_0$, then run the reverse process from there. Little noise
# keeps the sketch; much noise keeps only its coarse layout. The sketches here are digits
# reduced to 7×7 blocks (chapter 12's low-resolution inputs), blown up again: the trade-off
# is measured by the distance to the sketch and by the classifier-FID of the results.

# %%
blocky = torch.nn.functional.interpolate(
    torch.nn.functional.avg_pool2d(test.data[:N_FID], 4), scale_factor=4, mode="nearest"
)
sde = {}
for strength in (0.0, 0.4, 0.6, 0.8):
    out = ddpm.edit(
        blocky, strength, steps=20, generator=torch.Generator().manual_seed(0)
    )
    sde[strength] = (out, float((out - blocky).pow(2).mean().sqrt()), fid(out))
fig, axes = plt.subplots(len(sde), 1, figsize=(9, 1.2 * len(sde)))
for ax, (strength, (out, dist, f)) in zip(axes, sde.items()):
    show_images(
        out[:12],
        nrow=12,
        ax=ax,
        title=f"strength {strength}: RMS to sketch {dist:.3f}, classifier-FID {f:.1f}",
    )
fig.tight_layout()
plt.show()
for strength, (_, _dist, f) in sde.items():
    results[f"SDEdit strength {strength}: classifier-FID"] = f
dists = [d for _, d, _ in sde.values()]
assert all(
    a < b for a, b in zip(dists, dists[1:])
)  # more noise, further from the sketch
if not FAST:
    assert sde[0.6][2] < sde[0.0][2]  # and closer to real digits

# %% [markdown]
# ## 14.11 Against the GAN and the VAE at equal training time
#
# `benchmarks/bench_diffusion.py` trains each model for the same wall time on this machine, one
# after the other, and scores 1,000 samples against the 1,000 test digits; the table is that
# run's, kept in `course_lib/assets/bench/diffusion.json` (the command is printed with it).

# %%
bench = DT.load_benchmark()
print(bench["command"])
print(f"floor (real training digits): {bench['floor']:.1f}")
print(f"{'budget':>6}  {'model':18s} {'steps':>7} {'FID':>7} {'sampling s':>10}")
for r in sorted(bench["rows"], key=lambda r: (r["budget"], r["fid"])):
    print(
        f"{r['budget']:6g}  {r['model']:18s} {r['steps']:7d} {r['fid']:7.1f} "
        f"{r['sample_seconds']:10.1f}"
    )
at300 = {r["model"]: r for r in bench["rows"] if r["budget"] == 300}
fid300 = {name: r["fid"] for name, r in at300.items()}
# without clusters or labels: the diffusion recipe is ahead of the DCGAN and the VAE
assert fid300["diffusion recipe"] < min(fid300["DCGAN (ch. 4)"], fid300["VAE recipe"])
# ...and behind the GAN recipe: the same DCGAN, conditioned on clusters of the digits
assert fid300["GAN recipe"] < fid300["diffusion recipe"]
assert at300["diffusion recipe"]["sample_seconds"] <= 30

# %% [markdown]
# The diffusion recipe beats the models that face the data's ten separated digits with a
# continuous code alone: chapter 4's DCGAN, the VAE's prior samples and the pixel-space models.
# It is behind the course's GAN recipe, the same DCGAN told which of 50 spectral clusters of the
# digits to draw (chapter 4, section 5). The flow here has no such discrete input; it sees
# cluster-like structure only through the VAE's codes. A flow conditioned on the same clusters,
# as section 14.9 conditions it on labels, is the comparison this table does not hold.

# %% [markdown]
# ## Exercises
#
# **Exercise 1.** Write `q_sample(x0, t, betas, eps)`: a sample of $q(x_t \mid x_0)$.
# `betas` is $(\beta_0 = 0, \beta_1, \dots, \beta_T)$, a tensor of $T + 1$ numbers, `t` a
# tensor of $B$ integers in $0..T$ (one per image), `x0` and `eps` of shape (B, C, H, W).


# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "ch14-ex1", "locked": false, "schema_version": 3, "solution": true, "task": false}
import torch


def q_sample(x0, t, betas, eps):
    ### BEGIN SOLUTION
    alpha_bar = torch.cumprod(1 - betas, dim=0)[t].reshape(-1, 1, 1, 1)
    return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * eps
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch14-ex1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from course_lib.checks.ch14 import check_q_sample

check_q_sample(q_sample)

# %% [markdown]
# **Exercise 2.** Write `ddim_step(x_t, eps_hat, alpha_bar_t, alpha_bar_s)`: the
# deterministic DDIM move from time $t$ to an earlier time $s$, given the network's noise
# prediction `eps_hat` and the two numbers $\bar\alpha_t$, $\bar\alpha_s$.


# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "ch14-ex2", "locked": false, "schema_version": 3, "solution": true, "task": false}
import math


def ddim_step(x_t, eps_hat, alpha_bar_t, alpha_bar_s):
    ### BEGIN SOLUTION
    x0_hat = (x_t - math.sqrt(1 - alpha_bar_t) * eps_hat) / math.sqrt(alpha_bar_t)
    return math.sqrt(alpha_bar_s) * x0_hat + math.sqrt(1 - alpha_bar_s) * eps_hat
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch14-ex2-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from course_lib.checks.ch14 import check_ddim_step

check_ddim_step(ddim_step)

# %% [markdown]
# ## Results
#
# Measured in this execution (sizes of the mode printed at the top). The README holds the
# equal-time benchmark table with its command.

# %%
width = max(map(len, results))
for name, value in results.items():
    print(f"{name:{width}s}  {value:.4g}")
print(f"chapter run time: {time.perf_counter() - t_start:.0f} s")
