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
# # Chapter 4 — DCGAN and the conditional GAN
#
# The MLP GAN of chapter 3 treats an image as 784 unrelated numbers. A **DCGAN**
# {cite}`radford2016dcgan` builds both networks from convolutions: the generator grows a
# $7 \times 7$ feature map into a $28 \times 28$ image with transposed convolutions, the
# discriminator shrinks it back with strided convolutions. Nearby pixels share weights, so
# the networks are smaller and learn digits' strokes much faster. A **conditional GAN**
# {cite}`mirza2014cgan` also feeds the class label to both networks, so we can ask for a
# particular digit.
#
# This chapter trains a DCGAN, watches it learn, walks through its latent space, conditions it
# on the digit, and measures the classifier-FID of chapter 9 against held-out test digits. Then
# it conditions the same networks on clusters of the digits, found without labels: the
# course's recommended recipe (`course_lib.recipes`).
#
# **Three modes.** In the default mode the three GANs are not trained here:
# the course ships their weights, trained once in full mode by this notebook itself
# (`python tools/train_weights.py` runs it and keeps what every named run, `shipped="..."`,
# trained; the manifest beside the weights records the command, the settings and the FID), and
# the notebook loads them when they match its settings, after checking their SHA-256.
# `COURSE_RETRAIN=1` trains them here instead (the manifest records how long each run took); `COURSE_FAST=1`
# (the tests) trains tiny versions from scratch.

# %%
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from course_lib import (
    data,
    features,
    gan,
    gan_clusters,
    gan_latent,
    metrics,
    recipes,
    train,
    utils,
    viz,
)

utils.seed_everything(0)
mnist = data.load_mnist("train")
test = data.load_mnist("test").data  # (1000, 1, 28, 28), held out
classifier = features.load_mnist_classifier()
n_fid = utils.fast_or_full(500, 1000)
test_features = features.extract(classifier, test[:n_fid])
steps = utils.fast_or_full(200, 6000)


def fid_of(G: gan.Generator) -> float:
    """Classifier-FID of n_fid samples of G against n_fid test digits (chapter 9)."""
    return metrics.generator_fid(G, test_features, classifier, n=n_fid, seed=1)


# %% [markdown]
# ## 1. The DCGAN generator and discriminator
#
# | generator (`gan.DCGenerator`) | shape | discriminator (`gan.DCDiscriminator`) | shape |
# |---|---|---|---|
# | $z$ | $100$ | image, mapped to $[-1, 1]$ | $1 \times 28 \times 28$ |
# | Linear, BatchNorm, ReLU | $2c \times 7 \times 7$ | Conv $4{\times}4$ stride 2, LeakyReLU | $c \times 14 \times 14$ |
# | ConvTranspose $4{\times}4$ stride 2, BatchNorm, ReLU | $c \times 14 \times 14$ | Conv $4{\times}4$ stride 2, LeakyReLU | $2c \times 7 \times 7$ |
# | ConvTranspose $4{\times}4$ stride 2, tanh → $[0, 1]$ | $1 \times 28 \times 28$ | Linear | a logit |
#
# Chapter 4's DCGAN (`recipes.DCGAN_CONFIG`: the networks and settings that every MNIST GAN of
# the course shares) uses $c = 24$ channels, Adam with learning rate
# $5 \times 10^{-4}$ and $\beta_1 = 0.5$, batches of 64, the non-saturating loss and the
# alternating step of chapter 3. It samples from an **exponential moving average** of the
# generator's weights, $\bar\theta \leftarrow \beta_t\,\bar\theta + (1 - \beta_t)\,\theta$ after every step,
# with $\beta_t = \min(0.99, \tfrac{1+t}{10+t})$ {cite}`karras2018progressive`: GAN training
# oscillates, and the average smooths the oscillation out. On MNIST the gain is small:
# `benchmarks/bench_gan.py --extra no-ema` prints the FID with and without the average at each
# time budget. On CPUs with bfloat16 units (AVX512-BF16 or AMX, chapter 13) the recipe runs its
# forward passes in bfloat16 autocast (`bf16="auto"`), which buys more steps in the same time;
# `benchmarks/bench_gan.py --extra fp32` prints both at equal wall time.
# `recipes.train_mnist_gan(seconds, config=recipes.DCGAN_CONFIG)` trains it in one call; here
# we build its trainer to watch it.

