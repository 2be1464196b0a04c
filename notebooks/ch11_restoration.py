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
# # Chapter 11 — Restoration and enhancement: denoising, deblurring, super-resolution, inpainting
#
# A photo taken in the dark is noisy, a shaky one is blurred, a thumbnail has lost its fine
# detail, a damaged print has holes. Restoring them is the oldest use of a model of what images
# look like: each of these problems has many answers that fit the observation, and only a
# **prior** picks a plausible one. This chapter measures the classical priors (smoothness,
# sparsity, self-similarity) against learned ones, on photos that no model here was trained on:
#
# * the inverse-problem view, $y = Ax + n$, with the four degradations of the chapter and their
#   adjoints (`course_lib.restoration`);
# * PSNR and SSIM, derived and checked against their libraries;
# * the **MMSE denoiser** and Tweedie's formula, which turns a denoiser into the gradient of a
#   log-density (chapter 14 builds diffusion models on it);
# * classical baselines through their libraries: total variation, wavelets, non-local means and
#   **BM3D**, the baseline any learned denoiser must beat;
# * learned denoisers (a denoising autoencoder, DnCNN, a small U-Net) at equal training time, and
#   the course's denoiser, trained once for 55 minutes and shipped;
# * Deep Image Prior, which needs no training data, and its early-stopping curve;
# * **plug-and-play** restoration: one denoiser deblurs, super-resolves and inpaints;
# * a generative model as the prior: completing digits in the latent space of chapter 7's VAE,
#   and where that fails.
#
# **Conventions.** Images are (B, 1, H, W) tensors in $[0, 1]$; noise levels are in the same
# units ($\sigma = 25/255$ is the classic benchmark level, written 25 in papers that use the
# 0–255 range). The test photos are scikit-image's camera, astronaut, coffee and chelsea in grey
# (`data.load_photos("test")`); every learned model trains on random patches of the 16 other
# photos (`data.load_photos("train")`).

# %%
import time

import matplotlib.pyplot as plt
import torch

from course_lib import data, denoisers, features, recipes, utils
from course_lib import restoration as R

t_start = time.perf_counter()
FAST = utils.fast_mode()
MODE = "fast" if FAST else "full"
CKPT = utils.checkpoint_dir()
utils.seed_everything(0)
SIGMA = 25 / 255


def crop(x):
    """Fast mode: a 96x96 centre crop; full mode: the photo cut to a multiple of 8."""
    h, w = x.shape[-2:]
    if FAST:
        top, left = (h - 96) // 2, (w - 96) // 2
        return x[..., top : top + 96, left : left + 96]
    return x[..., : h - h % 8, : w - w % 8]


test = {
    k: crop(v)[None] for k, v in data.load_photos("test").items()
}  # each (1, 1, H, W)
print("fast mode:", FAST)
print({k: tuple(v.shape[-2:]) for k, v in test.items()})

# %% [markdown]
# ## 11.1 Restoration is an inverse problem
#
# Each task observes $y = Ax + n$: a linear degradation $A$ of the clean image $x$ plus white
# Gaussian noise $n \sim \mathcal N(0, \sigma^2 I)$.
#
# | task | $A$ | `course_lib.restoration` |
# |---|---|---|
# | denoising | $I$ | `Identity()` |
# | deblurring | convolution with a known kernel (the image wraps around at the border) | `Blur(kernel)` |
# | $\times s$ super-resolution | the mean of each $s\times s$ block | `Downsample(s)` |
# | inpainting | keep the observed pixels, zero the others | `Mask(m)` |
#
# Only denoising has as many equations as unknowns; blur sends some frequencies to (almost)
# zero, downsampling by 4 keeps one number in 16, a mask keeps a fraction of the pixels. Many
# $x$ fit $y$ equally well, so the answer depends on what we believe images look like: the
# maximum a posteriori estimate balances the two,
#
# $$\hat x = \arg\min_x \frac{1}{2\sigma^2}\|y - Ax\|^2 + \lambda R(x),$$
#
# and the rest of the chapter is about the regulariser $R$ (or a network standing for it).
#
# Every algorithm below that solves this problem also needs the **adjoint** $A^\top$, the
# operator with $\langle Ax, y\rangle = \langle x, A^\top y\rangle$ for all $x, y$: gradient
# descent on $\|y - Ax\|^2$ steps along $A^\top(y - Ax)$. A wrong adjoint (for block averaging,
# forgetting the $1/s^2$) makes those steps wrong without any error message, so the cell checks
# the identity on random images for each operator.

# %%
g = torch.Generator().manual_seed(0)
kernel = R.gaussian_kernel(9, 1.6)
x_rand = torch.randn(2, 1, 32, 48, generator=g, dtype=torch.float64)
ops = {
    "Identity": R.Identity(),
    "Blur": R.Blur(kernel),
    "Downsample(4)": R.Downsample(4),
    "Mask(20 %)": R.Mask(R.random_mask(x_rand.shape, 0.2, g)),
}
for name, op in ops.items():
    y_rand = torch.randn(op(x_rand).shape, generator=g, dtype=torch.float64)
    lhs, rhs = (
        (op(x_rand) * y_rand).sum().item(),
        (x_rand * op.adjoint(y_rand)).sum().item(),
    )
    print(f"{name:14s} <Ax, y> = {lhs:+.10f}   <x, A^T y> = {rhs:+.10f}")
    assert abs(lhs - rhs) < 1e-9 * max(1, abs(lhs))

