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
# # Chapter 9 — Evaluating generative models
#
# A GAN has no likelihood to report, and a VAE's ELBO says little about how its samples
# look {cite}`theis2016note`. So we judge generators by their **samples**: we pass real and
# generated images through a fixed network and compare the two clouds of features. This
# chapter builds the standard scores and, more importantly, shows what each one sees and
# what it misses:
#
# * the **Fréchet Inception Distance** (FID) {cite}`heusel2017fid`, how to compute it
#   stably and fast, and its bias-free extrapolation FID$_\infty$ {cite}`chong2020fidinf`;
# * the **Kernel Inception Distance** (KID) {cite}`binkowski2018kid`, which is unbiased;
# * the **Inception Score** (IS) {cite}`salimans2016improved`;
# * **precision and recall** {cite}`kynkaanniemi2019pr`, which separate quality from diversity, and
#   **density and coverage** {cite}`naeem2020density`, which do so robustly to outliers;
# * **mode coverage** on the 2-D toy mixtures {cite}`srivastava2017veegan,lin2018pacgan`;
# * how to judge a **discriminator**: accuracy, the ROC curve and its AUC.
#
# We need no trained GAN for this. A "generator" here is real MNIST with a controlled
# defect: Gaussian noise, blur, dropped classes (simulated mode collapse), a few images
# duplicated, or the training images copied outright (memorisation). Because we know the
# defect, we can check what each score reports.

# %%
import math
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from torchvision.transforms.functional import gaussian_blur

from course_lib import data, features, metrics, utils, viz

t_start = time.perf_counter()
g = utils.seed_everything(0)
n = utils.fast_or_full(500, 2000)  # images per set in the comparisons below
kid_subsets = utils.fast_or_full(10, 100)
print("images per set:", n, "| fast mode:", utils.fast_mode())

# %% [markdown]
# ## 9.1 A feature extractor for MNIST
#
# The published scores use Inception-v3 features from ImageNet. For 28×28 digits we use a
# network trained on digits instead: `features.load_mnist_classifier()` returns the course's
# small CNN, trained on the 4,000 embedded training digits by `tools/train_mnist_classifier.py`
# and shipped with the package. Loading checks the file's SHA-256 against its training card
# and uses `weights_only=True`. Its `.features(x)` are the 128 penultimate activations (for
# FID, KID, precision/recall) and its softmax gives $p(y \mid x)$ (for IS).
#
# (If you have torchvision's Inception-v3 weights file, `features.inception_v3_features(path)`
# gives the 2048-d pool features with the same interface. They are not the TensorFlow
# graph of the FID paper, so compare its numbers with each other, not with published tables.)

# %%
clf = features.load_mnist_classifier()
card = features.mnist_classifier_card()
test = data.load_mnist("test")
acc = features.accuracy(clf, test.data, test.targets)
print(
    f"test accuracy {acc:.4f} (card says {card['test_accuracy']}); "
    f"trained with: {card['recipe']}"
)
assert acc >= 0.98, "the shipped classifier must reach 98% on the embedded test split"

# %% [markdown]
# The reference set $R$ and the pool $P$ that our "generators" draw from are two disjoint,
# class-balanced halves of the embedded training split (2,000 digits each). Both come from
# the split the classifier was trained on, so neither side is favoured.

# %%
train = data.load_mnist("train")
half_r, half_p = [], []
for c in range(10):
    idx = torch.nonzero(train.targets == c).flatten()
    idx = idx[torch.randperm(len(idx), generator=g)]
    half_r.append(idx[:200])
    half_p.append(idx[200:])
half_r, half_p = torch.cat(half_r), torch.cat(half_p)
half_r, half_p = (
    half_r[torch.randperm(2000, generator=g)],
    half_p[torch.randperm(2000, generator=g)],
)
pool, pool_y = train.data[half_p], train.targets[half_p]  # (2000, 1, 28, 28), (2000,)
real = train.data[half_r[:n]]  # (n, 1, 28, 28): the reference set R


def add_noise(x, sigma):
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)


def blur(x, sigma):
    return gaussian_blur(x, kernel_size=2 * math.ceil(3 * sigma) + 1, sigma=sigma)


def keep_classes(k):
    """Mode collapse: n images drawn only from the digits 0..k-1."""
    chosen = pool[pool_y < k]
    return chosen[torch.randint(len(chosen), (n,), generator=g)]


