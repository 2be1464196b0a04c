r"""Judging a discriminator as a two-sample test: accuracy, ROC curve and AUC (chapter 9)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from ._inputs import ArrayLike, _as_float64


class DiscriminatorReport(NamedTuple):
    """Accuracy at ``threshold``, ROC AUC and the ROC curve (false/true positive rates, thresholds)."""

    accuracy: float
    auc: float
    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray


@torch.no_grad()
def _scores(discriminator: Any, images: ArrayLike, batch_size: int) -> np.ndarray:
    x = torch.as_tensor(images)
    was_training = getattr(discriminator, "training", False)
    if was_training:
        discriminator.eval()
    try:
        out = torch.cat([discriminator(x[i : i + batch_size]).reshape(-1).float().cpu()
                         for i in range(0, len(x), batch_size)])
    finally:
        if was_training:
            discriminator.train()
    if len(out) != len(x):
        raise ValueError(f"the discriminator must give one score per image; got {len(out)} for {len(x)}")
    return out.numpy()


def discriminator_metrics(
    real_scores: ArrayLike, fake_scores: ArrayLike, threshold: float = 0.0,
    discriminator: Any = None, batch_size: int = 500,
) -> DiscriminatorReport:
    r"""How well scores separate real (label 1) from fake (label 0): accuracy, ROC, AUC (chapter 9).

    Scores are logits by default (a sample is called real when score > 0); pass
    ``threshold=0.5`` for probabilities. With ``discriminator=``, the first two
    arguments are images and are scored by it. The AUC equals
    :math:`P(s_{\text{real}} > s_{\text{fake}}) + \tfrac12 P(s_{\text{real}} = s_{\text{fake}})`:
    0.5 means the discriminator cannot tell the two apart. Uses scikit-learn's
    ``roc_curve`` and ``roc_auc_score``.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    if discriminator is not None:
        real_scores = _scores(discriminator, real_scores, batch_size)
        fake_scores = _scores(discriminator, fake_scores, batch_size)
    r = _as_float64(real_scores, "real_scores").reshape(-1)
    f = _as_float64(fake_scores, "fake_scores").reshape(-1)
    if len(r) == 0 or len(f) == 0:
        raise ValueError(f"need scores for both real and fake samples; got {len(r)} and {len(f)}")
    y = np.r_[np.ones(len(r)), np.zeros(len(f))]
    s = np.r_[r, f]
    acc = float(((s > threshold) == (y == 1)).mean())
    fpr, tpr, thr = roc_curve(y, s)
    return DiscriminatorReport(acc, float(roc_auc_score(y, s)), fpr, tpr, thr)
