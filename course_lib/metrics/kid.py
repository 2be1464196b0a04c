r"""The Kernel Inception Distance (Bińkowski et al., 2018): unbiased MMD² with a cubic kernel (chapter 9)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._inputs import ArrayLike, _features, _same_dim


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    r"""The KID kernel :math:`k(x, y) = (x^\top y / d + 1)^3`, as a matrix (n_x, n_y)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    r"""Unbiased estimate of MMD² with :func:`polynomial_kernel` (Gretton et al., 2012).

    .. math:: \widehat{\mathrm{MMD}}^2 = \frac{1}{m(m-1)}\sum_{i\ne j} k(x_i,x_j)
              + \frac{1}{n(n-1)}\sum_{i\ne j} k(y_i,y_j) - \frac{2}{mn}\sum_{i,j} k(x_i,y_j)

    Its expectation is the population MMD² for every sample size, so it can be
    negative when the two distributions are equal.
    """
    m, n = len(x), len(y)
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2 * kxy.mean()
    )


def kid(
    features_a: ArrayLike, features_b: ArrayLike, subsets: int = 100, subset_size: int = 1000,
    seed: int | None = 0, extractor: Any = None, batch_size: int = 500,
) -> tuple[float, float]:
    """Kernel Inception Distance (Bińkowski et al., 2018): mean and std of :func:`mmd2_unbiased` over subsets.

    Each of ``subsets`` rounds draws ``subset_size`` samples without replacement
    from each set. Unbiased, so unlike FID its expectation does not depend on
    the sample size (chapter 9). Features (n, d), or images with ``extractor``.
    """
    a = _features(features_a, "features_a", extractor, batch_size)
    b = _features(features_b, "features_b", extractor, batch_size)
    _same_dim(a, b, "features_a and features_b")
    if subsets < 1:
        raise ValueError(f"subsets must be >= 1, got {subsets}")
    if subset_size < 2 or subset_size > min(len(a), len(b)):
        raise ValueError(
            f"subset_size={subset_size} must be between 2 and the smaller sample size "
            f"({len(a)} and {len(b)} samples); pass subset_size=min(n_a, n_b) or more samples."
        )
    rng = np.random.default_rng(seed)
    values = np.array([
        mmd2_unbiased(a[rng.choice(len(a), subset_size, replace=False)],
                      b[rng.choice(len(b), subset_size, replace=False)])
        for _ in range(subsets)
    ])
    return float(values.mean()), float(values.std())