def duplicate(m):
    """Low diversity: m distinct images, each repeated n/m times."""
    return pool[:m].repeat(n // m + 1, 1, 1, 1)[:n]


generators = {
    "real (other half)": pool[:n],
    "noise 0.1": add_noise(pool[:n], 0.1),
    "noise 0.2": add_noise(pool[:n], 0.2),
    "noise 0.4": add_noise(pool[:n], 0.4),
    "blur 0.7": blur(pool[:n], 0.7),
    "blur 1.0": blur(pool[:n], 1.0),
    "blur 1.5": blur(pool[:n], 1.5),
    "blend of two": 0.5 * (pool[:n] + pool.flip(0)[:n]),
    "5 classes": keep_classes(5),
    "2 classes": keep_classes(2),
    "10 images repeated": duplicate(10),
    "copies of R": real.clone(),
}
fig, axes = plt.subplots(2, 6, figsize=(15, 5.5))
for ax, (name, imgs) in zip(axes.flat, generators.items()):
    viz.show_images(imgs[:16], nrow=4, title=name, ax=ax)
plt.tight_layout();

# %% [markdown]
# ## 9.2 The Fréchet distance, and how to compute it
#
# FID fits a Gaussian to each cloud of features, $\mathcal N(\mu_1, \Sigma_1)$ for the real
# images and $\mathcal N(\mu_2, \Sigma_2)$ for the generated ones, and reports the squared
# Fréchet (Wasserstein-2) distance between them (Dowson & Landau, 1982):
#
# $$
# \mathrm{FID} = \lVert \mu_1 - \mu_2 \rVert^2 + \operatorname{Tr}\Sigma_1 + \operatorname{Tr}\Sigma_2
#   - 2 \operatorname{Tr}\big(\Sigma_1^{1/2}\,\Sigma_2\,\Sigma_1^{1/2}\big)^{1/2}.
# $$
#
# Two closed forms check any implementation. Equal Gaussians give
# $\operatorname{Tr}(\Sigma^{1/2}\Sigma\Sigma^{1/2})^{1/2} = \operatorname{Tr}\Sigma$, so FID $= 0$.
# Isotropic ones, $\Sigma_k = \sigma_k^2 I_d$, give
# $\lVert\Delta\mu\rVert^2 + d\sigma_1^2 + d\sigma_2^2 - 2d\sigma_1\sigma_2 = \lVert\Delta\mu\rVert^2 + d(\sigma_1-\sigma_2)^2$.
#
# **The trace term without a general matrix square root.** Published code takes
# `scipy.linalg.sqrtm(S1 @ S2)` (pytorch-fid) or the complex eigenvalues of `S1 @ S2`
# (torchmetrics). Both treat $\Sigma_1\Sigma_2$ as a general non-symmetric matrix: slow,
# and rounding can push its eigenvalues off the real axis. Yet we need only a sum of
# eigenvalues, and a symmetric matrix has them. Factor $\Sigma_1 = BB^\top$ with any $B$.
# Then
#
# $$
# \Sigma_1\Sigma_2 = B\,(B^\top\Sigma_2) \quad\text{and}\quad (B^\top\Sigma_2)\,B = B^\top\Sigma_2 B =: M .
# $$
#
# $XY$ and $YX$ have the same non-zero eigenvalues. So $\Sigma_1\Sigma_2$ has the eigenvalues
# of $M$, which is **symmetric positive semi-definite**: they are real and $\ge 0$. With
# $B = \Sigma_1^{1/2}$, $M$ is exactly the matrix inside the trace above. Hence
#
# $$
# \operatorname{Tr}\big(\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2}\big)^{1/2} = \operatorname{Tr}\sqrt{\Sigma_1\Sigma_2}
#  = \sum_i \sqrt{\lambda_i(B^\top\Sigma_2 B)} .
# $$
#
# `metrics.trace_sqrt_product` takes $B = L$ from the Cholesky factorisation
# $\Sigma_1 = LL^\top$. For a square invertible $L$, $L^{-1}(\Sigma_1\Sigma_2)L = L^\top\Sigma_2L = M$:
# the two matrices are similar. Cholesky fails when $\Sigma_1$ is singular, as it always is
# with fewer samples than features. Any $L$ with $LL^\top = \Sigma_1$ will do, and the
# eigendecomposition $\Sigma_1 = V\operatorname{diag}(w)V^\top$ (`eigh`) gives one:
# $L = V_k\operatorname{diag}(w_k)^{1/2}$ over the eigenvalues above rounding level,
# $w_k > d\,\varepsilon\,w_{\max}$. The eigenvalues that are zero come out of `eigh` as noise of
# either sign; kept, each would add about $\sqrt{\varepsilon w_{\max}}$ to the sum of square roots.
# (The library gets its factor faster, from Cholesky with pivoting, LAPACK `dpstrf`, which
# stops at the numerical rank.) Last comes one symmetric eigenvalue problem, `eigvalsh`, in
# float64. The eigenvalues of $M$ are $\ge 0$ in exact arithmetic, so those that rounding
# makes slightly negative are clipped at 0. $M$ has zero eigenvalues of its own when
# $\Sigma_2$ has the lower rank; the trace is symmetric in the two, so the library then
# factors $\Sigma_2$ instead.
#
# **An independent reference.** Write the centred features as $A_k = (X_k - \bar x_k)/\sqrt{n_k-1}$,
# so $\Sigma_k = A_k^\top A_k$. The non-zero eigenvalues of
# $A_1^\top A_1 A_2^\top A_2$ are those of $(A_1A_2^\top)(A_1A_2^\top)^\top$. These are the
# squared singular values of $A_1A_2^\top$, so
# $\operatorname{Tr}\sqrt{\Sigma_1\Sigma_2} = \lVert A_1A_2^\top\rVert_*$, the nuclear norm.
# `metrics.fid_nuclear` computes FID this way from the features. It never forms a product
# of covariances, so we use it as the reference.

# %%
d = 6
mu1, mu2 = torch.randn(d, generator=g).numpy(), torch.randn(d, generator=g).numpy()
s1, s2 = 0.5, 1.7
iso = metrics.frechet_distance(mu1, s1**2 * np.eye(d), mu2, s2**2 * np.eye(d))
assert abs(iso - (((mu1 - mu2) ** 2).sum() + d * (s1 - s2) ** 2)) < 1e-10, (
    "isotropic closed form"
)
a = torch.randn(d, d, generator=g).double().numpy()
sigma = a @ a.T
assert abs(metrics.frechet_distance(mu1, sigma, mu1, sigma)) < 1e-10, (
    "equal Gaussians give 0"
)

feat = {
    name: features.extract(clf, imgs).double().numpy()
    for name, imgs in generators.items()
}
f_real = features.extract(clf, real).double().numpy()  # (n, 128)


def stats(x, y):
    return x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)


def fid_sqrtm(x, y):
    """pytorch-fid: scipy's general square root of S1 S2; (value, largest |imag|)."""
    out = metrics.frechet_distance_sqrtm(*stats(x, y))
    return out.value, out.imag


ours = metrics.fid(f_real, feat["noise 0.2"])
ref = metrics.fid_nuclear(f_real, feat["noise 0.2"])
via_sqrtm, _ = fid_sqrtm(f_real, feat["noise 0.2"])
print(
    f"full rank (n={n} > d=128): ours {ours:.8f}  nuclear-norm reference {ref:.8f}  "
    f"sqrtm {via_sqrtm:.8f}"
)
assert abs(ours - ref) < 1e-8 * ref and abs(via_sqrtm - ref) < 1e-6 * ref

# %% [markdown]
# Now the case that breaks published code: **fewer samples than features**. With 60 images
# and 128 features, each covariance has rank at most 59, and $\Sigma_1\Sigma_2$ has at least
# 69 zero eigenvalues. In floating point they come out as tiny numbers of either sign, or as
# complex pairs. The general methods then take square roots of negative or complex numbers.

# %%
x60, y60 = f_real[:60], feat["noise 0.2"][:60]
c1, c2 = np.cov(x60, rowvar=False), np.cov(y60, rowvar=False)
ev = np.linalg.eigvals(c1 @ c2)
print(
    f"eigvals(S1 S2): min real part {ev.real.min():.2e}, "
    f"max |imag| {np.abs(ev.imag).max():.2e}"
)
with warnings.catch_warnings():
    # n <= d: we know the covariances are rank-deficient
    warnings.simplefilter("ignore")
    ours60 = metrics.fid(x60, y60)
ref60 = metrics.fid_nuclear(x60, y60)
sq60, imag60 = fid_sqrtm(x60, y60)
print(
    f"n=60: ours {ours60:.10f}  reference {ref60:.10f}  "
    f"sqrtm {sq60:.10f} (|imag| up to {imag60:.1e})"
)
assert (ev.real < 0).any() or (ev.imag != 0).any(), "rounding leaves the real axis"
assert math.isfinite(ours60) and abs(ours60 - ref60) < 1e-9 * ref60
assert abs(ours60 - ref60) < abs(sq60 - ref60) or abs(sq60 - ref60) < 1e-12 * ref60