# %%
print(recipes.DCGAN_CONFIG)
trainer = recipes.mnist_gan_trainer(recipes.DCGAN_CONFIG, seed=0, shipped="ch04_dcgan")
G, D = trainer.G, trainer.D
print(
    f"generator {sum(p.numel() for p in G.parameters()):,} parameters, "
    f"discriminator {sum(p.numel() for p in D.parameters()):,}"
)
z = G.sample_latent(4)
assert G(z).shape == (4, 1, 28, 28) and D(G(z)).shape == (4,)

# %% [markdown]
# ## 2. Training, and samples over time
#
# Load the shipped weights if they match, else train. `trainer.run.resume()` loads them (in
# the default mode); `fit` then trains what is left of the run's budget of `steps` steps:
# nothing, if the shipped run is already that long. The checkpoint written after it lives in
# a temporary folder, used below to show a resume.

# %%
workdir = Path(tempfile.mkdtemp(prefix="ch04-"))
ckpt = workdir / "dcgan.pt"
fid_init = fid_of(trainer.generator)
trainer.run.resume()
trainer.fit(
    mnist.data, batch_size=64, steps=steps, sample_every=steps // 5, desc="DCGAN"
)
trainer.save(ckpt)
fid_dcgan = fid_of(trainer.generator)
print(f"DCGAN after {trainer.steps_done} steps: FID {fid_init:.0f} -> {fid_dcgan:.1f}")

# %%
fig, axes = plt.subplots(
    1, len(trainer.snapshots), figsize=(3 * len(trainer.snapshots), 3.2)
)
for ax, (step, grid) in zip(axes, trainer.snapshots):
    viz.show_images(grid[:36], nrow=6, title=f"step {step}", ax=ax)

# %%
h = trainer.history
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
axes[0].plot(train.smooth(h["loss_d"], 20), label=r"$\mathcal{L}_D$")
axes[0].plot(train.smooth(h["loss_g"], 20), label=r"$\mathcal{L}_G$")
axes[0].legend()
axes[1].plot(train.smooth(h["d_real"], 20), label=r"$D(x)$")
axes[1].plot(train.smooth(h["d_fake"], 20), label=r"$D(G(z))$")
axes[1].legend()
axes[1].set_xlabel("step")
# %% [markdown]
# **FID against held-out digits.** We assert that training cut the FID of the untrained
# generator by a large factor. The thresholds differ by mode: in fast mode (200 steps, a few
# seconds) the digits are blurry but recognisable; in full mode (6,000 steps, about 96 epochs
# of the 4,000 training digits, 1,000 samples against the 1,000 test digits) the bar is ten
# times lower. The cell below prints the FID this run reached. For scale, real training digits
# against the test digits, at the same sample size, give the floor no generator can beat by
# much. `benchmarks/bench_gan.py` measures the DCGAN and the recipe of section 5 at 60-300 s
# budgets against the classic MLP GAN.

# %%
fid_real = metrics.fid(features.extract(classifier, mnist.data[:n_fid]), test_features)
fid_max = utils.fast_or_full(0.5, 0.1) * fid_init
print(
    f"FID {fid_dcgan:.1f}, required below {fid_max:.1f}; "
    f"real training digits score {fid_real:.1f}"
)
assert fid_real < fid_dcgan < fid_max

# %% [markdown]
# Resuming restores everything the step needs: weights, the Adam moments, the weight average,
# the history. A fresh trainer loaded from the checkpoint draws the same samples and continues
# counting steps.

# %%
resumed = recipes.mnist_gan_trainer(recipes.DCGAN_CONFIG, seed=0).load(ckpt)
z = torch.randn(8, G.latent_dim)
assert torch.equal(resumed.generator.sample(8, z=z), trainer.generator.sample(8, z=z))
resumed.train(mnist.data, batch_size=64, steps=5, desc="resume")
assert (
    resumed.steps_done == trainer.steps_done + 5
    and resumed.history["step"][-1] == trainer.steps_done + 4
)
shutil.rmtree(workdir)  # the demonstration's checkpoint is not kept

# %% [markdown]
# ## 3. Walking through the latent space
#
# A generator maps nearby codes to similar images, so a path between two codes should morph one
# digit into another without jumps. Codes drawn from $\mathcal N(0, I_{100})$ have norm close to
# $\sqrt{100} = 10$; the straight line between two of them passes through codes of norm about
# $10/\sqrt 2$ that the generator never saw. **Spherical** interpolation (slerp) {cite}`white2016sampling`
# follows the great circle instead and keeps the norm:
#
# $$
# \operatorname{slerp}(z_0, z_1; t) = \frac{\sin((1-t)\Omega)}{\sin\Omega}\, z_0 + \frac{\sin(t\Omega)}{\sin\Omega}\, z_1,
# \qquad \cos\Omega = \frac{z_0 \cdot z_1}{\|z_0\|\,\|z_1\|}.
# $$

