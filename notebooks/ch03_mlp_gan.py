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
# # Chapter 3 — Training a GAN on MNIST, and debugging a broken one
#
# Chapter 2 derived the game. Here we play it on real digits with the classic fully connected
# GAN {cite}`goodfellow2014gan`, trained *correctly*, and then break the training loop in the
# ways tutorials most often do. Each mistake leaves a signature, in the losses, in $D(x)$ and
# $D(G(z))$, or as a crash, and each one learns measurably worse than the correct loop.
#
# We measure sample quality with the **classifier-FID** of chapter 9: the Fréchet distance
# between Gaussian fits of the features of a small MNIST classifier
# (`course_lib.features.load_mnist_classifier`) on generated and on held-out real digits
# {cite}`heusel2017fid`. Lower is better; the first cell prints the floor, real training digits
# against the test digits at the same sample size.

# %%
import functools
import inspect
import math
import re

import matplotlib.pyplot as plt
import torch

from course_lib import data, features, gan, gan_bugs, metrics, train, utils, viz

utils.seed_everything(0)
images = data.load_mnist("train").data  # (4000, 1, 28, 28) in [0, 1]
test = data.load_mnist("test").data  # (1000, 1, 28, 28), held out
classifier = features.load_mnist_classifier()
n_fid = utils.fast_or_full(500, 1000)
test_features = features.extract(classifier, test[:n_fid])


def fid_of(G: gan.Generator) -> float:
    """Classifier-FID of n_fid samples of G against n_fid test digits (chapter 9)."""
    return metrics.generator_fid(G, test_features, classifier, n=n_fid, seed=1)


print(
    f"FID of {n_fid} real training digits vs the test digits: "
    f"{metrics.fid(features.extract(classifier, images[:n_fid]), test_features):.1f}"
)

# %% [markdown]
# ## 1. The classic MLP GAN
#
# | | layers | output |
# |---|---|---|
# | generator | $z \in \mathbb R^{100} \to 256 \to 512 \to 784$, LeakyReLU(0.2) | $\tanh$, mapped to $[0, 1]$ |
# | discriminator | $784 \to 512 \to 256 \to 1$, LeakyReLU(0.2) | a logit |
#
# Both live in `course_lib.gan` (`MLPGenerator`, `MLPDiscriminator`). Inside, the networks
# work in $[-1, 1]$ as in DCGAN {cite}`radford2016dcgan`; their interface is the course's
# $[0, 1]$. Each training step alternates:
#
# 1. **D step.** Draw $z$, make fakes $G(z)$. Minimise
#    $\mathcal L_D = \operatorname{softplus}(-l(x)) + \operatorname{softplus}(l(G(z)))$ on real images and on
#    `fake.detach()`: the detach stops the backward pass at the generator's output, so the
#    D step computes and changes nothing in $G$.
# 2. **G step.** A *fresh* forward of the updated $D$ on the same (not detached) fakes, the
#    non-saturating loss $\mathcal L_G = \operatorname{softplus}(-l(G(z)))$, its own `backward`, and only
#    $G$'s optimiser steps.
#
# This is `course_lib.gan.gan_step`, verbatim:


# %%
def show_source(fn) -> None:
    """Print a function's source without its docstring."""
    print(
        re.sub(r'\n    r?""".*?"""\n', "\n", inspect.getsource(fn), count=1, flags=re.S)
    )


show_source(gan.gan_step)

# %% [markdown]
# `GANTrainer` runs this step on `course_lib.train.fit` (progress bar, NaN guard, step or
# time budget), records $\mathcal L_D$, $\mathcal L_G$, $D(x)$ and $D(G(z))$ at every step, and keeps
# sample grids from fixed latent codes. We use Adam with $\beta_1 = 0.5$, batches of 32 and a
# learning rate of $2 \times 10^{-3}$, ten times the usual $2 \times 10^{-4}$: with budgets of
# seconds it learns much faster per unit of compute (`benchmarks/bench_gan.py --extra lr2e-4`
# prints the comparison). It is not a setting for long runs: `benchmarks/bench_gan.py` prints
# this MLP GAN's FID at 60, 120 and 300 s, and it stops improving early, so full mode stops at
# 3,000 steps.