# %% [markdown]
# The four degradations of the chapter on a test photo (the same settings throughout: noise
# $\sigma = 25/255$; a $9\times9$ Gaussian blur of standard deviation 1.6 with noise
# $\sigma = 0.01$; area downsampling by 4; 20 % of the pixels kept):

# %%
BLUR_NOISE = 0.01
KEEP = 0.2
x0 = test["camera"]
degrade = {
    "noise": lambda x, g: R.add_noise(x, SIGMA, g),
    "blur": lambda x, g: R.add_noise(R.Blur(kernel)(x), BLUR_NOISE, g),
    "x4": lambda x, g: R.Downsample(4)(x),
    "mask": lambda x, g: mask_observe(x, g),
}
drawn = {}  # the mask of the last image degraded (11.7 hands it to the restorers)


def mask_observe(x, g):
    drawn["mask"] = R.random_mask(x.shape, KEEP, g)
    return drawn["mask"] * x


fig, axes = plt.subplots(1, 5, figsize=(12, 2.8))
for ax, (name, im) in zip(
    axes,
    [("clean", x0)]
    + [(k, f(x0, torch.Generator().manual_seed(0))) for k, f in degrade.items()],
):
    ax.imshow(im[0, 0].clamp(0, 1), cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"{name} {tuple(im.shape[-2:])}", fontsize=9)
    ax.axis("off")
fig.tight_layout()

# %% [markdown]
# ## 11.2 Measuring a restoration: PSNR and SSIM
#
# The **peak signal-to-noise ratio** compares the squared error with the largest possible
# value $L$ of a pixel ($L = 1$ here, 255 for 8-bit images):
#
# $$\mathrm{MSE}(x, \hat x) = \frac{1}{d}\sum_{i=1}^{d}(x_i - \hat x_i)^2,\qquad
# \mathrm{PSNR} = 10\log_{10}\frac{L^2}{\mathrm{MSE}} = 20\log_{10}\frac{L}{\sqrt{\mathrm{MSE}}}
# \ \text{dB}.$$
#
# It is a log-scale MSE: halving the error's standard deviation gains $20\log_{10}2 \approx 6$
# dB, and a 0.5 dB gain is an MSE 11 % lower. Two conventions matter when comparing numbers
# with papers: the range $L$ must match the data (a $[0, 1]$ image scored with $L = 255$ gains
# 48 dB for nothing), and a dataset's PSNR is the **mean over images** of each image's PSNR,
# not the PSNR of the pooled MSE. Noise alone has $\mathbb E[\mathrm{MSE}] = \sigma^2$, so a
# noisy image scores about $20\log_{10}(1/\sigma)$, which the cell checks. `R.psnr` calls
# `skimage.metrics.peak_signal_noise_ratio` per image; the cell also checks it against the
# formula.
#
# PSNR ignores structure: a slight shift of an edge costs as much as noise of the same energy.
# **SSIM** {cite}`wang2004ssim` compares local means, variances and covariance in a Gaussian
# window ($\sigma = 1.5$) and is 1 only for identical images; `R.ssim` uses the paper's
# settings, which are not scikit-image's defaults (a $7\times7$ uniform window).

# %%
noisy = R.add_noise(x0, SIGMA, torch.Generator().manual_seed(0))
mse = (noisy.clamp(0, 1) - x0).square().mean().item()
by_formula = 10 * torch.log10(torch.tensor(1 / mse)).item()
print(
    f"PSNR of the noisy photo: skimage {R.psnr(x0, noisy):.3f} dB, "
    f"formula {by_formula:.3f} dB"
)
print(
    f"predicted for unclipped noise: 20 log10(1/sigma) = "
    f"{20 * torch.log10(torch.tensor(1 / SIGMA)).item():.2f} dB"
)
print(f"SSIM of the noisy photo: {R.ssim(x0, noisy):.3f}")
assert abs(R.psnr(x0, noisy) - by_formula) < 1e-6
# clipping to [0, 1] removes noise where the photo is near black or white: a bit above
assert 0 < R.psnr(x0, noisy) - 20 * torch.log10(torch.tensor(1 / SIGMA)).item() < 1.5