# %%
g = torch.Generator().manual_seed(7)
z0s, z1s = (
    torch.randn(16, 100, generator=g),
    torch.randn(16, 100, generator=g),
)  # 16 pairs
slerp_paths = gan_latent.interpolation_paths(z0s, z1s, 10)  # (16, 10, 100)
lerp_paths = gan_latent.interpolation_paths(z0s, z1s, 10, spherical=False)
frames = trainer.generator.sample(
    40, z=slerp_paths[:4].reshape(40, 100)
)  # (40, 1, 28, 28)
viz.show_images(frames, nrow=10, title="slerp between two codes, one row per pair")
print(
    "norms along slerp: "
    f"{slerp_paths.norm(dim=2).min():.2f}..{slerp_paths.norm(dim=2).max():.2f}; "
    f"along the straight line: down to {lerp_paths.norm(dim=2).min():.2f}"
)

# neighbouring frames are closer to each other than the two ends are
rows = frames.view(4, 10, -1)
step_dist = (rows[:, 1:] - rows[:, :-1]).norm(dim=2)  # (4, 9)
end_dist = (rows[:, -1] - rows[:, 0]).norm(dim=1)  # (4,)
print(
    "largest step / end-to-end distance per row:",
    (step_dist.max(1).values / end_dist).round(decimals=2).tolist(),
)
assert (step_dist.max(1).values < 0.6 * end_dist).all()

# %% [markdown]
# Smoothness alone says little: any continuous network, trained or not, maps a smooth path to a
# smooth sequence of images. What matters is that the frames *along* the path are digits. We
# score them as chapter 9 scores samples: the fraction of frames whose classifier features lie
# on the manifold of real test digits (improved precision {cite}`kynkaanniemi2019pr`,
# `gan_latent.path_precision`), over all 16 paths. An untrained generator scores near 0, and so
# does uniform noise, which the classifier would read as a digit with high confidence
# (`tests/test_gan_latent.py` shows both fail the bar asserted here). The cell also prints the
# score of the straight-line paths, whose middle codes have the smaller norm.

# %%
real_all = features.extract(
    classifier, test
)  # (1000, 128): all test digits, in both modes
untrained = recipes.mnist_gan_trainer(recipes.DCGAN_CONFIG, seed=1).generator
prec_untrained = gan_latent.path_precision(untrained, classifier, slerp_paths, real_all)
prec_slerp = gan_latent.path_precision(
    trainer.generator, classifier, slerp_paths, real_all
)
prec_lerp = gan_latent.path_precision(
    trainer.generator, classifier, lerp_paths, real_all
)
print(
    f"frames on the real-digit manifold: slerp {prec_slerp:.3f}, "
    f"straight line {prec_lerp:.3f}; "
    f"untrained generator {prec_untrained:.3f}"
)
assert prec_slerp > utils.fast_or_full(0.05, 0.2) and prec_untrained < 0.02

# %% [markdown]
# ## 4. The conditional GAN
#
# Give both networks the label $y$. The generator gets $[z, e_y]$, where $e_y \in \mathbb R^{10}$
# is a *learned* embedding of the label (`nn.Embedding`), initialised with the norm of $z$ so
# that the label is not drowned by the 100 noise coordinates; the discriminator
# is a *projection* discriminator {cite}`miyato2018projection`: its logit is
# $w^\top h(x) + e_y^\top h(x)$ with a learned embedding $e_y$ per class, so it judges
# "is this a real **seven**?" The game is the same with every density conditioned on $y$, so
# chapter 2's results hold class by class: $D^*(x, y) = p_\text{data}(x \mid y) / (p_\text{data}(x \mid y) + p_g(x \mid y))$.
#
# **One change to the recipe: the R1 penalty.** Trained exactly like the unconditional model,
# the conditional one was unstable in full-length runs: it drew the requested digits, but its
# classifier-FID swung up and down over 6,000 steps and, at times, one requested class came out
# mostly as another (`benchmarks/bench_cgan.py` trains both versions and prints the FID and the
# accuracy along the way). The R1 penalty {cite}`mescheder2018convergence` adds
#
# $$ \frac{\gamma}{2}\, \mathbb E_{x \sim p_\text{data}} \big\|\nabla_x\, l(x, y)\big\|^2 $$
#
# to the discriminator's loss (`gan.r1_penalty`): D's logit must stay flat on the real images.
# Mescheder et al. show that the unregularised game can circle around its equilibrium
# instead of converging to it, and that this penalty makes it converge locally (chapter 2's
# Dirac-GAN shows both). With $\gamma = 1$ the FID fell steadily, to the level of real digits, in
# the benchmark's full-length run. The conditional recipe, `recipes.MNIST_CGAN_CONFIG`, uses it,
# and it is the default whenever `n_classes > 0`; the DCGAN of sections 1-3 does not (on it, R1
# alone gains less than conditioning does: `benchmarks/bench_gan.py --extra dcgan-r1-3` and the
# README's table).

