"""Editing images with generative models (chapter 12).

* GAN inversion by optimisation (Zhu et al., 2016, "Generative visual manipulation on the
  natural image manifold") is :func:`course_lib.restoration.latent_restore` with the identity
  operator: chapter 11's latent restoration with nothing missing.
* :func:`thickness` and :func:`slant`: attributes measured on the images themselves.
* :func:`attribute_direction`: a linear direction in a latent space along which an attribute
  grows, found by least-squares regression of the attribute on the codes (as InterFaceGAN does
  with a linear model: Shen et al., 2020); :func:`edit_codes` moves codes along it.
"""

from __future__ import annotations

import numpy as np
import torch


def _check_digits(x: torch.Tensor) -> None:
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"images must be (N, 1, H, W), got shape {tuple(x.shape)}")


def thickness(images: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Mean stroke width in pixels (chapter 12): the ink's area (pixels above ``threshold``)
    divided by the length of its skeleton (scikit-image's ``skeletonize``). (N,) float; an image
    with no ink is an error."""
    from skimage.morphology import skeletonize

    _check_digits(images)
    ink = (images[:, 0] > threshold).numpy()
    out = []
    for i, b in enumerate(ink):
        length = skeletonize(b).sum()
        if length == 0:
            raise ValueError(f"image {i} has no ink above {threshold}")
        out.append(b.sum() / length)
    return torch.tensor(np.array(out), dtype=torch.float32)


def slant(images: torch.Tensor) -> torch.Tensor:
    """The shear of the ink (chapter 12): Σ I·(c − c̄)(r − r̄) / Σ I·(r − r̄)² over pixel rows r and
    columns c weighted by intensity I, with the row axis pointing *up*: positive when the digit
    leans right, as the moment-based deslanting of handwriting measures it. (N,) float."""
    _check_digits(images)
    w = images[:, 0].double()  # (N, H, W)
    h, wd = w.shape[-2:]
    r = -torch.arange(h, dtype=torch.float64).view(1, h, 1)  # up is positive
    c = torch.arange(wd, dtype=torch.float64).view(1, 1, wd)
    mass = w.sum((1, 2)).clamp_min(1e-12)
    rm = (w * r).sum((1, 2)) / mass
    cm = (w * c).sum((1, 2)) / mass
    cov = (w * (r - rm.view(-1, 1, 1)) * (c - cm.view(-1, 1, 1))).sum((1, 2))
    var = (w * (r - rm.view(-1, 1, 1)).square()).sum((1, 2))
    return (cov / var.clamp_min(1e-12)).float()


def attribute_direction(codes: torch.Tensor, values: torch.Tensor, ridge: float = 0.0) -> torch.Tensor:
    """The unit direction along which an attribute grows fastest under a linear model (chapter 12):
    least squares ``values ≈ codes @ w + b`` (with an optional ridge penalty ``ridge·‖w‖²``), and
    w / ‖w‖. ``codes`` (N, d), ``values`` (N,). Returns (d,)."""
    if codes.ndim != 2 or values.shape != (codes.shape[0],):
        raise ValueError(f"codes must be (N, d) and values (N,), got {tuple(codes.shape)} and {tuple(values.shape)}")
    z = codes.double() - codes.double().mean(0)
    v = values.double() - values.double().mean()
    w = torch.linalg.solve(z.T @ z + ridge * torch.eye(z.shape[1], dtype=z.dtype), z.T @ v)
    return (w / w.norm()).float()


def edit_codes(codes: torch.Tensor, direction: torch.Tensor, strengths: torch.Tensor) -> torch.Tensor:
    """``codes`` moved by each of ``strengths`` along ``direction``: (S, N, d) for (N, d) codes
    and S strengths."""
    return codes.unsqueeze(0) + strengths.view(-1, 1, 1) * direction.view(1, 1, -1)