# %%
LR, BATCH = 2e-3, 32
steps_compare = (
    200  # the broken loops below run this long, in both modes (a fixed experiment)
)
steps_total = utils.fast_or_full(400, 3000)


def classic_trainer(step_fn=None, lr: float = LR, seed: int = 0) -> gan.GANTrainer:
    torch.manual_seed(seed)
    return gan.GANTrainer(
        gan.MLPGenerator(),
        gan.MLPDiscriminator(),
        lr_g=lr,
        lr_d=lr,
        betas=(0.5, 0.999),
        step_fn=step_fn,
    )


trainer = classic_trainer()
fid_init = fid_of(trainer.G)
trainer.train(
    images, batch_size=BATCH, steps=steps_compare, sample_every=steps_compare // 4
)
fid_compare = fid_of(trainer.G)  # the correct loop after steps_compare steps
trainer.train(
    images,
    batch_size=BATCH,
    steps=steps_total - steps_compare,
    sample_every=max(1, (steps_total - steps_compare) // 2),
)
fid_final = fid_of(trainer.G)
print(
    f"FID: untrained {fid_init:.0f}, after {steps_compare} steps {fid_compare:.0f}, "
    f"after {steps_total} steps {fid_final:.0f}"
)
assert fid_compare < 0.8 * fid_init and fid_final < 0.6 * fid_init  # learning happened

# %%
shown = trainer.snapshots[:: max(1, len(trainer.snapshots) // 4)][:4] + [
    trainer.snapshots[-1]
]
fig, axes = plt.subplots(1, len(shown), figsize=(3 * len(shown), 3.2))
for ax, (step, grid) in zip(axes, shown):
    viz.show_images(grid[:36], nrow=6, title=f"step {step}", ax=ax)

# %%
h = trainer.history
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
axes[0].plot(train.smooth(h["loss_d"]), label=r"$\mathcal{L}_D$")
axes[0].plot(train.smooth(h["loss_g"]), label=r"$\mathcal{L}_G$")
axes[0].axhline(math.log(4), ls=":", c="k", label=r"$\log 4$ (equilibrium)")
axes[0].legend()
axes[1].plot(train.smooth(h["d_real"]), label=r"$D(x)$")
axes[1].plot(train.smooth(h["d_fake"]), label=r"$D(G(z))$")
axes[1].axhline(0.5, ls=":", c="k")
axes[1].legend()
axes[1].set_xlabel("step");
# %% [markdown]
# A healthy run: $D(x)$ stays above $D(G(z))$ (the discriminator keeps an edge) but neither
# saturates at 0 or 1, and $\mathcal L_D$ hovers below $\log 4 \approx 1.39$, its value at the
# equilibrium $D = \tfrac12$ of chapter 2.

# %%
d_real, d_fake, loss_d = (
    sum(h[k][-100:]) / 100 for k in ("d_real", "d_fake", "loss_d")
)
print(
    f"last 100 steps: D(x) = {d_real:.2f}, D(G(z)) = {d_fake:.2f}, "
    f"loss_d = {loss_d:.2f}"
)
assert 0.05 < d_fake < d_real < 0.99 and loss_d < math.log(4)

# %% [markdown]
# ## 2. Debugging a broken GAN
#
# The five mistakes below are kept, clearly labelled, in `course_lib.gan_bugs`, each a drop-in
# replacement for `gan_step`. We train each one for the same number of steps as the correct
# loop above, from the same initial weights, and compare.


# %%
def run_bug(
    name: str, steps: int = steps_compare, lr: float = LR
) -> tuple[gan.GANTrainer, float]:
    tr = classic_trainer(gan_bugs.STEPS[name], lr=lr)
    tr.train(images, batch_size=BATCH, steps=steps, desc=name)
    return tr, fid_of(tr.G)


results = {"correct": fid_compare}

# %% [markdown]
# ### Mistake 1: no `detach`, and what actually breaks
#
# A missing `detach` in the D step is, on its own, only wasteful: `loss_d.backward()` then also
# runs backward through $G$ and writes $\nabla_G \mathcal L_D$ into the generator's `.grad`. If the G
# step zeroes $G$'s gradients right before its own backward and uses a fresh forward of the
# updated $D$, the update is exactly the correct one (`gan_bugs.step_undetached_zeroed`; the cell
# after next checks it). What breaks the loops in tutorials is what comes with the missing
# `detach`. The most common version computes both losses on *one* forward of $D$ on the
# undetached fakes, `loss_d = d_loss(D(real), D(fake))`, `loss_g = g_loss(D(fake))`, steps $D$
# between the two backwards, and PyTorch refuses, in one of two ways:

# %%
show_source(gan_bugs.step_shared_logits)  # course_lib.gan_bugs, verbatim
errors = {}
for retain in (False, True):
    tr = classic_trainer()
    try:
        gan_bugs.step_shared_logits(
            tr.G, tr.D, tr.opt_g, tr.opt_d, images[:BATCH], retain_graph=retain
        )
    except RuntimeError as err:
        errors[retain] = str(err).split("\n")[0]
        print(f"retain_graph={retain}: RuntimeError: {errors[retain][:110]}...")
assert "second time" in errors[False] and "inplace operation" in errors[True]

# %% [markdown]
# Without `retain_graph`, `loss_d.backward()` has freed the saved tensors of the whole graph,
# $D$'s forward *and* the $G(z)$ that produced the fakes, and `loss_g.backward()` needs both. With
# `retain_graph=True` the graph survives, but `opt_d.step()` has changed $D$'s weights in place, and
# the logits `loss_g` was built from belong to the old $D$. A fresh forward of $D$ for the G step
# fixes the second error but not the first: the G step still backpropagates through the $G(z)$
# graph that `loss_d.backward()` freed (`gan_bugs.step_no_detach` with `retain_graph=False`).
#
# The usual forum fix is `retain_graph=True`, with gradients zeroed only at the top of the
# iteration (`gan_bugs.step_no_detach`). Now nothing crashes, and the bug is the missing
# `opt_g.zero_grad()` between the two backwards: `loss_d.backward()` writes
# $\nabla_G \mathcal L_D$, the direction that *helps D*, into the generator's `.grad`, and the G step
# adds $\nabla_G \mathcal L_G$ to it. On a fake's logit the generator now follows
#
# $$
# \frac{\partial(\mathcal L_D + \mathcal L_G)}{\partial l} = \sigma(l) - (1 - \sigma(l)) = 2D(G(z)) - 1,
# $$
#
# which aims at $D(G(z)) = \tfrac12$ ("confuse D") instead of $1$ ("fool D"), with a signal
# $1 - 2D$ instead of $1 - D$, which is weak exactly near the equilibrium $D(G(z)) \approx \tfrac12$
# that a healthy run sits close to. From the state of the trained run, with the learning rate set
# to 0 so that we look at one step's gradients: the polluted gradient is no longer that of
# $\mathcal L_G$, and it is smaller; the undetached loop that zeroes $G$'s gradients in the right
# place gives the correct gradient exactly; and without `retain_graph` it crashes.


# %%
def generator_grad(step_fn, seed: int = 3) -> torch.Tensor:
    tr = classic_trainer()
    tr.G.load_state_dict(trainer.G.state_dict())
    tr.D.load_state_dict(trainer.D.state_dict())
    for opt in (tr.opt_g, tr.opt_d):
        opt.param_groups[0]["lr"] = 0.0  # look at the gradients, move nothing
    torch.manual_seed(seed)
    step_fn(tr.G, tr.D, tr.opt_g, tr.opt_d, images[:256])
    return torch.cat([p.grad.flatten() for p in tr.G.parameters()])


g_clean = generator_grad(gan.gan_step)
g_polluted = generator_grad(gan_bugs.step_no_detach)
g_zeroed = generator_grad(gan_bugs.step_undetached_zeroed)
cosine = torch.nn.functional.cosine_similarity(g_clean, g_polluted, dim=0).item()
ratio = (g_polluted.norm() / g_clean.norm()).item()
zeroed_err = ((g_zeroed - g_clean).norm() / g_clean.norm()).item()
print(
    f"cosine(clean, polluted G gradient) = {cosine:.3f}, "
    f"norm ratio polluted/clean = {ratio:.2f}"
)
print(
    "undetached, G's grads zeroed before its backward: "
    f"relative difference {zeroed_err:.1e}"
)
try:
    generator_grad(functools.partial(gan_bugs.step_no_detach, retain_graph=False))
    freed = None
except RuntimeError as err:
    freed = str(err).split("\n")[0]
print(f"undetached, no retain_graph: RuntimeError: {freed[:80]}...")
assert cosine < 0.99 and ratio < 0.9
assert zeroed_err < 1e-5
assert freed is not None and "second time" in freed

tr_no_detach, results["no_detach"] = run_bug("no_detach")

# %% [markdown]
# ### Mistake 2: one backward through both networks
#
# Another "fix": add the losses, `(loss_d + loss_g).backward()`, and step both optimisers
# (`gan_bugs.step_one_backward`). Now *each* network follows $\mathcal L_D + \mathcal L_G$. On the fakes
# both get the logit gradient $2D(G(z)) - 1$: the discriminator stops pushing fakes towards 0
# and instead helps the generator, both settle at $D(G(z)) = \tfrac12$, and there the
# generator's gradient vanishes. Signature: $D(G(z))$ pinned at 0.5 while $D(x) \to 1$, and
# $G$ does not improve.

# %%
tr_one, results["one_backward"] = run_bug("one_backward")
h1 = tr_one.history
dev = sum(abs(v - 0.5) for v in h1["d_fake"][-50:]) / 50
print(
    f"one backward: D(x) = {sum(h1['d_real'][-50:]) / 50:.3f}, "
    f"mean |D(G(z)) - 1/2| = {dev:.4f}"
)
assert dev < 0.03 and sum(h1["d_real"][-50:]) / 50 > 0.95

# %% [markdown]
# ### Mistake 3: both optimisers stepped together, then D again on stale fakes
#
# The third variant backpropagates both losses through the same graph, steps both optimisers
# at once, then gives D an extra update on the same fakes, made by the generator *before* its
# update (`gan_bugs.step_joint_stale`). Both networks still receive each other's gradients in
# the joint step, so D's first update partly helps G and G's update partly helps D.

# %%
tr_stale, results["joint_step_stale"] = run_bug("joint_step_stale")

# %% [markdown]
# ### Mistake 4: `log(sigmoid(.))` hits `log(0)`
#
# Writing the losses with probabilities, `torch.log(torch.sigmoid(l))` and
# `torch.log(1 - torch.sigmoid(l))`, is the same on paper as the softplus form. In float32
# it is not: $\sigma(l)$ rounds to exactly $1$ for $l \gtrsim 16.6$, so $\log(1 - \sigma(l)) = -\infty$,
# and the gradient through it is $\infty \cdot 0 = \mathrm{nan}$.

# %%
big = torch.tensor([10.0, 16.0, 17.0, 30.0], requires_grad=True)
naive = torch.log(1 - torch.sigmoid(big))
(grad_naive,) = torch.autograd.grad(naive.sum(), big)
stable = -torch.nn.functional.softplus(big)
(grad_stable,) = torch.autograd.grad(stable.sum(), big)
print("logit               ", big.tolist())
print("log(1 - sigmoid(l)) ", naive.tolist(), " gradient", grad_naive.tolist())
print("-softplus(l)        ", stable.tolist(), " gradient", grad_stable.tolist())
assert torch.isinf(naive[2:]).all() and torch.isnan(grad_naive[2:]).all()
assert torch.isfinite(stable).all() and torch.allclose(
    grad_stable, -torch.sigmoid(big.detach())
)

# %% [markdown]
# A fake scored $l > 16.6$ is one the discriminator calls real with near certainty. A healthy
# run rarely produces one, but one large update is enough. Take a learning rate of $10^{-2}$
# (too high, and a common first try): after a *single* step of the correct loop, Adam has moved
# every weight of D by about $10^{-2}$ in a coherent direction, and D scores every fake far
# above 16.6:

# %%
tr_soft = classic_trainer(lr=1e-2)
tr_soft.train(images, batch_size=BATCH, steps=1, desc="softplus")
with torch.no_grad():
    fake_logits = tr_soft.D(
        tr_soft.G.sample(256, generator=torch.Generator().manual_seed(0))
    )  # (256,)
print(
    "after one step at lr 1e-2: "
    f"fake logits from {fake_logits.min():.1f} to {fake_logits.max():.1f}"
)
assert fake_logits.max() > 16.6

# %% [markdown]
# So the probability form (`gan_bugs.step_log_sigmoid`) returns `inf` on the next step, and
# that step has already written its `nan` gradient into D: it calls `opt.step()` itself,
# without the check of `optim.optimizer_step` that refuses a non-finite loss *before* the
# update. The training loop sees the `inf` only afterwards; it raises, and rolls the weights
# and the Adam states back to the last checkpoint (here, the start of the call), so what is
# left is usable but every step since that checkpoint is lost. The softplus form, at the same
# learning rate and from the same weights, reports large but finite losses, which you can see
# and act on (lower the learning rate).

# %%
tr_log = classic_trainer(gan_bugs.step_log_sigmoid, lr=1e-2)
d_start = [p.clone() for p in tr_log.D.parameters()]
try:
    tr_log.train(images, batch_size=BATCH, steps=20, desc="log_sigmoid")
    crash = None
except FloatingPointError as err:
    crash = str(err)
print("log(sigmoid):", crash)
rolled_back = all(torch.equal(a, b) for a, b in zip(d_start, tr_log.D.parameters()))
tr_soft.train(images, batch_size=BATCH, steps=19, desc="softplus")
print(
    "softplus: 20 steps, all finite; loss_d =",
    [round(v, 1) for v in tr_soft.history["loss_d"][:6]],
    "...",
)
assert crash is not None and "became inf at step 1" in crash and rolled_back
assert all(math.isfinite(v) for v in tr_soft.history["loss_d"])

# %% [markdown]
# ### Mistake 5: the discriminator loss with the wrong sign
#
# `loss_d = log D(x) + log(1 - D(G(z)))`, i.e. $+V$ instead of $-V$ (`gan_bugs.step_wrong_sign`).
# The discriminator now *minimises* $V$: it learns to call real digits fake and fakes real,
# without bound (the loss falls like $l_\text{fake} - l_\text{real}$). The generator's
# non-saturating loss is then already near 0, its gradient $1 - D(G(z))$ vanishes, and it never
# improves. Signature: $D(x) \to 0$, $D(G(z)) \to 1$, and $\mathcal L_D$ keeps falling.

# %%
tr_sign, results["wrong_sign"] = run_bug("wrong_sign")
hs = tr_sign.history
print(
    f"wrong sign: D(x) = {hs['d_real'][-1]:.4f}, D(G(z)) = {hs['d_fake'][-1]:.4f}, "
    f"loss_d = {hs['loss_d'][-1]:.3g}"
)
assert hs["d_real"][-1] < 0.01 and hs["d_fake"][-1] > 0.99 and hs["loss_d"][-1] < -100

# %% [markdown]
# ## 3. The verdict
#
# Same architecture, same initial weights, same data order, same number of steps:

# %%
print(f"{'loop':18s} FID after {steps_compare} steps (untrained: {fid_init:.0f})")
for name, value in results.items():
    print(f"{name:18s} {value:8.1f}")
fig, axes = plt.subplots(1, 5, figsize=(15, 3.2))
for ax, (name, tr) in zip(
    axes,
    [
        ("correct", None),
        ("no_detach", tr_no_detach),
        ("one_backward", tr_one),
        ("joint_step_stale", tr_stale),
        ("wrong_sign", tr_sign),
    ],
):
    grid = (
        trainer.snapshots[[s for s, _ in trainer.snapshots].index(steps_compare)][1]
        if tr is None
        else tr.snapshot()
    )
    viz.show_images(grid[:36], nrow=6, title=f"{name}\nFID {results[name]:.0f}", ax=ax)
# the correct loop from the same start ends at exactly results["correct"];
# every bug ends clearly worse (the stale joint step is the mildest)
for name in ("no_detach", "one_backward", "joint_step_stale", "wrong_sign"):
    assert results[name] > 1.1 * results["correct"], name

# %% [markdown]
# | mistake | signature |
# |---|---|
# | both losses on one forward of D, D stepped between the backwards | `RuntimeError` (graph freed, or weights modified in place) |
# | no `detach`, G step through the freed $G(z)$ graph | `RuntimeError` (backward through the graph a second time) |
# | … "fixed" with `retain_graph=True`, G's grads not zeroed in between | G's gradient polluted by $\nabla_G \mathcal L_D$; learns slower |
# | no `detach`, `retain_graph=True`, `opt_g.zero_grad()` before G's backward | not a bug: the correct update, one wasted backward through G |
# | one `backward` through both nets | $D(G(z))$ pinned at 0.5, $D(x) \to 1$; G stalls |
# | both optimisers together + stale D step | both nets get each other's gradients; learns slower |
# | `log(sigmoid(.))` | `inf` loss and `nan` weights once a fake's logit passes 16.6 (or any logit falls below −104) |
# | wrong-sign D loss | $D(x) \to 0$, $D(G(z)) \to 1$, $\mathcal L_D \to -\infty$; G stalls |
#
# `tests/test_gan_bugs.py` checks each of these signatures.

# %% [markdown]
# ## Exercises
#
# **Exercise 1.** Write the discriminator step: draw fakes with `G(G.sample_latent(len(real)))`,
# compute the loss on real images and *detached* fakes (`course_lib.gan.d_loss` is allowed),
# zero D's gradients, backpropagate, step `opt_d`, and return the loss as a float.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "ch03-ex1", "locked": false, "schema_version": 3, "solution": true, "task": false}
from course_lib import gan


def discriminator_step(G, D, opt_d, real):
    """One update of D on a batch real (B, 1, 28, 28); returns loss_d as a float."""
    ### BEGIN SOLUTION
    fake = G(G.sample_latent(len(real)))
    loss = gan.d_loss(D(real), D(fake.detach()))
    opt_d.zero_grad()
    loss.backward()
    opt_d.step()
    return loss.item()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch03-ex1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from course_lib.checks.ch03 import check_d_step

check_d_step(discriminator_step)

# %% [markdown]
# **Exercise 2.** Write the generator step: fresh fakes `G(G.sample_latent(batch_size))`, a
# forward through `D`, the non-saturating loss, and an update of `G` only. Return the loss as
# a float.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "ch03-ex2", "locked": false, "schema_version": 3, "solution": true, "task": false}
from course_lib import gan


def generator_step(G, D, opt_g, batch_size):
    """One update of G with the non-saturating loss; returns loss_g as a float."""
    ### BEGIN SOLUTION
    fake = G(G.sample_latent(batch_size))
    loss = gan.g_loss_nonsaturating(D(fake))
    opt_g.zero_grad()
    loss.backward()
    opt_g.step()
    return loss.item()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch03-ex2-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from course_lib.checks.ch03 import check_g_step

check_g_step(generator_step)

# %% [markdown]
# ## Where next
#
# The MLP GAN learns, but slowly, and its digits stay noisy. Chapter 4 replaces both networks
# by convolutional ones (DCGAN), conditions them on the digit class, and measures how much
# that buys at equal training time.
