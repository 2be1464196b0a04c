"""Test-time self-ensembles and sharpening for image-to-image models (chapter 12).

A network trained with a per-pixel loss (cross-entropy, L2) predicts each pixel's conditional
*mean*: where the stroke's place is uncertain it paints grey. Two cheap fixes at test time,
neither of which trains anything or reads a label:

* :func:`shift_ensemble`: the model's outputs for shifted copies of the input, shifted back and
  averaged: the geometric self-ensemble of Timofte et al. (2016) and Lim et al. (2017, EDSR),
  with the small shifts that leave a digit's class alone in place of their flips and rotations.
* :func:`sharpness_for_entropy`: the factor ``k`` on the logits that gives the outputs the mean
  per-pixel binary entropy (:func:`course_lib.distributions.bernoulli_entropy`) of a reference
  set of real images: a grey-level statistic matched between two image sets, as histogram
  matching matches a whole histogram.

:class:`SharpenedEnsemble` wraps a model that has ``logits`` (such as
:class:`course_lib.translation.Translator`) with both.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
from torch import nn

from .distributions import bernoulli_entropy


def shift_ensemble(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, radius: int = 1
                   ) -> torch.Tensor:
    r"""The mean over the :math:`(2r+1)^2` circular shifts :math:`s` by up to ``radius`` pixels
    in each direction of :math:`s^{-1}(f(s(x)))` (chapter 12).

    ``fn`` maps (B, C, H, W) to maps of the same height and width (logits, say; averaging
    logits, not probabilities, keeps a confident vote confident). Circular shifts are exact
    inverses of one another, so the ensemble of a shift-equivariant ``fn`` is ``fn`` itself;
    they suit images with blank borders, such as digits, whose ink never wraps around.
    ``radius=0`` is ``fn(x)``.
    """
    if radius < 0:
        raise ValueError(f"radius={radius} must be >= 0")
    if x.ndim != 4 or 2 * radius >= min(x.shape[-2:]):
        raise ValueError(f"x must be (B, C, H, W) with H, W > 2*radius, got shape {tuple(x.shape)}")
    total = None
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            out = torch.roll(fn(torch.roll(x, (dy, dx), (-2, -1))), (-dy, -dx), (-2, -1))
            total = out if total is None else total + out
    return total / (2 * radius + 1) ** 2


def mean_entropy(probs: torch.Tensor) -> float:
    """The mean per-pixel binary entropy of images in [0, 1], in nats (0 for binary images)."""
    return float(bernoulli_entropy(probs).mean())


def sharpness_for_entropy(logits: torch.Tensor, reference: torch.Tensor, bounds: tuple[float, float] = (1 / 64, 64.0),
                          iters: int = 50, clip: bool = False) -> float:
    r"""The factor :math:`k > 0` for which :math:`\sigma(k\,l)` has the mean per-pixel binary
    entropy of ``reference`` (chapter 12).

    ``logits``: any shape; ``reference``: images in [0, 1]. Each pixel's entropy
    :math:`H(\sigma(k l))` falls as :math:`k` grows (unless :math:`l = 0`), so their mean does
    too and bisection on :math:`\log k` within ``bounds`` finds the one :math:`k`. ``k > 1``
    sharpens, ``k < 1`` softens. A target outside what ``bounds`` can reach is an error, or
    with ``clip=True`` a warning and the nearer bound (an untrained model's logits are all near
    0: no sensible ``k`` makes them as sure as real images).
    """
    target = mean_entropy(reference)
    logits = logits.detach().float()
    lo, hi = math.log(bounds[0]), math.log(bounds[1])

    def at(log_k: float) -> float:  # the mean entropy at k = exp(log_k)
        return mean_entropy(torch.sigmoid(logits * math.exp(log_k)))

    if not at(hi) <= target <= at(lo):
        msg = (f"no k in {bounds} gives the reference's mean entropy {target:.4f} nats "
               f"(from {at(lo):.4f} to {at(hi):.4f})")
        if not clip:
            raise ValueError(msg)
        warnings.warn(msg + "; using the nearer bound", stacklevel=2)
        return bounds[1] if at(hi) > target else bounds[0]
    for _ in range(iters):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if at(mid) > target else (lo, mid)
    return math.exp((lo + hi) / 2)


class SharpenedEnsemble(nn.Module):
    r"""A model with ``logits`` (e.g. :class:`course_lib.translation.Translator`), applied as
    :math:`\sigma\big(k \cdot \text{shift\_ensemble}(\text{logits}, x, r)\big)` (chapter 12).

    ``sharpness`` :math:`k` is a buffer (saved with the state dict); :meth:`calibrate` sets it
    by :func:`sharpness_for_entropy`. The wrapped model's parameters are its own.
    """

    def __init__(self, model: nn.Module, radius: int = 1, sharpness: float = 1.0):
        super().__init__()
        if not callable(getattr(model, "logits", None)):
            raise TypeError(f"{type(model).__name__} has no logits method to ensemble")
        if radius < 0:
            raise ValueError(f"radius={radius} must be >= 0")
        self.model, self.radius = model, radius
        self.register_buffer("sharpness", torch.tensor(float(sharpness)))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.sharpness * shift_ensemble(self.model.logits, x, self.radius)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))

    @torch.no_grad()
    def calibrate(self, sources: torch.Tensor, reference: torch.Tensor, batch_size: int = 250) -> float:
        """Set ``sharpness`` so that the outputs on ``sources`` (inputs, unlabelled) have the mean
        per-pixel entropy of ``reference`` (real images of the output domain); returns it. Where
        no factor within :func:`sharpness_for_entropy`'s bounds does (a barely trained model),
        it warns and takes the nearer bound."""
        was = self.training
        self.eval()
        try:
            logits = torch.cat([shift_ensemble(self.model.logits, sources[i:i + batch_size], self.radius)
                                for i in range(0, len(sources), batch_size)])
        finally:
            self.train(was)
        k = sharpness_for_entropy(logits, reference, clip=True)
        self.sharpness.fill_(k)
        return k