# %%
ctrainer = recipes.mnist_gan_trainer(n_classes=10, seed=0, shipped="ch04_cgan")
acc_init = features.accuracy(
    classifier, ctrainer.generator.sample(500), torch.arange(500) % 10
)
ctrainer.run.resume()  # the shipped weights in the default mode, if they match
ctrainer.fit(
    mnist.data, mnist.targets, batch_size=64, steps=steps, desc="conditional GAN"
)
cG = ctrainer.generator
grid = cG.sample(
    100, labels=torch.arange(10).repeat_interleave(10)
)  # row r: ten samples of digit r
viz.show_images(grid, nrow=10, title="conditional samples: row = digit 0..9")
# %% [markdown]
# Does the generator draw the digit we ask for? The course's classifier reads the samples: the
# fraction it labels as the requested class measures how well the conditioning works (10 % is
# chance).

# %%
labels = torch.arange(1000) % 10
samples = cG.sample(1000, labels=labels, generator=torch.Generator().manual_seed(2))
acc = features.accuracy(classifier, samples, labels)
fid_cgan = metrics.fid(features.extract(classifier, samples[:n_fid]), test_features)
print(
    f"classifier agrees with the requested digit: {acc_init:.1%} before, "
    f"{acc:.1%} after training; FID {fid_cgan:.1f}"
)
assert acc_init < 0.3 and acc > utils.fast_or_full(0.6, 0.9)
assert fid_cgan < utils.fast_or_full(0.5, 0.05) * fid_init

# %% [markdown]
# With the class fixed, the latent code carries the *style*: hold $z$ fixed along each column
# and change only the label, and the stroke width and slant carry over from digit to digit.