# %% [markdown]
# ## 11.3 The best denoiser for squared error, and Tweedie's formula
#
# Among all functions $D$ of the noisy image, the one with the smallest expected squared error
# $\mathbb E\|D(y) - x\|^2$ is the **posterior mean** $D^*(y) = \mathbb E[x \mid y]$ (expand the
# square around it; the cross term vanishes). So a network trained with the squared error on
# pairs $(x, y)$ learns an approximation of $\mathbb E[x \mid y]$: the MMSE denoiser. It averages
# over every clean image compatible with $y$, which is why an MMSE estimate looks smoother than
# any one clean image: it maximises PSNR, not realism.
#
# For Gaussian noise the posterior mean has a remarkable form. With
# $p_\sigma(y) = \int p(x)\,\mathcal N(y; x, \sigma^2 I)\,dx$ the density of the noisy images,
# differentiating under the integral gives $\nabla_y p_\sigma(y) = \int p(x)\,\mathcal N(y; x,
# \sigma^2 I)\,\frac{x - y}{\sigma^2}\,dx$, and dividing by $p_\sigma(y)$:
#
# $$\mathbb E[x \mid y] = y + \sigma^2\,\nabla_y \log p_\sigma(y)
# \qquad \text{(Tweedie's formula {cite}`efron2011tweedie`).}$$
#
# The denoiser *is* the score of the noisy data, up to a factor: $\nabla_y\log p_\sigma(y) =
# (D^*(y) - y)/\sigma^2$. Chapter 14 turns this around and generates images from a denoiser.
#
# The cell checks both statements on a 1-D prior where everything is exact: a mixture of two
# Gaussians. `R.mixture_posterior_mean` is $\mathbb E[x\mid y]$ by Bayes' rule (each
# component's Gaussian posterior, weighted); `R.tweedie` differentiates $\log p_\sigma$ (a
# `torch.distributions` mixture) by autograd; a small MLP trained with the squared error on
# samples should land on the same curve.

# %%
w_mix, mu_mix, s_mix = (
    torch.tensor([0.3, 0.7]),
    torch.tensor([-1.0, 1.5]),
    torch.tensor([0.2, 0.5]),
)
s_noise = 0.6
noisy_density = torch.distributions.MixtureSameFamily(
    torch.distributions.Categorical(w_mix),
    torch.distributions.Normal(mu_mix, (s_mix**2 + s_noise**2).sqrt()),
)
grid = torch.linspace(-3, 4, 141)
bayes = R.mixture_posterior_mean(grid, w_mix, mu_mix, s_mix, s_noise)
tweedie = R.tweedie(grid, noisy_density.log_prob, s_noise)
print(f"max |Tweedie - Bayes| = {(tweedie - bayes).abs().max():.2e}")
assert (tweedie - bayes).abs().max() < 1e-4

gen = torch.Generator().manual_seed(0)
mlp = torch.nn.Sequential(
    torch.nn.Linear(1, 64),
    torch.nn.SiLU(),
    torch.nn.Linear(64, 64),
    torch.nn.SiLU(),
    torch.nn.Linear(64, 1),
)
opt = torch.optim.Adam(mlp.parameters(), lr=3e-3)
for _ in range(utils.fast_or_full(1500, 3000)):
    k = torch.multinomial(w_mix, 512, replacement=True, generator=gen)
    x_s = mu_mix[k] + s_mix[k] * torch.randn(512, generator=gen)
    y_s = x_s + s_noise * torch.randn(512, generator=gen)
    loss = (mlp(y_s[:, None])[:, 0] - x_s).square().mean()  # the squared error: MMSE
    opt.zero_grad()
    loss.backward()
    opt.step()
with torch.no_grad():
    learned = mlp(grid[:, None])[:, 0]
inside = (grid > -2) & (grid < 3)  # where the noisy data have their mass
gap = (learned - bayes)[inside].abs().max().item()
print(f"max |trained MLP - E[x|y]| on [-2, 3]: {gap:.3f}")
fig, ax = plt.subplots(figsize=(5.5, 3.2))
ax.plot(grid, grid, ":", color="grey", label="identity (no denoising)")
ax.plot(grid, bayes, lw=3, alpha=0.5, label="E[x | y] (Bayes)")
ax.plot(grid, tweedie, "--", label="Tweedie: y + σ² d/dy log p(y)")
ax.plot(grid, learned, label="MLP trained with squared error")
ax.set_xlabel("noisy y")
ax.set_ylabel("denoised")
ax.legend(fontsize=8)
fig.tight_layout()
assert gap < 0.15

# %% [markdown]
# The posterior mean pulls each noisy value towards the nearer mode, and more strongly where
# the two modes compete: a prior learned from data, not a fixed smoothing.
#
# ## 11.4 Classical denoisers: the baselines
#
# Each classical method encodes a prior by hand:
#
# * **total variation** {cite}`rudin1992tv` (Chambolle's algorithm): images are piecewise
#   smooth, $R(x) = \sum_i \|\nabla x_i\|$;
# * **wavelet shrinkage** (BayesShrink): images are sparse in a wavelet basis, so small
#   coefficients are noise;
# * **non-local means** {cite}`buades2005nlm`: images repeat themselves, so average pixels whose
#   surrounding patches look alike, wherever they are;
# * **BM3D** {cite}`dabov2007bm3d`: group similar patches into 3-D stacks and shrink them jointly
#   in a transform domain, twice. Twenty years on it is still the baseline a learned denoiser
#   must beat, and it is slow on a CPU (the table gives the seconds). It comes from the `bm3d`
#   package, which is free for non-commercial use only.
#
# Each is called through its library (`R.denoise_tv`, `R.denoise_wavelet`,
# `R.denoise_nl_means`, `R.denoise_bm3d`), with the noise level given, on the four test photos
# with the same noise for every method.

# %%
results = {}  # {(task, method): evaluate(...) output}: the chapter's results table


