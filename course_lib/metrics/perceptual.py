r"""A perceptual distance from the course's own classifier (appendix; Zhang et al., 2018).

LPIPS (Zhang et al., 2018, eq. 1) compares two images through the activations of a trained
network: at each layer :math:`l` the channel vectors are scaled to unit length,
:math:`\hat f_l = f_l / \lVert f_l \rVert_2` at every position, and

.. math:: d(x, y) = \sum_l \frac{1}{H_l W_l} \sum_{h, w}
          \lVert w_l \odot (\hat f_l^{hw}(x) - \hat f_l^{hw}(y)) \rVert_2^2 .

LPIPS itself learns the channel weights :math:`w_l` on human judgements and uses an AlexNet
or VGG backbone: both need downloaded weights, which the course cannot fetch. This module
computes the same equation with :math:`w_l = 1` (the paper's unweighted variant) on the four
ReLU outputs of :class:`course_lib.features.MNISTClassifier` (three convolutional stages and
the 128-d feature layer, :math:`H = W = 1` there), the network chapter 9
trains for FID on digits. It measures what the classifier's features see, so it is a
perceptual distance *for digits*, not for photos.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..validate import check_images

EPS = 1e-10  # as LPIPS: keeps a zero feature vector at zero instead of 0/0


def _layers(extractor: nn.Module) -> list[nn.Module]:
    """The modules whose outputs are compared: every ReLU of ``extractor.body`` (four for
    :class:`~course_lib.features.MNISTClassifier`), as LPIPS compares relu1 ... relu5."""
    body = getattr(extractor, "body", None)
    if not isinstance(body, nn.Sequential):
        raise TypeError("the extractor needs a `body` nn.Sequential with ReLU layers "
                        "(as course_lib.features.MNISTClassifier has)")
    out = [m for m in body if isinstance(m, nn.ReLU)]
    if not out:
        raise TypeError("the extractor's body has no ReLU layer")
    return out


def unit_normalise(f: torch.Tensor) -> torch.Tensor:
    """Scale each position's channel vector of ``f (B, C, H, W)`` to unit length (LPIPS)."""
    return f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + EPS)


@torch.no_grad()
def perceptual_distance(
    x: torch.Tensor, y: torch.Tensor, extractor: nn.Module | None = None, batch_size: int = 500
) -> np.ndarray:
    r"""Per-image distance :math:`d(x_i, y_i)` of the module docstring, shape ``(N,)``.

    ``x`` and ``y``: images ``(N, 1, 28, 28)`` in [0, 1]. ``extractor`` defaults to the
    course's shipped MNIST classifier (:func:`course_lib.features.load_mnist_classifier`).
    Zero for identical images, symmetric, and small when the classifier's features barely
    change: a one-pixel shift moves it far less than PSNR (appendix).
    """
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {tuple(x.shape)} and {tuple(y.shape)}")
    x, y = check_images(x, "x"), check_images(y, "y")
    if extractor is None:
        from ..features import load_mnist_classifier

        extractor = load_mnist_classifier()
    layers = _layers(extractor)
    was_training = extractor.training
    extractor.eval()
    grabbed: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: grabbed.append(out)) for m in layers]
    try:
        dist = []
        for start in range(0, len(x), batch_size):
            grabbed.clear()
            both = torch.cat([x[start : start + batch_size], y[start : start + batch_size]]).float()
            extractor.features(both)  # the hooks keep each layer's (2B, C, H, W) or (2B, C) output
            d = 0.0
            for f in grabbed:
                f = f if f.ndim == 4 else f[:, :, None, None]  # a vector layer: H = W = 1
                fx, fy = unit_normalise(f).chunk(2)
                d = d + (fx - fy).pow(2).sum(dim=1).mean(dim=(1, 2))  # (B,)
            dist.append(d)
    finally:
        for h in hooks:
            h.remove()
        extractor.train(was_training)
    return torch.cat(dist).double().numpy()