# %%
zs = torch.randn(8, 100, generator=torch.Generator().manual_seed(3))
style = cG.sample(80, labels=torch.arange(10).repeat_interleave(8), z=zs.repeat(10, 1))
viz.show_images(style, nrow=8, title="columns share z, rows share the label")
# %% [markdown]
# ## 5. Without labels: conditioning on clusters (the recipe)
#
# Compare the conditional GAN's FID with the DCGAN's above: the same networks, trained the same
# way apart from the R1 penalty, are far closer to real digits once they are told which digit to
# draw (R1 alone gains much less on the DCGAN: the README's table). Without a discrete
# input, the generator must cut one continuous latent space into ten separate digits, and the
# codes between two digits give images that are neither; with one, each class gets its own
# piece of the generator.
#
# The labels are not what helps; a discrete variable that follows the data's groups is. So
# find the groups without labels. Blur the training digits by a $3 \times 3$ box filter (so a
# stroke shifted by a pixel stays close to itself) and cut them into $K = 50$ groups by
# *spectral clustering* {cite}`shi2000normalized,ng2002spectral`: link each digit to its 10
# nearest neighbours, use the first $K$ eigenvectors of this graph's normalised Laplacian as
# the digits' new coordinates, and group them there. A group is held together by chains of
# near neighbours, so it can follow a digit's long, curved spread through pixel space (a 7
# slanting by degrees), which the round clusters of k-means cut across; the cell below
# measures both. Then train the conditional GAN on the cluster indices, and sample a cluster
# with its share $\pi_k$ of the training digits before drawing an image of it:
#
# $$ p(x) = \sum_{k=1}^{K} \pi_k \, p_G(x \mid k). $$
#
# That is still an unconditional model of the digits: no label is read. Clustered GANs
# {cite}`sage2018logo` cluster features once, as here; self-conditioned GANs
# {cite}`liu2020selfconditioned` re-cluster the discriminator's features during training. More
# clusters than digits leave room for a digit's styles to fall into clusters of their own, so
# a cluster holds mostly one digit. The conditional GAN needs the R1 penalty, here with
# $\gamma = 0.3$, applied *lazily* {cite}`karras2020stylegan2`: on every $m$-th step only, $m$
# times as strong ($m$ is `MNIST_GAN_CONFIG.r1_every`, printed below), which keeps its average
# and skips $m - 1$ of every $m$ double backward passes it costs, so more steps fit in the same
# time. Its latent code is shorter than the DCGAN's, 16 numbers instead of 100
# (`MNIST_GAN_CONFIG.latent_dim`): the cluster already says which group of digits to draw, and
# the code has only to say how this one varies within its group; the generator's first layer
# shrinks with it, so again more steps fit in the budget (`benchmarks/bench_gan.py --extra
# z100` measures the difference). With some 80 digits per cluster, the discriminator could also learn the training
# digits by heart and push its logits on them ever further from those on the fakes. The LeCam
# regulariser {cite}`tseng2021lecam` is made against that: with $\alpha_R$ and $\alpha_F$
# moving averages of its mean logit on real and on fake digits, it adds
#
# $$ \lambda_\text{LC} \Big( \mathbb E_x\big[(l(x) - \alpha_F)^2\big]
#    + \mathbb E_z\big[(l(G(z)) - \alpha_R)^2\big] \Big) $$
#
# to its loss, pulling each side's logits towards the *other* side's average
# (`gan.lecam_penalty`, `GANConfig.lecam`). At this budget it did not pay, so the recipe
# leaves it off (`benchmarks/bench_gan.py --extra lecam` measures it).
# This is the course's recipe,
# `recipes.MNIST_GAN_CONFIG`, trained by `recipes.train_mnist_gan(seconds)`
# (`gan_clusters.cluster_labels`, `gan_clusters.ClusterConditioned`);
# `benchmarks/bench_gan.py` measures each choice. The labels are read below only to measure
# how well the clusters follow the digits.