# %% [markdown]
# On this 128-d example every method still lands near the answer. The differences grow with
# the dimension. The cell below times the three methods on synthetic ReLU features of a larger
# dimension, once with more samples than features and once with half as many, and measures each
# one's error against the nuclear-norm reference. `benchmarks/bench_fid.py` does the same on
# 2048-d Inception-sized features.

# %%
d_big = utils.fast_or_full(160, 1024)
rng_b = np.random.default_rng(1)
spectrum = 1 / np.sqrt(1 + np.arange(d_big))  # decaying
mix = rng_b.standard_normal((d_big, d_big)) * spectrum
methods = {
    "course_lib": metrics.frechet_distance,
    "eigvals": lambda *a: metrics.frechet_distance_eigvals(*a).value,
    "sqrtm": lambda *a: metrics.frechet_distance_sqrtm(*a).value,
}
bench = {}
for n_b in (2 * d_big, d_big // 2):  # full rank, then rank-deficient
    xb = np.maximum(rng_b.standard_normal((n_b, d_big)) @ mix, 0)  # (n_b, d_big)
    yb = np.maximum(rng_b.standard_normal((n_b, d_big)) @ mix + 0.05, 0)
    ref_b, st = metrics.fid_nuclear(xb, yb), stats(xb, yb)
    for name, fn in methods.items():
        times = []
        for _ in range(1 if name == "sqrtm" else 3):  # best of 3; sqrtm is slow, once
            t0 = time.perf_counter()
            value = fn(*st)
            times.append(time.perf_counter() - t0)
        bench[n_b, name] = (min(times), abs(value - ref_b) / ref_b)
    t_ours = bench[n_b, "course_lib"][0]
    print(
        f"n={n_b}, d={d_big}: "
        + "; ".join(
            f"{name} {bench[n_b, name][0] / t_ours:.1f}x the time, "
            f"rel. error {bench[n_b, name][1]:.1e}"
            for name in methods
        )
    )
n_def = d_big // 2
assert all(bench[key][1] < 1e-12 for key in bench if key[1] == "course_lib"), (
    "ours: float64-exact"
)
assert min(bench[n_def, "eigvals"][1], bench[n_def, "sqrtm"][1]) > 1e3 * max(
    bench[n_def, "course_lib"][1], 1e-16
)
assert bench[n_def, "sqrtm"][0] > bench[n_def, "course_lib"][0], (
    "the general square root is slower"
)

# %% [markdown]
# The line above prints each method's time as a multiple of ours, and its relative error. On
# rank-deficient covariances the general methods lose about half of float64's digits, while
# ours stays exact to rounding.
#
# ### Exercise 1: the trace of the matrix square root
#
# Write `trace_sqrt_product(sigma1, sigma2)`, returning $\operatorname{Tr}\sqrt{\Sigma_1\Sigma_2}$
# for two covariance matrices (NumPy arrays), by the route above. Factor $\Sigma_1 = LL^\top$
# with `np.linalg.cholesky`. It raises `np.linalg.LinAlgError` when $\Sigma_1$ is singular; then
# take `w, v = np.linalg.eigh(sigma1)`, keep the eigenvalues above $d\,\varepsilon\,w_{\max}$
# ($\varepsilon$ = `np.finfo(float).eps`) and build $L$ = `v[:, keep] * np.sqrt(w[keep])`. Return
# the sum of the square roots of the eigenvalues of $L^\top\Sigma_2L$ (`np.linalg.eigvalsh`),
# with the slightly negative ones that rounding leaves clipped at 0. The threshold on $w$
# matters: eigenvalues that are zero in exact arithmetic come out as rounding noise of
# about $\varepsilon w_{\max}$. Through $L$, each adds about $10^{-8}\sqrt{w_{\max}}$ to the sum, and with
# dozens of them the sum loses half its digits. The check grades the answer on 128 features
# estimated from 60 samples to a relative $10^{-10}$. `sqrtm(S1 @ S2)` and `eigvals(S1 @ S2)`
# fail it, and so does a factor that clips the noise of $w$ at 0 instead of dropping it.

# %% nbgrader={"grade": false, "grade_id": "ch09-ex1", "locked": false, "schema_version": 3, "solution": true, "task": false}
import numpy as np


def trace_sqrt_product(sigma1, sigma2):
    """Tr sqrt(sigma1 @ sigma2) for covariance matrices (d, d)."""
    ### BEGIN SOLUTION
    d, eps = len(sigma1), np.finfo(float).eps
    try:
        factor = np.linalg.cholesky(sigma1)  # sigma1 = L L^T
    except np.linalg.LinAlgError:  # singular sigma1: fewer samples than features
        w, v = np.linalg.eigh(sigma1)
        keep = w > d * eps * w.max()  # the rest: rounding noise of zero eigenvalues
        factor = v[:, keep] * np.sqrt(w[keep])  # (d, rank): sigma1 = L L^T
    lam = np.linalg.eigvalsh(factor.T @ sigma2 @ factor)  # real, >= 0 up to rounding
    return float(np.sqrt(np.clip(lam, 0, None)).sum())  # negative ones are rounding: 0
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch09-ex1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from course_lib.checks.ch09 import check_trace_sqrt_product

check_trace_sqrt_product(trace_sqrt_product)

# %% [markdown]
# ## 9.3 What each score sees: the corruption table
#
# For every "generator" we compute FID, KID, IS, precision, recall, density and coverage
# against the reference set $R$, all with $n$ images per side and the same features (the
# last four on features projected onto the unit sphere; section 9.6 shows why). The first row, a second
# sample of real digits, gives the **floor**: the score a perfect generator would get at this
# $n$. FID between two real samples is not 0, and a model should not be expected to beat it.

# %%
probs = {
    name: features.probabilities(clf, imgs).double().numpy()
    for name, imgs in generators.items()
}
table = {}
for name in generators:
    table[name] = {
        "FID": metrics.fid(f_real, feat[name]),
        "KID": metrics.kid(
            f_real, feat[name], subsets=kid_subsets, subset_size=min(n, 1000)
        )[0],
        "IS": metrics.inception_score(probs[name], splits=5)[0],
        **dict(
            zip(
                ("precision", "recall"),
                metrics.precision_recall(f_real, feat[name], normalize=True),
            )
        ),
        **metrics.density_coverage(f_real, feat[name], normalize=True)._asdict(),
    }
print(f"{'generator':<20}" + "".join(f"{c:>10}" for c in table["real (other half)"]))
for name, row in table.items():
    print(f"{name:<20}" + "".join(f"{v:10.3f}" for v in row.values()))

# %% [markdown]
# What the table shows, and what the cell below checks:
#
# * **FID grows with every defect**: more noise or more blur gives a higher FID, and every
#   corrupted set scores above the real-vs-real floor.
# * **Memorisation beats the floor.** Copying the reference set gives FID exactly 0, which
#   is *better than real data*. A score below the real-vs-real floor is a red flag, not a
#   triumph. No sample-based score here penalises copying (section 9.8).
# * **Mode collapse** (2 classes, or 10 images repeated) gives a large FID and KID. IS drops
#   to about the number of classes left.

# %%
fid_ = {name: row["FID"] for name, row in table.items()}
floor = fid_["real (other half)"]
assert fid_["noise 0.1"] < fid_["noise 0.2"] < fid_["noise 0.4"], (
    "FID must grow with noise"
)
assert fid_["blur 0.7"] < fid_["blur 1.0"] < fid_["blur 1.5"], "FID must grow with blur"
assert all(
    v > floor for k, v in fid_.items() if k not in ("real (other half)", "copies of R")
)
assert fid_["copies of R"] < floor and abs(fid_["copies of R"]) < 1e-8, (
    "memorisation scores 0, below the floor"
)
assert fid_["2 classes"] > 10 * floor and fid_["10 images repeated"] > 10 * floor

fig, ax = plt.subplots(figsize=(9, 3.5))
ax.barh(
    list(fid_),
    list(fid_.values()),
    color=["tab:green"] + ["tab:blue"] * (len(fid_) - 2) + ["tab:red"],
)
ax.axvline(floor, color="k", ls="--", label="real-vs-real floor")
ax.set_xscale("symlog", linthresh=1)
ax.set_xlabel(f"FID (n = {n}, MNIST-classifier features)")
ax.invert_yaxis()
ax.legend();
# %% [markdown]
# ## 9.4 FID is biased by the sample size; KID is not
#
# FID plugs *estimated* means and covariances into a non-linear formula. Noise in
# $\hat\Sigma$ does not average out: the estimate $\widehat{\mathrm{FID}}_n$ exceeds the true
# distance by a term that shrinks roughly like $c/n$, and $c$ depends on the generator.
# Two models compared at different $n$, or even at the same $n$, can swap ranks.
#
# KID {cite}`binkowski2018kid` is the squared maximum mean discrepancy with the kernel
# $k(x, y) = (x^\top y/d + 1)^3$. Its estimate is an average over pairs of *distinct* samples:
#
# $$
# \widehat{\mathrm{MMD}}^2_u = \frac{1}{m(m-1)}\sum_{i\ne j}k(x_i,x_j) + \frac{1}{n(n-1)}\sum_{i\ne j}k(y_i,y_j)
#  - \frac{2}{mn}\sum_{i,j}k(x_i,y_j).
# $$
#
# Every term is a mean of $k$ over independent pairs, so its expectation is exactly
# $\mathbb E\,k(x,x') + \mathbb E\,k(y,y') - 2\,\mathbb E\,k(x,y) = \mathrm{MMD}^2$, at every
# $n$. The estimate is **unbiased**. It can even be negative when the two distributions are
# equal. We measure both scores on repeated draws of real-vs-real and real-vs-noisy samples.

# %%
f_pool_r = features.extract(clf, train.data[half_r]).double().numpy()  # (2000, 128)
f_pool_p = features.extract(clf, pool).double().numpy()
f_pool_noisy = features.extract(clf, add_noise(pool, 0.2)).double().numpy()
sizes = utils.fast_or_full([100, 200, 500, 1000], [50, 100, 200, 500, 1000, 2000])
reps = utils.fast_or_full(8, 20)
rng = np.random.default_rng(0)
bias = {key: {"fid": [], "kid": []} for key in ("real", "noise 0.2")}
with warnings.catch_warnings():
    # the smallest n are <= d = 128: rank-deficient on purpose
    warnings.simplefilter("ignore")
    for m in sizes:
        runs = {key: ([], []) for key in bias}
        for _ in range(reps):
            ia, ib = (
                rng.choice(2000, m, replace=False),
                rng.choice(2000, m, replace=False),
            )
            for key, other in (("real", f_pool_p), ("noise 0.2", f_pool_noisy)):
                runs[key][0].append(metrics.fid(f_pool_r[ia], other[ib]))
                runs[key][1].append(metrics.mmd2_unbiased(f_pool_r[ia], other[ib]))
        for key, (fids, kids) in runs.items():
            bias[key]["fid"].append((np.mean(fids), np.std(fids) / math.sqrt(reps)))
            bias[key]["kid"].append((np.mean(kids), np.std(kids) / math.sqrt(reps)))

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for key, style in (("real", "o-"), ("noise 0.2", "s-")):
    for ax, score in zip(axes, ("fid", "kid")):
        mean, se = np.array(bias[key][score]).T
        ax.errorbar(sizes, mean, yerr=2 * se, fmt=style, label=f"R vs {key}", capsize=3)
for ax, title in zip(axes, ("FID: falls with n", "KID: flat in n (unbiased)")):
    ax.set_xscale("log")
    ax.set_xlabel("samples per set n")
    ax.set_title(title)
    ax.legend()
axes[1].axhline(0, color="k", lw=0.5)
for key in bias:
    print(
        key,
        "FID:",
        [f"{v:.1f}" for v, _ in bias[key]["fid"]],
        "KID:",
        [f"{v:.2f}±{se:.2f}" for v, se in bias[key]["kid"]],
    )

# %% [markdown]
# Checks of what the plot shows:
#
# * real-vs-real FID falls steadily with $n$, by more than a factor of 5 over the range;
# * **ranks swap**: a sample of *real* digits scored at the smallest $n$ gets a worse FID than
#   the noisy generator scored at the largest $n$;
# * KID at every $n$ agrees with KID at the largest $n$ within 4 standard errors, for both
#   pairs. Small $n$ makes KID noisy, not biased. For real vs real it ends within 5% of the
#   noisy generator's KID, i.e. close to 0. (Not exactly 0: our two fixed pools of 2,000
#   digits differ a little, and all the draws come from them);
# * for the noisy generator, KID stays put while FID moves a lot.
#
# The rule that follows: report FID only at a fixed, stated $n$ (10,000 or 50,000 in papers),
# and always next to the real-vs-real floor at that $n$. Use KID when you must compare
# across sample sizes or with few samples.

# %%
fid_real = [v for v, _ in bias["real"]["fid"]]
fid_noisy = [v for v, _ in bias["noise 0.2"]["fid"]]
assert all(a > b for a, b in zip(fid_real, fid_real[1:])), (
    "real-vs-real FID must fall with n"
)
assert fid_real[0] > 5 * fid_real[-1]
assert fid_real[0] > fid_noisy[-1], (
    "a real sample at small n looks worse than noise at large n"
)
for (
    key
) in bias:  # KID at every n agrees with KID at the largest n, within 4 standard errors
    (last, se_last) = bias[key]["kid"][-1]
    assert all(
        abs(v - last) < 4 * math.hypot(se, se_last) for v, se in bias[key]["kid"][:-1]
    ), key
assert abs(bias["real"]["kid"][-1][0]) < 0.05 * bias["noise 0.2"]["kid"][-1][0], (
    "real vs real: KID near 0"
)
kid_noisy = [v for v, _ in bias["noise 0.2"]["kid"]]
kid_change = abs(kid_noisy[0] - kid_noisy[-1]) / kid_noisy[-1]
fid_change = abs(fid_noisy[0] - fid_noisy[-1]) / fid_noisy[-1]
print(
    f"noisy generator, smallest vs largest n: FID changes {fid_change:.0%}, "
    f"KID {kid_change:.0%}"
)
assert kid_change < 0.25 < fid_change

# %% [markdown]
# ### FID$_\infty$: extrapolating the bias away
#
# The bias of $\widehat{\mathrm{FID}}_N$ is, to first order, linear in $1/N$
# {cite}`chong2020fidinf`: $\mathrm{FID}_N \approx \mathrm{FID}_\infty + c/N$. Chong and Forsyth
# fit the real statistics once on the whole real set, compute FID on $N$ fakes for several $N$,
# fit a line in $1/N$ and read it at $1/N = 0$. `metrics.fid_infinity` does this (by default
# at 15 sizes from $n/10$ to $n$, the paper's 5,000 to 50,000). It removes the bias from the
# generated side only: the real side keeps its own, so the real set must be large. We check
# the line on our pools: fitted on $N \le 1000$ only, it must predict the measured FID at
# $N = 2000$, and the extrapolated value must lie below every $\mathrm{FID}_N$.

# %%
fid_sizes = np.linspace(250, 2000, 8).astype(int)
inf = {
    key: metrics.fid_infinity(f_pool_r, other, sizes=fid_sizes)
    for key, other in (("real", f_pool_p), ("noise 0.2", f_pool_noisy))
}
fig, ax = plt.subplots(figsize=(5.5, 3.8))
grid_inv = np.linspace(0, 1 / fid_sizes[0], 50)
for key, res in inf.items():
    ax.plot(1 / res.sizes, res.fids, "o", label=f"R vs {key}")
    ax.plot(
        grid_inv,
        res.fid_inf + res.slope * grid_inv,
        "--",
        color=ax.lines[-1].get_color(),
    )
    print(
        f"R vs {key}: FID_N from {res.fids[0]:.2f} (N={res.sizes[0]}) "
        f"to {res.fids[-1]:.2f} "
        f"(N={res.sizes[-1]}); FID_inf = {res.fid_inf:.2f}, slope c = {res.slope:.0f}"
    )
ax.set_xlabel("1 / N")
ax.set_ylabel("FID")
ax.set_yscale("log")
ax.legend()
small = fid_sizes <= 1000
slope_s, icpt_s = np.polyfit(1 / fid_sizes[small], inf["noise 0.2"].fids[small], 1)
predicted = icpt_s + slope_s / fid_sizes[-1]
print(
    f"noise 0.2, line fitted on N <= 1000 predicts FID_2000 = {predicted:.2f}; "
    f"measured {inf['noise 0.2'].fids[-1]:.2f}"
)
assert abs(predicted - inf["noise 0.2"].fids[-1]) < 0.05 * inf["noise 0.2"].fids[-1], (
    "FID_N is linear in 1/N"
)
assert all(res.fid_inf < res.fids.min() for res in inf.values()), (
    "the bias is positive at every N"
)
assert inf["real"].fid_inf < 0.6 * inf["real"].fids[-1], (
    "most of real-vs-real FID at N = 2000 is bias"
)
# %% [markdown]
# ### Exercise 2: the unbiased MMD² of KID
#
# Write `mmd2_unbiased(x, y)` for features `x` of shape (m, d) and `y` of shape (n, d)
# (NumPy arrays), using the kernel $k(a, b) = (a^\top b / d + 1)^3$ and the formula above.
# Leave out the diagonal terms $k(x_i, x_i)$.

# %% nbgrader={"grade": false, "grade_id": "ch09-ex2", "locked": false, "schema_version": 3, "solution": true, "task": false}
import numpy as np


def mmd2_unbiased(x, y):
    """Unbiased MMD^2 of samples x (m, d) and y (n, d), cubic polynomial kernel."""
    ### BEGIN SOLUTION
    m, n, d = len(x), len(y), x.shape[1]
    kxx = (x @ x.T / d + 1) ** 3  # (m, m)
    kyy = (y @ y.T / d + 1) ** 3  # (n, n)
    kxy = (x @ y.T / d + 1) ** 3  # (m, n)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2 * kxy.mean()
    )
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch09-ex2-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from course_lib.checks.ch09 import check_mmd2_unbiased

