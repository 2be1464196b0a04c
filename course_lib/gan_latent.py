r"""Latent-space walks of a generator, scored against real digits (chapter 4).

A path between two latent codes is only interesting if the images along it are
digits. :func:`path_precision` decodes interpolation paths
(:func:`course_lib.gan.interpolate_latents`) and measures the fraction of frames
that land on the manifold of real digits in the feature space of the course's MNIST
classifier: the improved precision of Kynkäänniemi et al. (2019) on unit-normalised
features (:func:`course_lib.metrics.precision_recall`, chapter 9). The classifier's
confidence would not do: it reads uniform noise as a digit with high confidence,
while noise, like an untrained generator's output, has a precision near 0
(``tests/test_gan_latent.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from .features import extract
from .gan import Generator, interpolate_latents
from .metrics import precision_recall


def interpolation_paths(z0: torch.Tensor, z1: torch.Tensor, n: int, spherical: bool = True) -> torch.Tensor:
    """Paths between the rows of ``z0`` and ``z1`` (``(P, d)`` each): ``(P, n, d)`` codes (chapter 4)."""
    if z0.shape != z1.shape or z0.ndim != 2:
        raise ValueError(f"z0 and z1 must be (P, d) of one shape, got {tuple(z0.shape)}, {tuple(z1.shape)}")
    return torch.stack([interpolate_latents(a, b, n, spherical) for a, b in zip(z0, z1)])


@torch.no_grad()
def path_precision(
    G: Generator, classifier: nn.Module, paths: torch.Tensor, real_features: torch.Tensor, k: int = 3,
) -> float:
    r"""Fraction of the frames decoded along ``paths`` that lie on the real-digit manifold (chapter 4).

    ``paths`` is ``(P, n, d)`` (from :func:`interpolation_paths`), ``real_features``
    ``(N, f)`` are the classifier's features of held-out real digits. A frame counts
    if its unit-normalised feature falls inside the :math:`k`-NN ball of some real
    feature (improved precision, Kynkäänniemi et al., 2019). ``G`` is anything with
    ``sample(n, z=...)``.
    """
    p, n, d = paths.shape
    frames = G.sample(p * n, z=paths.reshape(p * n, d))  # (P*n, 1, 28, 28)
    fake = extract(classifier, frames)  # (P*n, f)
    return precision_recall(real_features.numpy(), fake.numpy(), k=k, normalize=True)[0]
