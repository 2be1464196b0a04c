"""Plotting helpers: image grids, training curves, 2-D samples (chapter 0).

Every function draws on a Matplotlib ``Axes`` (a new one if none is given)
and returns it, so notebooks can compose figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


def image_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2) -> np.ndarray:
    """Tile ``(N, C, H, W)`` images in [0, 1] into one ``(H', W', C)`` or ``(H', W')`` array."""
    from torchvision.utils import make_grid

    if images.ndim == 3:  # (N, H, W): grey without a channel axis
        images = images.unsqueeze(1)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be (N, 1|3, H, W), got shape {tuple(images.shape)}")
    if not torch.isfinite(images).all():
        raise ValueError("images contain NaN or inf; check the model that produced them.")
    grid = make_grid(images.detach().float().cpu().clamp(0, 1), nrow=nrow, padding=padding, pad_value=1.0)
    grid = grid.permute(1, 2, 0).numpy()  # (H', W', 3)
    return grid[..., 0] if images.shape[1] == 1 else grid


def show_images(
    images: torch.Tensor, nrow: int = 8, title: str | None = None, ax: plt.Axes | None = None
) -> plt.Axes:
    """Show a grid of images in [0, 1] (grey or RGB)."""
    grid = image_grid(images, nrow=nrow)
    if ax is None:
        ncol = min(nrow, len(images))
        nrows = -(-len(images) // nrow)
        _, ax = plt.subplots(figsize=(max(2.0, 0.6 * ncol), max(2.0, 0.6 * nrows)))
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def plot_history(
    history: Mapping[str, Sequence[float]],
    keys: Sequence[str] | None = None,
    ax: plt.Axes | None = None,
    xlabel: str = "step",
    logy: bool = False,
) -> plt.Axes:
    """Plot training curves from a ``{name: [values per step]}`` history."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for key in keys or list(history):
        if key not in history:
            raise KeyError(f"history has no {key!r}; it has {sorted(history)}")
        ax.plot(np.asarray(history[key], dtype=float), label=key)
    ax.set_xlabel(xlabel)
    if logy:
        ax.set_yscale("log")
    ax.legend()
    return ax


def plot_samples_2d(
    samples: torch.Tensor,
    centres: torch.Tensor | None = None,
    ax: plt.Axes | None = None,
    title: str | None = None,
    s: float = 2.0,
) -> plt.Axes:
    """Scatter 2-D samples ``(n, 2)``, with mode centres as red crosses if given."""
    samples = torch.as_tensor(samples).detach().cpu()
    if samples.ndim != 2 or samples.shape[1] != 2:
        raise ValueError(f"samples must be (n, 2), got {tuple(samples.shape)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(samples[:, 0], samples[:, 1], s=s, alpha=0.5, label="samples")
    if centres is not None:
        c = torch.as_tensor(centres).cpu()
        ax.scatter(c[:, 0], c[:, 1], marker="x", c="red", s=40, label="mode centres")
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return ax