check_mmd2_unbiased(mmd2_unbiased)

# %% [markdown]
# ## 9.5 The Inception Score
#
# IS {cite}`salimans2016improved` looks only at the generated images, through a classifier's
# predictions $p(y\mid x)$. A good sample gets a confident prediction, and a good *set* uses
# every class, so that the marginal $p(y) = \mathbb E_x\,p(y\mid x)$ is flat:
#
# $$
# \mathrm{IS} = \exp\Big(\mathbb E_x\,\mathrm{KL}\big(p(y\mid x)\,\|\,p(y)\big)\Big)
#  = \exp\big(H[p(y)] - \mathbb E_x H[p(y\mid x)]\big) \in [1, K].
# $$
#
# The second form follows from writing out the KL. IS reaches $K$ for confident predictions
# spread evenly over $K$ classes. If only $k$ classes appear, each confidently and equally
# often, then $H[p(y)] = \log k$ and IS $= k$. That gives us a closed form to check against
# the "5 classes" and "2 classes" rows. IS never looks at real data. It cannot see
# memorisation, and it cannot see a generator that draws one perfect digit per class.

# %%
is_ = {name: row["IS"] for name, row in table.items()}
print({k: round(v, 2) for k, v in is_.items()})
assert 9 < is_["real (other half)"] < 10, (
    "real digits: confident and balanced, so close to K = 10"
)
assert abs(is_["5 classes"] - 5) < 0.5 and abs(is_["2 classes"] - 2) < 0.2, (
    "k classes give IS close to k"
)
assert abs(is_["copies of R"] - is_["real (other half)"]) < 0.2, (
    "IS cannot see memorisation"
)
assert is_["noise 0.4"] < is_["noise 0.1"], (
    "unclear digits make the classifier less confident"
)

