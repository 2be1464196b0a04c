r"""The Inception Score (Salimans et al., 2016), chapter 9."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ._inputs import ArrayLike, _as_float64


def inception_score(
    probs: ArrayLike, splits: int = 10, classifier: Any = None, batch_size: int = 500
) -> tuple[float, float]:
    r"""Inception Score (Salimans et al., 2016): mean and std over ``splits`` chunks.

    .. math:: \mathrm{IS} = \exp\Big(\mathbb E_x\, \mathrm{KL}\big(p(y\mid x)\,\|\,p(y)\big)\Big),
              \quad p(y) = \mathbb E_x\, p(y\mid x)

    ``probs`` (N, K) are class probabilities (rows sum to one), or images if
    ``classifier`` is given (its softmax is taken). Ranges from 1 (every
    image gets the same prediction) to K (confident and all classes equally used).
    """
    if classifier is not None:
        from ..features import probabilities

        probs = probabilities(classifier, torch.as_tensor(probs), batch_size=batch_size)
    p = _as_float64(probs, "probs")
    if p.ndim != 2:
        raise ValueError(f"probs must be (N, K) class probabilities; got shape {p.shape}")
    if p.shape[0] == 0:
        raise ValueError(f"probs has no samples (shape {p.shape}); pass the probabilities of at least one image.")
    if p.shape[1] == 0:
        raise ValueError(f"probs has 0 classes (shape {p.shape}); pass softmax outputs over K >= 1 classes.")
    if p.min() < 0:
        raise ValueError("probs has negative entries; pass softmax probabilities, not logits.")
    sums = p.sum(1)
    if np.abs(sums - 1).max() > 1e-3:
        raise ValueError(
            f"each row of probs must sum to 1; row sums range over [{sums.min():.4g}, {sums.max():.4g}]. "
            "Pass softmax(logits), e.g. course_lib.features.probabilities(classifier, images)."
        )
    if not 1 <= splits <= len(p):
        raise ValueError(f"splits={splits} must be between 1 and the number of samples ({len(p)}).")
    scores = []
    for chunk in np.array_split(p, splits):
        py = chunk.mean(0, keepdims=True)  # (1, K): marginal p(y) of this chunk
        kl = (_xlogy(chunk, chunk) - _xlogy(chunk, py)).sum(1)  # (n,): KL(p(y|x) || p(y))
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def _xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.special import xlogy

    return xlogy(x, np.broadcast_to(y, x.shape))