def run(task, method, restore):
    results[task, method] = r = R.evaluate(restore, test, degrade[task])
    print(
        f"{task:6s} {method:28s} PSNR {r['psnr']:6.2f} dB  "
        f"SSIM {r['ssim']:.3f}  {r['seconds']:6.1f} s"
    )
    return r


run("noise", "noisy input", lambda y: y)
for name, fn in R.CLASSICAL_DENOISERS.items():
    run("noise", name, lambda y, fn=fn: fn(y, SIGMA))
classical = {k: results["noise", k]["psnr"] for k in R.CLASSICAL_DENOISERS}
best_skimage = max(v for k, v in classical.items() if k != "bm3d")
assert classical["bm3d"] > best_skimage > results["noise", "noisy input"]["psnr"] + 5

# %% [markdown]
# BM3D leads the scikit-image denoisers by the margin printed above, at a cost of seconds per
# image. The bar for the learned denoisers of the next section is set: beat the best
# scikit-image method by a clear margin in a few minutes of training, and come near BM3D with
# more training.
#
# ## 11.5 Learned denoisers
#
# A network trained on pairs (clean patch, noisy patch) with the squared error approximates the
# MMSE denoiser of section 11.3 for the distribution of its training patches. Three designs,
# each trained for the same time on the 16 training photos (`denoisers.train_denoiser`):
#
# * a **denoising autoencoder** {cite}`vincent2008denoising` (`denoisers.DAE`): strided
#   convolutions down to a 16-channel map at a quarter of the size, and back up. Everything must
#   pass through the bottleneck, fine texture included;
# * **DnCNN** {cite}`zhang2017dncnn` (`denoisers.DnCNN`, here 12 layers of 48 channels so that
#   it gets a fair number of steps on a CPU): a plain stack of convolutions that predicts the
#   *noise*, $D(y) = y - f(y)$. Residual learning is the key idea: the noise is simpler than the
#   image, and the identity is free;
# * the course's recipe (`denoisers.Denoiser`, a small DRUNet {cite}`zhang2021plug`): a U-Net
#   {cite}`ronneberger2015unet` of residual blocks, also residual, which also takes a map of the
#   noise level as input (so one network can serve every $\sigma$, which section 11.7 needs).
#
# Each trains on fresh random 64×64 patches with random flips and quarter turns, with Adam, a
# short warm-up and a cosine decay of the learning rate (`recipes.DENOISER_CONFIG`).

# %%
EQUAL = 150.0  # seconds of training of each learned restorer (fast mode: a few steps)
BUDGET = dict(steps=8) if FAST else dict(seconds=EQUAL)
TRAINED = "8 steps" if FAST else f"{EQUAL:.0f} s"
labels = {"dae": "DAE", "dncnn": "DnCNN-12 (48 ch.)", "recipe": "U-Net (the recipe)"}
learned = {}
for key, cfg in denoisers.CHAPTER_RUNS.items():  # changes to recipes.DENOISER_CONFIG
    name = labels[key]
    learned[name] = recipes.train_denoiser(
        **BUDGET,
        config=cfg,
        checkpoint=CKPT / f"ch11_{key}_{MODE}.pt",
        shipped=f"ch11_{key}",
        desc=name,
    )
    r = run("noise", f"{name}, {TRAINED}", lambda y, m=learned[name]: m(y, SIGMA))
    print(f"   ({learned[name].run.step} training steps)")
equal = {k: results["noise", f"{k}, {TRAINED}"]["psnr"] for k in learned}
if not FAST:
    assert equal["U-Net (the recipe)"] > equal["DAE"] > equal["DnCNN-12 (48 ch.)"]
    steps = {k: m.run.step for k, m in learned.items()}
    assert steps["DAE"] > 3 * max(
        steps["DnCNN-12 (48 ch.)"], steps["U-Net (the recipe)"]
    )
    assert equal["U-Net (the recipe)"] > best_skimage

# %% [markdown]
# The training steps printed under each row explain the order. The U-Net wins: it is
# residual like DnCNN, but its coarse levels see a wide context cheaply. The autoencoder is
# several times cheaper per step, so it gets many more steps in the same time, and it comes
# second; its bottleneck shows in the zoomed crops below, where fine texture is lost with the
# noise. DnCNN is last: a plain stack of full-resolution convolutions with batch norm is slow
# to train, and the paper trained it for hours on a GPU. An architecture's ranking depends on
# the budget it is compared at.
#
# **The course's denoiser.** `recipes.SHIPPED_DENOISER_CONFIG` adds a fourth level to the U-Net
# and draws the noise level of each training patch from $\mathcal U(0, 55/255)$; it trained for
# 55 minutes on this machine's two cores (`tools/train_weights.py`), and the book loads its
# weights (`R.pretrained_denoiser()` returns the same network outside the chapter). The
# comparison that matters is with BM3D, in quality and in time:

# %%
denoiser = recipes.train_denoiser(
    **(BUDGET if FAST else dict(seconds=recipes.SHIPPED_DENOISER_SECONDS)),
    config=recipes.SHIPPED_DENOISER_CONFIG,
    checkpoint=CKPT / f"ch11_denoiser_{MODE}.pt",
    shipped="ch11_denoiser",
)
r = run("noise", "the course's denoiser", lambda y: denoiser(y, SIGMA))
print(
    f"{denoiser.run.step} training steps; "
    f"against BM3D: {r['psnr'] - classical['bm3d']:+.2f} dB, "
    f"{results['noise', 'bm3d']['seconds'] / r['seconds']:.1f}x faster"
)
if not FAST:
    assert r["psnr"] > classical["bm3d"] - 0.2
    assert r["seconds"] < results["noise", "bm3d"]["seconds"]

# %% [markdown]
# Side by side on a zoomed crop of a test photo: the residual networks keep edges that TV
# flattens and the autoencoder blurs.

# %%
name_z = "astronaut" if "astronaut" in test else next(iter(test))
xz = test[name_z]
yz = degrade["noise"](xz, torch.Generator().manual_seed(list(test).index(name_z)))
with torch.no_grad():
    shown = {
        "clean": xz,
        "noisy": yz,
        "TV": R.denoise_tv(yz, SIGMA),
        "BM3D": R.denoise_bm3d(yz, SIGMA),
        "DAE": learned["DAE"](yz, SIGMA),
        "course denoiser": denoiser(yz, SIGMA),
    }