# %% [markdown]
# ### Exercise 3: the Inception Score
#
# Write `inception_score(probs)` for class probabilities `probs` of shape (N, K) (rows sum
# to one), computed on all N rows at once (one split). Make sure a probability of exactly 0
# contributes $0 \log 0 = 0$.

# %% nbgrader={"grade": false, "grade_id": "ch09-ex3", "locked": false, "schema_version": 3, "solution": true, "task": false}
import numpy as np


def inception_score(probs):
    """exp(E_x KL(p(y|x) || p(y))) for probs (N, K)."""
    ### BEGIN SOLUTION
    from scipy.special import xlogy

    p_y = probs.mean(axis=0, keepdims=True)  # (1, K): the marginal over images
    log_ratio = xlogy(probs, probs) - xlogy(probs, np.broadcast_to(p_y, probs.shape))
    kl = log_ratio.sum(axis=1)  # (N,)
    return float(np.exp(kl.mean()))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch09-ex3-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from course_lib.checks.ch09 import check_inception_score

check_inception_score(inception_score)

# %% [markdown]
# ## 9.6 Precision and recall: quality and diversity, separately
#
# FID and KID fold two failures into one number: samples that look wrong (low quality) and
# samples that miss part of the data (low diversity). Improved precision and recall
# {cite}`kynkaanniemi2019pr` (after {cite:t}`sajjadi2018precision`) keep them apart. Put a
# ball around each real feature $r_i$, with radius $\rho_k(r_i)$ equal to the distance to
# its $k$-th nearest real neighbour. The union of the balls estimates the support of the real
# data. Do the same for the fakes. Then
#
# $$
# \text{precision} = \frac1{n_f}\sum_j \mathbb 1\big[f_j \in \textstyle\bigcup_i B(r_i, \rho_k(r_i))\big], \qquad
# \text{recall} = \frac1{n_r}\sum_i \mathbb 1\big[r_i \in \textstyle\bigcup_j B(f_j, \rho_k(f_j))\big].
# $$
#
# Precision is the share of fakes that land where real data lives. Recall is the share of
# real data that the fakes reach.