# %%
RECIPE = recipes.MNIST_GAN_CONFIG
K = RECIPE.clusters
clusters = gan_clusters.cluster_labels(mnist.data, K, seed=0)  # (4000,) ints in [0, K)
kmeans = gan_clusters.cluster_labels(mnist.data, K, seed=0, method="kmeans")  # (4000,)
counts = torch.bincount(clusters, minlength=K)
purity = gan_clusters.purity(clusters, mnist.targets)
purity_kmeans = gan_clusters.purity(kmeans, mnist.targets)
print(
    f"{K} spectral clusters of {int(counts.min())}-{int(counts.max())} digits; "
    f"{purity:.1%} of the digits are their cluster's most common digit "
    f"(k-means: {purity_kmeans:.1%}); R1 every {RECIPE.r1_every} steps; "
    f"a {RECIPE.latent_dim}-number latent code"
)
# ten digits in random groups of 80 would give about 20 %
assert purity > purity_kmeans + 0.03 and purity_kmeans > 0.7
picked = torch.arange(0, K, K // 8)[:8]
rows = [mnist.data[clusters == k][:10] for k in picked]
viz.show_images(torch.cat(rows), nrow=10, title="eight clusters, ten digits each")
# %%
RECIPE_SECONDS = 120.0
recipe = recipes.train_mnist_gan(
    **utils.fast_or_full(dict(steps=100), dict(seconds=RECIPE_SECONDS)),
    seed=0,
    shipped="ch04_recipe",
    desc="GAN recipe",
)
fid_recipe = fid_of(recipe)
h = recipe.history
print(
    f"classifier-FID of {n_fid} samples: DCGAN {fid_dcgan:.1f} ({steps} steps); "
    f"conditional GAN, labels {fid_cgan:.1f}; recipe, clusters {fid_recipe:.1f} "
    f"({len(h['step'])} steps in {h['time'][-1]:.0f} s); real digits {fid_real:.1f}"
)
drawn = recipe.sample(1000, generator=torch.Generator().manual_seed(4))
read = features.probabilities(classifier, drawn).argmax(1)  # (1000,) digits as read
share = torch.bincount(read, minlength=10).float() / len(read)
print("share of each digit in 1,000 samples, as the classifier reads them:")
print(" ".join(f"{d}: {s:.1%}" for d, s in enumerate(share.tolist())))
if (
    not utils.fast_mode()
):  # 100 steps draw blurry digits: the code path, not the quality
    assert fid_recipe < fid_dcgan / 2
viz.show_images(
    recipe.sample(100, generator=torch.Generator().manual_seed(5)),
    nrow=10,
    title="the recipe: a cluster drawn with its share, then an image",
)

# %% [markdown]
# One number hides two ways to fail: samples that do not look like digits, and samples too
# alike to cover the digits' variety. Chapter 9's improved precision and recall
# {cite}`kynkaanniemi2019pr` tell them apart: *precision* is the share of samples that
# fall inside the $k$-nearest-neighbour balls of the real test digits' features (quality),
# *recall* the share of test digits inside the samples' balls (diversity). Real training
# digits give the values a perfect generator would reach at this sample size.


# %%
def precision_recall_of(x: torch.Tensor) -> tuple[float, float]:
    """Improved precision and recall (k = 3) of images against the test digits."""
    return metrics.precision_recall(test_features, features.extract(classifier, x))


pr = {
    "real training digits": precision_recall_of(mnist.data[:n_fid]),
    "DCGAN": precision_recall_of(
        trainer.generator.sample(n_fid, generator=torch.Generator().manual_seed(1))
    ),
    "recipe": precision_recall_of(
        recipe.sample(n_fid, generator=torch.Generator().manual_seed(1))
    ),
}
for name, (prec, rec) in pr.items():
    print(f"{name:21s} precision {prec:.3f}  recall {rec:.3f}")
if not utils.fast_mode():  # a few hundred steps: the code path, not the quality
    # the clusters are what lifts the samples' quality to that of real digits ...
    assert pr["recipe"][0] > pr["DCGAN"][0] + 0.2
    assert pr["recipe"][0] > pr["real training digits"][0] - 0.03
    # ... and what the recipe still lacks is variety
    assert pr["recipe"][1] < pr["real training digits"][1] - 0.05

# %% [markdown]
# The clusters lift precision to about that of real digits, far above the DCGAN's; the recipe's
# recall stays below the real digits'. So what separates the recipe from real digits is
# diversity within clusters, and that is where a better recipe would have to gain;
# `benchmarks/bench_gan.py` prints both numbers beside the FID of every run.
# %% [markdown]
# ## Exercise
#
# **Exercise 1.** Write spherical interpolation: `n` codes from `z0` to `z1` (both ends
# included), shape `(n, d)`.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "ch04-ex1", "locked": false, "schema_version": 3, "solution": true, "task": false}
import torch


def slerp(z0, z1, n):
    """n codes on the great circle from z0 to z1 (vectors of shape (d,)); "
    "returns (n, d)."""
    ### BEGIN SOLUTION
    t = torch.linspace(0, 1, n)[:, None]  # (n, 1)
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm())
    omega = torch.arccos(cos.clamp(-1, 1))
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(
        omega
    )
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch04-ex1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from course_lib.checks.ch04 import check_slerp

check_slerp(slerp)

# %% [markdown]
# ## Summary
#
# | what | where | checked here |
# |---|---|---|
# | DCGAN generator / discriminator for 28×28 | `gan.DCGenerator`, `gan.DCDiscriminator` | shapes; FID falls below half the untrained value |
# | chapter 4's DCGAN | `recipes.DCGAN_CONFIG`, `recipes.mnist_gan_trainer` | `benchmarks/bench_gan.py` against the classic MLP |
# | checkpoint and resume | `GANTrainer.save`, `.load` | identical samples, step count continues |
# | slerp | `gan.interpolate_latents`, `gan_latent.path_precision` | no jumps between frames; the frames lie on the real-digit manifold |
# | conditional GAN | `n_classes=10` on both networks | the classifier reads the requested digit |
# | recommended recipe: the DCGAN conditioned on spectral clusters, lazy R1 | `recipes.MNIST_GAN_CONFIG`, `recipes.train_mnist_gan`, `gan_clusters` | clusters follow the digits; FID below half the DCGAN's (full mode); `benchmarks/bench_gan.py` |
# | quality against diversity: improved precision and recall | `metrics.precision_recall` | the recipe's precision near real digits', its recall below (full mode) |
#
# Chapter 5 (mode collapse) counts the modes a GAN drops, on 2-D data where the modes are
# known, and measures the losses and regularisers meant to fix it.