h, w = xz.shape[-2:]
box = (slice(h // 4, h // 4 + min(96, h // 2)), slice(w // 3, w // 3 + min(96, w // 2)))
fig, axes = plt.subplots(1, len(shown), figsize=(2.1 * len(shown), 2.5))
for ax, (k, im) in zip(axes, shown.items()):
    ax.imshow(im[0, 0][box].clamp(0, 1), cmap="gray", vmin=0, vmax=1)
    ax.set_title(
        k if k in ("clean", "noisy") else f"{k}\n{R.psnr(xz, im):.2f} dB", fontsize=8
    )
    ax.axis("off")
fig.tight_layout()

# %% [markdown]
# ## 11.6 Deep Image Prior: a network as the prior, with no training data
#
# Ulyanov et al. {cite}`ulyanov2018dip` fit a randomly initialised U-Net $f_\theta$, with a
# fixed random input $z$, to the one noisy image: $\min_\theta \|f_\theta(z) - y\|^2$. With
# enough steps it reproduces $y$, noise included; but a convolutional network fits smooth,
# repeated structure long before it fits white noise, so stopped early it outputs a denoised
# image. The catch is *when* to stop: the PSNR against the clean image (which we could not
# compute in practice) rises, peaks, and falls as the noise is fitted.

# %%
dip_crop = data.load_photos("test")["camera"][
    None, :, 200:328, 200:328
]  # the man and his coat
dip_crop = dip_crop[..., 32:96, 32:96] if FAST else dip_crop
dip_noisy = R.add_noise(dip_crop, SIGMA, torch.Generator().manual_seed(5))
t0 = time.perf_counter()
dip_out, curve = R.deep_image_prior(
    dip_noisy,
    iters=utils.fast_or_full(80, 1000),
    clean=dip_crop,
    every=utils.fast_or_full(10, 25),
)
dip_seconds = time.perf_counter() - t0
best_i = max(range(len(curve["psnr"])), key=curve["psnr"].__getitem__)
dip = {
    "noisy": R.psnr(dip_crop, dip_noisy),
    "peak": curve["psnr"][best_i],
    "last": curve["psnr"][-1],
    "bm3d": R.psnr(dip_crop, R.denoise_bm3d(dip_noisy, SIGMA)),
}
print(
    f"DIP on a {tuple(dip_crop.shape[-2:])} crop, {dip_seconds:.0f} s: "
    f"noisy {dip['noisy']:.2f} dB, peak {dip['peak']:.2f} dB "
    f"at step {curve['step'][best_i]}, last {dip['last']:.2f} dB; "
    f"BM3D {dip['bm3d']:.2f} dB"
)
fig, ax = plt.subplots(figsize=(5.5, 3))
ax.plot(curve["step"], curve["psnr"], label="PSNR against the clean crop")
ax.axhline(dip["noisy"], color="grey", ls=":", label="noisy input")
ax.axhline(dip["bm3d"], color="C3", ls="--", label="BM3D")
ax.set_xlabel("step")
ax.set_ylabel("dB")
ax.legend(fontsize=8)
fig.tight_layout()
assert dip["peak"] > curve["psnr"][0] + 3  # it learns the image from a grey start
if not FAST:
    assert dip["peak"] > dip["noisy"] + 3
    assert (
        dip["peak"] > dip["last"] + 1
    )  # then it fits the noise: early stopping matters

# %% [markdown]
# Deep Image Prior is remarkable as an experiment (the architecture alone is a prior) and poor
# as a method: it needs the stopping step, which depends on the image and the noise, and
# minutes of optimisation per image; it does not reach BM3D.
#
# ## 11.7 Plug-and-play: one denoiser for every inverse problem
#
# Half-quadratic splitting (HQS) introduces an auxiliary image $z$ and alternates two easy
# problems for $\min_x \frac{1}{2\sigma^2}\|y - Ax\|^2 + \lambda R(x)$:
#
# $$x_k = \arg\min_x \|y - Ax\|^2 + \alpha_k\|x - z_{k-1}\|^2
# = (A^\top A + \alpha_k I)^{-1}(A^\top y + \alpha_k z_{k-1}),$$
#
# $$z_k = \arg\min_z \frac{1}{2\sigma_k^2}\|z - x_k\|^2 + R(z) = \text{a denoiser at level }
# \sigma_k \text{ applied to } x_k .$$
#
# The second step is a denoising problem whatever $A$ is, so any good denoiser can stand in for
# the prior: **plug-and-play** {cite}`zhang2021plug`. The first step is linear and exact for
# our four operators (`op.solve`: Fourier division for the circular blur, the Woodbury identity
# for block averaging since $AA^\top = I/s^2$, elementwise for a mask). As in DPIR, the
# denoiser's level $\sigma_k$ falls geometrically from 49/255 over 24 iterations, with
# $\alpha_k = \lambda\sigma^2/\sigma_k^2$ (`R.pnp_hqs`; $\sigma$ is floored at 1/255 for the
# noise-free tasks); this is why the course's denoiser takes $\sigma$ as an input. Also from
# DPIR: iteration $k$ denoises a flipped or turned copy of $x_k$ (the $k$-th of the 8) and turns the
# result back, so that the denoiser's own artefacts average out over the iterations. Two settings
# per task were chosen on crops of two *training* photos (a small grid, not shown): $\lambda$
# (DPIR's 0.23, or 0.5 for deblurring) and the last level $\sigma_K$ (6/255 for deblurring,
# 3/255 for the others: the denoiser is at its weakest for very low noise).
#
# **Deblurring.** The classical answers are the Wiener filter (a Fourier-domain division with a
# regulariser whose weight we tune on a training photo) and Richardson–Lucy iterations.

# %%
PNP_ITERS = utils.fast_or_full(6, 24)  # DPIR's 24 (fast mode: a pass through the code)
PNP = {  # (lambda, last level), chosen on crops of training photos (rocket, motorcycle)
    "blur": (0.5, 6 / 255),
    "x4": (0.23, 3 / 255),
    "mask": (0.23, 3 / 255),
}


def pnp_hqs(y, op, denoiser, sigma, task):
    lam, last = PNP[task]
    return R.pnp_hqs(y, op, denoiser, sigma, iters=PNP_ITERS, lam=lam, sigma_end=last)


train_photo = crop(data.load_photos("train")["rocket"])[None]
yb = degrade["blur"](train_photo, torch.Generator().manual_seed(0))
balances = [0.003, 0.01, 0.03, 0.1, 0.3]
balance = max(balances, key=lambda b: R.psnr(train_photo, R.wiener(yb, kernel, b)))
print(f"Wiener balance chosen on a training photo: {balance}")
run("blur", "blurred input", lambda y: y)
run("blur", f"Wiener (balance {balance})", lambda y: R.wiener(y, kernel, balance))
run("blur", "Richardson-Lucy (30 it.)", lambda y: R.richardson_lucy(y, kernel, 30))
pnp = run(
    "blur",
    "plug-and-play + denoiser",
    lambda y: pnp_hqs(y, R.Blur(kernel), denoiser, BLUR_NOISE, "blur"),
)
deblur_gain = pnp["psnr"] - results["blur", f"Wiener (balance {balance})"]["psnr"]
print(f"plug-and-play against Wiener: {deblur_gain:+.2f} dB")
if not FAST:
    assert deblur_gain > 0.5

# %% [markdown]
# **×4 super-resolution.** The classical answer is bicubic interpolation; the learned one,
# ESPCN {cite}`shi2016espcn` (`denoisers.ESPCN`), computes at the low resolution and rearranges
# 16 channels into a 4× larger image, trained here for the same time as the denoisers above
# (it predicts the difference from bicubic upsampling). Plug-and-play uses the same denoiser as
# for deblurring, with no retraining, and no noise ($\sigma$ is floored at 1/255).

# %%
espcn = denoisers.train_espcn(
    **BUDGET, factor=4, checkpoint=CKPT / f"ch11_espcn_{MODE}.pt", shipped="ch11_espcn"
)
run("x4", "bicubic", lambda y: R.bicubic(y, 4))
run("x4", f"ESPCN, {TRAINED}", espcn)
pnp = run(
    "x4",
    "plug-and-play + denoiser",
    lambda y: pnp_hqs(y, R.Downsample(4), denoiser, 0.0, "x4"),
)
sr_gain = pnp["psnr"] - results["x4", "bicubic"]["psnr"]
print(f"plug-and-play against bicubic: {sr_gain:+.2f} dB")
if not FAST:
    assert sr_gain > 1.0

# %% [markdown]
# **Inpainting** 80 % of missing pixels: biharmonic interpolation (smooth fill, scikit-image),
# a U-Net trained to inpaint (`denoisers.Inpainter`: it gets the mask as a second channel,
# and keeps the observed pixels), and plug-and-play once more, whose data step for a mask is
# elementwise (exercise 3).

# %%
inpainter = denoisers.train_inpainter(
    **BUDGET, checkpoint=CKPT / f"ch11_inpainter_{MODE}.pt", shipped="ch11_inpainter"
)


def masked(task_fn):
    """A restorer given the mask of the image it restores (set by the degradation)."""
    return lambda y: task_fn(y, drawn["mask"])


run("mask", "observed pixels only", lambda y: y)
run("mask", "biharmonic", masked(R.inpaint_biharmonic))
run("mask", f"inpainting U-Net, {TRAINED}", masked(lambda y, m: inpainter(y, m)))
pnp = run(
    "mask",
    "plug-and-play + denoiser",
    masked(lambda y, m: pnp_hqs(y, R.Mask(m), denoiser, 0.0, "mask")),
)
if not FAST:
    assert pnp["psnr"] > results["mask", "biharmonic"]["psnr"]
    # the inpainting U-Net's few steps do not reach the smooth fill (said below)
    assert results["mask", f"inpainting U-Net, {TRAINED}"]["psnr"] < pnp["psnr"]

# %% [markdown]
# One denoiser, trained once for Gaussian noise, deblurs, super-resolves and inpaints with a
# higher PSNR than the classical method of each task, with no retraining; the price is time, 24
# passes of the network per image. The networks trained for one task in 150 s do less well:
# ESPCN gains less over bicubic than plug-and-play, and the inpainting U-Net, a few hundred
# steps old, stays below plug-and-play (compare it with biharmonic in the table). And the two
# metrics need not agree: compare the PSNR and SSIM columns of the inpainting rows.

# %%
fig, axes = plt.subplots(3, 4, figsize=(10, 7.5))
xs = test[name_z]
i_z = list(test).index(name_z)
for row, (task, op_fn, classic, classic_fn) in enumerate(
    [
        (
            "blur",
            lambda y: R.Blur(kernel),
            "Wiener",
            lambda y: R.wiener(y, kernel, balance),
        ),
        ("x4", lambda y: R.Downsample(4), "bicubic", lambda y: R.bicubic(y, 4)),
        (
            "mask",
            lambda y: R.Mask(drawn["mask"]),
            "biharmonic",
            lambda y: R.inpaint_biharmonic(y, drawn["mask"]),
        ),
    ]
):
    y = degrade[task](xs, torch.Generator().manual_seed(i_z))
    sigma_t = BLUR_NOISE if task == "blur" else 0.0
    ims = {
        "observed": y
        if task != "x4"
        else torch.nn.functional.interpolate(y, scale_factor=4),
        classic: classic_fn(y),
        "plug-and-play": pnp_hqs(y, op_fn(y), denoiser, sigma_t, task),
        "clean": xs,
    }
    for ax, (k, im) in zip(axes[row], ims.items()):
        ax.imshow(im[0, 0][box].clamp(0, 1), cmap="gray", vmin=0, vmax=1)
        label = k if k in ("clean", "observed") else f"{k} {R.psnr(xs, im):.2f} dB"
        ax.set_title(f"{task}: {label}", fontsize=8)
        ax.axis("off")
fig.tight_layout()

# %% [markdown]
# ## 11.8 A generative model as the prior: completing digits in a VAE's latent space
#
# A generative model $G$ of chapters 4–7 defines a prior too: an image is plausible if some
# code $z$ generates it. Bora et al. {cite}`bora2017compressed` restore by searching the
# latent space,
#
# $$z^* = \arg\min_z \frac{\|A\,G(z) - y\|^2}{2\sigma^2} + \frac{\|z\|^2}{2}, \qquad \hat x =
# G(z^*),$$
#
# the MAP code under the standard normal prior (`R.latent_restore`, Adam from four random
# starts). Chapter 7's VAE (its recipe, shipped) is the generator: the mean of $p(x\mid z)$.
# The task is hard for any local method: the **bottom half** of each test digit is missing.
# The course's classifier (chapter 9) reads the completions.
#
# The prior is also the method's limit: $G$ only draws what it has learned. A digit turned on
# its side is not in its range, and the optimiser returns the nearest upright digit it can draw,
# fitting even the observed half badly.

# %%
vae = recipes.train_mnist_vae(
    steps=utils.fast_or_full(200, 18_000),
    seed=0,
    checkpoint=CKPT / f"ch07_recipe_{MODE}.pt",
    shipped="ch07_recipe",
)
clf = features.load_mnist_classifier()
digits = data.load_mnist("test")
n_dig = utils.fast_or_full(20, 200)
xd, yd = digits.data[:n_dig], digits.targets[:n_dig]  # (n, 1, 28, 28)
top = torch.zeros(1, 1, 28, 28)
top[..., :14, :] = 1  # observe the top half
half = R.Mask(top)


def decode(z):
    return torch.sigmoid(vae.decode(z))  # (B, 1, 28, 28): the mean of p(x | z)


def complete(x, seed=0):
    out, _ = R.latent_restore(
        decode,
        half(x),
        half,
        vae.z_dim,
        sigma=0.1,
        steps=utils.fast_or_full(100, 300),
        seed=seed,
    )
    return out


fill_vae = complete(xd)
fill_bih = R.inpaint_biharmonic(half(xd), top)
hole = 1 - top


def read(x):
    with torch.no_grad():
        return (clf(x).argmax(1) == yd).float().mean().item()


def err(a, b, m):
    return ((a - b) * m).square().flatten(1).sum(1).div(m.sum()).mean().item()


rot = xd.transpose(-1, -2).flip(-1)  # the same digits turned a quarter
fill_rot = complete(rot)
dig = {
    "VAE: MSE in the hole": err(fill_vae, xd, hole),
    "biharmonic: MSE in the hole": err(fill_bih, xd, hole),
    "VAE: read as the right digit": read(fill_vae),
    "biharmonic: read as the right digit": read(fill_bih),
    "VAE: MSE on the observed half, upright": err(fill_vae, xd, top),
    "VAE: MSE on the observed half, turned": err(fill_rot, rot, top),
}
for k, v in dig.items():
    print(f"{k:42s} {v:.3f}")
fig, axes = plt.subplots(5, 8, figsize=(8, 5.4))
for j in range(8):
    for i, (label, im) in enumerate(
        [
            ("digit", xd),
            ("observed", half(xd)),
            ("biharmonic", fill_bih),
            ("VAE", fill_vae),
            ("turned: VAE", fill_rot),
        ]
    ):
        axes[i, j].imshow(im[j, 0], cmap="gray", vmin=0, vmax=1)
        axes[i, j].axis("off")
        if j == 0:
            axes[i, j].set_title(label, fontsize=8, loc="left")
fig.tight_layout()
assert dig["VAE: MSE in the hole"] < dig["biharmonic: MSE in the hole"]
assert (
    dig["VAE: MSE on the observed half, turned"]
    > 1.5 * dig["VAE: MSE on the observed half, upright"]
)
if not FAST:
    assert (
        dig["VAE: read as the right digit"] > dig["biharmonic: read as the right digit"]
    )

# %% [markdown]
# The latent search invents a plausible lower half, which biharmonic interpolation cannot (it
# continues the strokes smoothly into the empty half). On the turned digits it cannot even
# reproduce the half it sees: the prior is only as wide as the model's training data. The
# photo denoiser of section 11.7 has the opposite profile: a weak prior (local image
# statistics) that applies to any photo.
#
# ## Exercises
#
# **Exercise 1.** Write `psnr(x, x_hat)` for batches (B, 1, H, W) in $[0, 1]$: the mean over
# images of $10\log_{10}(1/\mathrm{MSE}_i)$ in dB, where $\mathrm{MSE}_i$ is image $i$'s mean
# squared error.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "ch11-ex1", "locked": false, "schema_version": 3, "solution": true, "task": false}
import torch


def psnr(x, x_hat):
    """Mean over images of 10 log10(1 / MSE_i), for images in [0, 1]."""
    ### BEGIN SOLUTION
    mse = (x - x_hat).double().square().flatten(1).mean(1)  # (B,): one MSE per image
    return (10 * torch.log10(1 / mse)).mean()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch11-ex1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from course_lib.checks.ch11 import check_psnr

check_psnr(psnr)

# %% [markdown]
# **Exercise 2.** Write the residual-learning loss of DnCNN: `net` predicts the **noise** of
# the noisy batch `y = x + n`; return the mean squared error between its prediction and the
# noise, as a tensor the optimiser can differentiate.


# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "ch11-ex2", "locked": false, "schema_version": 3, "solution": true, "task": false}
def residual_loss(net, x, y):
    """mean((net(y) - (y - x))^2): the network learns the noise, not the image."""
    ### BEGIN SOLUTION
    return (net(y) - (y - x)).square().mean()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch11-ex2-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from course_lib.checks.ch11 import check_residual_loss

check_residual_loss(residual_loss)

# %% [markdown]
# **Exercise 3.** Write the data step of plug-and-play inpainting:
# $\arg\min_x \|m\odot x - y\|^2 + \alpha\|x - z\|^2$ for a 0/1 mask $m$ (1 = observed). The
# values of `y` where $m = 0$ are not observations: your answer must not depend on them.


# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "ch11-ex3", "locked": false, "schema_version": 3, "solution": true, "task": false}
def mask_data_step(y, mask, z, alpha):
    """The elementwise minimiser (m y + alpha z) / (m + alpha)."""
    ### BEGIN SOLUTION
    return (mask * y + alpha * z) / (mask + alpha)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch11-ex3-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from course_lib.checks.ch11 import check_mask_data_step

check_mask_data_step(mask_data_step)

# %% [markdown]
# ## Results
#
# Every number of the chapter as this run measured it: the mean over the four held-out test
# photos (96×96 centre crops in fast mode; whole photos in the default mode), with the seconds
# each method took on all four. `benchmarks/bench_restoration.py` compares the recipe with the
# classical denoisers at σ = 15, 25 and 50 and 60, 150 and 300 s of training.

# %%
print(f"{'task':6s} {'method':30s} {'PSNR':>7s} {'SSIM':>6s} {'seconds':>8s}")
for (task, method), r in results.items():
    print(
        f"{task:6s} {method:30s} {r['psnr']:7.2f} {r['ssim']:6.3f} {r['seconds']:8.1f}"
    )
print(f"chapter run time: {time.perf_counter() - t_start:.0f} s")

# %% [markdown]
# The saved benchmark (`benchmarks/bench_restoration.py --save ...`, whole test photos, the
# recipe trained from scratch for each budget and noise level):

# %%
print(R.benchmark_table() or "no saved benchmark")