# %%
pr = {name: (row["precision"], row["recall"]) for name, row in table.items()}
fig, ax = plt.subplots(figsize=(5.5, 5))
for name, (p, r) in pr.items():
    ax.scatter(r, p)
    ax.annotate(name, (r, p), fontsize=8, xytext=(3, 3), textcoords="offset points")
ax.set_xlabel("recall (diversity)")
ax.set_ylabel("precision (quality)")
ax.set_xlim(-0.05, 1.1)
ax.set_ylim(-0.05, 1.1)
ax.set_title(f"k = 3, n = {n}");
# %% [markdown]
# The two axes separate the two failures:
#
# * **mode collapse** ("2 classes", "10 images repeated"): every sample is a real-looking digit,
#   so precision stays high (above 0.75), but recall collapses (below 0.3);
# * **low quality with full diversity** ("blend of two": two digits overlaid): precision drops
#   below 0.5, but recall stays above 0.55, because the blends spread over the whole data.
#   The two failures sit in opposite corners, more than 0.3 apart on each axis;
# * a second real sample scores well above 0.8 on both axes but not 1: with $k = 3$ the
#   balls leave gaps, so this, not (1, 1), is the ceiling at this $n$. Heavy noise loses both.

# %%
assert pr["2 classes"][0] > 0.85 and pr["2 classes"][1] < 0.3, (
    "collapse: high precision, low recall"
)
assert pr["10 images repeated"][0] > 0.75 and pr["10 images repeated"][1] < 0.05
assert pr["blend of two"][0] < 0.5 and pr["blend of two"][1] > 0.55, (
    "blends: low precision, fair recall"
)
assert (
    pr["2 classes"][0] > pr["blend of two"][0] + 0.3
    and pr["blend of two"][1] > pr["2 classes"][1] + 0.3
)
assert min(pr["real (other half)"]) > 0.8
assert (
    pr["noise 0.4"][0] < pr["noise 0.1"][0] and pr["noise 0.4"][1] < pr["noise 0.1"][1]
)

# %% [markdown]
# **A trap: the feature norm.** `precision_recall` computes the paper's definition on raw
# features by default. The table above passed `normalize=True`, which projects the features
# onto the unit sphere before it builds the balls. This matters for a classifier's features.
# Their *length* tracks the network's confidence, so junk images map close to the origin. A
# few unusual real digits also sit there, and they carry huge $k$-NN balls. On raw features,
# pure uniform noise scores almost perfect precision:

# %%
f_uniform = (
    features.extract(clf, torch.rand(n, 1, 28, 28, generator=g)).double().numpy()
)
raw = metrics.precision_recall(f_real, f_uniform)  # the paper's definition
unit = metrics.precision_recall(f_real, f_uniform, normalize=True)
print(f"uniform noise: raw-feature precision {raw[0]:.3f}, normalised {unit[0]:.3f}")
print(
    f"mean feature norm: real {np.linalg.norm(f_real, axis=1).mean():.1f}, "
    f"noise {np.linalg.norm(f_uniform, axis=1).mean():.1f}"
)
assert raw[0] > 0.9 and unit[0] < 0.1, (
    "raw features call noise realistic; normalised ones do not"
)

# %% [markdown]
# ## 9.7 Density and coverage: robust to outliers
#
# Those huge balls are the weakness of precision and recall: **one outlier** with a large
# $k$-NN ball can swallow many samples. {cite:t}`naeem2020density` build balls around the
# *real* samples only, $B_i = B(X_i, \mathrm{NND}_k(X_i))$ for real $X_1..X_N$ and fakes
# $Y_1..Y_M$, and count:
#
# $$
# \text{density} = \frac{1}{kM}\sum_{j=1}^M\sum_{i=1}^N \mathbb 1[Y_j \in B_i], \qquad
# \text{coverage} = \frac1N\sum_{i=1}^N \mathbb 1\big[\exists j:\ Y_j \in B_i\big].
# $$
#
# Density counts *how many* real balls hold each fake, so one outlier's ball adds at most
# $1/k$ to it, while precision counts it fully. Coverage never builds a ball around a fake, so a
# fake outlier cannot inflate it, while recall can. For a perfect generator the paper shows
# $\mathbb E[\text{density}] = 1$ and $\mathbb E[\text{coverage}] = 1 - \prod_{i=1}^k \frac{N-i}{M+N-i}
# \approx 1 - 2^{-k}$ for $M = N$ (`metrics.coverage_expectation`); its default is $k = 5$.
# The cell below reads the table's columns and then plants one outlier, as the paper does:
# 64-d Gaussians, fakes shifted far from the reals, then one real (or one fake) point placed so
# that its ball swallows the other set.

# %%
dc = {name: (row["density"], row["coverage"]) for name, row in table.items()}
expected_cov = metrics.coverage_expectation(n, n, 5)
print(
    f"real (other half): density {dc['real (other half)'][0]:.3f}, "
    f"coverage {dc['real (other half)'][1]:.3f} "
    f"(expected 1 and {expected_cov:.3f})"
)
assert (
    abs(dc["real (other half)"][0] - 1) < 0.1
    and abs(dc["real (other half)"][1] - expected_cov) < 0.03
)
assert dc["2 classes"][0] > 0.8 and dc["2 classes"][1] < 0.3, (
    "collapse: real-looking, low coverage"
)
assert dc["10 images repeated"][1] < 0.1 and dc["noise 0.4"][0] < 0.4

rng_o = np.random.default_rng(3)
shift = np.full(64, 2.0)  # |shift| = 16: fakes far from the reals
real_g, fake_g = (
    rng_o.standard_normal((1000, 64)),
    rng_o.standard_normal((1000, 64)) + shift,
)
outlier_rows = {
    "no outlier": (real_g, fake_g),
    "one real outlier": (np.vstack([real_g, 2 * shift]), fake_g),
    "one fake outlier": (real_g, np.vstack([fake_g, -shift])),
}
outliers = {}
for case, (r_, f_) in outlier_rows.items():
    outliers[case] = (
        *metrics.precision_recall(r_, f_, k=5),
        *metrics.density_coverage(r_, f_, k=5),
    )
    print(
        f"{case:<17} precision {outliers[case][0]:.3f} recall {outliers[case][1]:.3f} "
        f"density {outliers[case][2]:.3f} coverage {outliers[case][3]:.3f}"
    )
assert max(outliers["no outlier"]) < 0.05
assert (
    outliers["one real outlier"][0] > 0.95 and outliers["one real outlier"][2] < 0.25
), "precision fooled, density not"
assert (
    outliers["one fake outlier"][1] > 0.95 and outliers["one fake outlier"][3] < 0.05
), "recall fooled, coverage not"
raw_dc = metrics.density_coverage(f_real, f_uniform)
print(
    f"uniform noise on raw features: precision {raw[0]:.3f}, "
    f"density {raw_dc.density:.3f}, coverage {raw_dc.coverage:.3f}"
)
assert raw[0] > 0.9 and raw_dc.density < 0.75 and raw_dc.coverage < 0.1

# %% [markdown]
# The real outlier lifts precision from 0 to almost 1, and density only to at most $1/k$; the
# fake outlier does the same to recall, and coverage does not move. On raw MNIST features the
# feature-norm trap is such a case: uniform noise gets near-perfect precision, while its density
# is well below the real sample's and its coverage is near 0.
#
# ## 9.8 Memorisation: invisible to the scores above
#
# A generator that returns its training images scores perfectly: FID 0 (section 9.3),
# precision and recall 1 (each copy lies in its own ball), IS equal to real data. The direct
# test compares each generated image with its **nearest training image**, in pixels. How close
# does a *new* digit come? The held-out test split answers that: no test digit comes closer to
# the training set than the closest of them, so `metrics.memorisation_rate` flags a sample that
# does as a copy. Papers show these nearest-neighbour pairs next to their samples for this
# reason. Our "generator" here returns half near-copies of $R$ (with faint noise, so no
# distance is exactly 0) and half new digits.

# %%
# half memorised, half new
half_copies = torch.cat([add_noise(real[: n // 2], 0.02), pool[: n - n // 2]])
flat = {"train": real.flatten(1).numpy(), "test": test.data.flatten(1).numpy()}
rates = {
    name: metrics.memorisation_rate(x.flatten(1).numpy(), flat["train"], flat["test"])
    for name, x in (("half near-copies", half_copies), ("new digits (pool)", pool[:n]))
}
threshold = metrics.nearest_distances(flat["test"], flat["train"]).min()
print(
    f"closest a test digit comes to the training set: {threshold:.2f} (pixel L2); "
    "flagged as copies:",
    {k: f"{v:.1%}" for k, v in rates.items()},
)
assert rates["half near-copies"] > 0.4 and rates["new digits (pool)"] < 0.05
assert metrics.fid(f_real, features.extract(clf, half_copies).double().numpy()) < floor

# %% [markdown]
# ## 9.9 Judging a discriminator: accuracy, ROC and AUC
#
# A classifier trained to tell real from generated images is a metric too, as a two-sample
# test. It is also what a GAN's discriminator is. Its **accuracy** depends on a threshold
# on its score. The **ROC curve** plots the true-positive rate (reals called real) against
# the false-positive rate (fakes called real) over all thresholds. The **AUC**, the area
# under it, equals the probability that a random real image scores above a random fake:
# $P(s_{\text{real}} > s_{\text{fake}})$, with ties counted as 1/2. An AUC of 0.5 means the
# discriminator cannot tell the sets apart, and 1 means it always can. We train a logistic
# regression on pixels and evaluate it on held-out images.

# %%
from sklearn.linear_model import LogisticRegression

half = n // 2
roc = {}
for name in ("real (other half)", "noise 0.1", "blur 1.0", "2 classes"):
    fake = generators[name]
    x_tr = torch.cat([real[:half], fake[:half]]).flatten(1).numpy()
    y_tr = np.r_[np.ones(half), np.zeros(half)]
    disc = LogisticRegression(C=0.1, max_iter=2000).fit(x_tr, y_tr)
    scores_real = disc.decision_function(real[half:].flatten(1).numpy())  # logits
    scores_fake = disc.decision_function(fake[half:].flatten(1).numpy())
    roc[name] = metrics.discriminator_metrics(scores_real, scores_fake)
    print(f"{name:<20} accuracy {roc[name].accuracy:.3f}   AUC {roc[name].auc:.3f}")

fig, ax = plt.subplots(figsize=(4.5, 4.5))
for name, rep in roc.items():
    ax.plot(rep.fpr, rep.tpr, label=f"{name} (AUC {rep.auc:.2f})")
ax.plot([0, 1], [0, 1], "k:", lw=1)
ax.set_xlabel("false-positive rate (fakes called real)")
ax.set_ylabel("true-positive rate (reals called real)")
ax.legend(fontsize=8);
# %% [markdown]
# * Against a second real sample, the discriminator is at chance: AUC near 0.5.
# * Noise of standard deviation 0.1, the mildest defect of all by FID, is caught almost
#   perfectly. Clipping to $[0, 1]$ makes the noise raise the black background
#   on average, and a linear model on pixels sees that at once.
# * Blur, which FID punishes hard, is much harder for this linear discriminator. Each score
#   sees the differences its features or its model class can express, and no others.
# * The AUC is the Mann–Whitney probability; we check it by brute force over all pairs.

# %%
assert abs(roc["real (other half)"].auc - 0.5) < 0.1
corrupted = [k for k in fid_ if k not in ("real (other half)", "copies of R")]
assert roc["noise 0.1"].auc > 0.95 and fid_["noise 0.1"] == min(
    fid_[k] for k in corrupted
), "noise: easy for D, mild for FID"
assert (
    roc["blur 1.0"].auc < roc["noise 0.1"].auc and fid_["blur 1.0"] > fid_["noise 0.1"]
), "blur: the reverse"
rep = roc["2 classes"]
disc = LogisticRegression(C=0.1, max_iter=2000).fit(
    torch.cat([real[:half], generators["2 classes"][:half]]).flatten(1).numpy(),
    np.r_[np.ones(half), np.zeros(half)],
)
s_r = disc.decision_function(real[half:].flatten(1).numpy())
s_f = disc.decision_function(generators["2 classes"][half:].flatten(1).numpy())
mann_whitney = ((s_r[:, None] > s_f[None]) + 0.5 * (s_r[:, None] == s_f[None])).mean()
assert abs(mann_whitney - rep.auc) < 1e-12

# %% [markdown]
# ## 9.10 Mode coverage on the toy mixtures
#
# On 2-D data the modes are known, and chapter 5 (mode collapse) scores GANs the way VEEGAN and PacGAN do
# {cite}`srivastava2017veegan,lin2018pacgan`. A sample is **high quality** if it lies within
# 3 standard deviations of its nearest mode centre. A mode is **captured** if at least one
# high-quality sample has it as its nearest centre. For samples of the true mixture, the
# distance to the centre in units of $\sigma$ follows a Rayleigh law, so the high-quality share
# is $P(r \le 3\sigma) = 1 - e^{-9/2} \approx 98.9\%$. If a generator spreads each mode $s$
# times too wide, the share drops to $1 - e^{-9/(2s^2)}$. Our collapsed generator keeps 3 of the
# 8 modes and puts 1% of its samples $4\sigma$ from the other five centres: near misses are not
# high quality, so they must capture nothing (a count of nearest centres alone would say 8).

# %%
m_toy = utils.fast_or_full(20_000, 100_000)
ring, grid = (
    data.toy_mixture("ring", m_toy, seed=1),
    data.toy_mixture("grid", m_toy, seed=1),
)
cov_ring = metrics.mode_coverage(ring.samples, ring.centres, ring.std)
cov_grid = metrics.mode_coverage(grid.samples, grid.centres, grid.std)
collapsed = ring.centres[[0, 3, 5]][
    torch.randint(3, (m_toy,), generator=g)
] + ring.std * torch.randn(m_toy, 2, generator=g)
n_miss = m_toy // 100
angle = 2 * math.pi * torch.rand(n_miss, generator=g)
misses = ring.centres[[1, 2, 4, 6, 7]][
    torch.randint(5, (n_miss,), generator=g)
] + 4 * ring.std * torch.stack([angle.cos(), angle.sin()], 1)
collapsed[:n_miss] = misses  # (m_toy, 2): 3 modes and near misses of the other 5
wide = ring.centres[
    torch.randint(8, (m_toy,), generator=g)
] + 2 * ring.std * torch.randn(m_toy, 2, generator=g)
cov_collapsed = metrics.mode_coverage(collapsed, ring.centres, ring.std)
cov_wide = metrics.mode_coverage(wide, ring.centres, ring.std)
for name, cov in (
    ("ring, true", cov_ring),
    ("grid, true", cov_grid),
    ("ring, 3 modes + misses", cov_collapsed),
    ("ring, 2x too wide", cov_wide),
):
    print(f"{name:<24} modes {cov.modes:>2}   high quality {cov.high_quality:.2%}")
se = math.sqrt(0.99 * 0.01 / m_toy)
assert cov_ring.modes == 8 and cov_grid.modes == 25
assert abs(cov_ring.high_quality - (1 - math.exp(-4.5))) < 4 * se
assert abs(cov_grid.high_quality - (1 - math.exp(-4.5))) < 4 * se
assert (
    cov_collapsed.modes == 3
    and torch.cdist(collapsed, ring.centres).argmin(1).unique().numel() == 8
)
assert abs(cov_wide.high_quality - (1 - math.exp(-4.5 / 4))) < 0.01

fig, axes = plt.subplots(1, 3, figsize=(12, 4))
viz.plot_samples_2d(
    ring.samples[:2000], ring.centres, ax=axes[0], title="true ring: 8 modes"
)
viz.plot_samples_2d(
    collapsed[:2000],
    ring.centres,
    ax=axes[1],
    title=f"collapsed: {cov_collapsed.modes} modes",
)
viz.plot_samples_2d(
    wide[:2000],
    ring.centres,
    ax=axes[2],
    title=f"too wide: {cov_wide.high_quality:.0%} HQ",
);
# %% [markdown]
# ## Summary: what each score sees
#
# | score | needs real data | sees low quality | sees low diversity | sees memorisation | bias with n |
# |---|---|---|---|---|---|
# | FID | yes | yes | yes | no (copies score 0) | yes, ~c/n: compare at fixed n, or extrapolate to FID$_\infty$ |
# | KID | yes | yes | yes | no | none (unbiased) |
# | IS | no | partly (confidence) | only class balance | no | mild |
# | precision | yes | **yes** | no | no | with k, n |
# | recall | yes | no | **yes** | no | with k, n |
# | density / coverage | yes | **yes**, robust to outliers | **yes** (coverage) | no | with k, n |
# | modes / HQ | known modes | HQ | modes | no | – |
# | discriminator AUC | yes | any difference it can learn | if it can learn it | no | – |
# | nearest neighbour | training + held-out set | no | no | **yes** | – |
#
# In practice, report FID or KID at a stated $n$ with the real-vs-real floor, precision and
# recall for the trade-off between quality and diversity, and nearest-neighbour samples to
# show the model is not copying. The GAN and VAE chapters use these functions from
# `course_lib.metrics` with the classifier of this chapter.

# %%
elapsed = time.perf_counter() - t_start
print(f"chapter 9 ran in {elapsed:.1f} s (fast mode: {utils.fast_mode()})")
