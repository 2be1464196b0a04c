r"""Mode coverage on the 2-D toy mixtures: the protocol of VEEGAN and PacGAN (chapter 9; chapter 5 (mode collapse))."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._inputs import ArrayLike, _as_float64


class ModeCoverage(NamedTuple):
    """Modes captured (an int out of K) and the fraction of high-quality samples."""

    modes: int
    high_quality: float


def mode_coverage(samples: ArrayLike, centres: ArrayLike, std: float, threshold: float = 3.0) -> ModeCoverage:
    r"""Modes captured and % high quality, the protocol of VEEGAN and PacGAN (chapter 9; chapter 5 (mode collapse)).

    * A sample is **high quality** when it lies within ``threshold`` standard
      deviations of its nearest centre: :math:`\min_k \lVert x - c_k\rVert \le 3\sigma`.
    * A mode is **captured** when at least one high-quality sample has it as nearest centre.

    For samples of the true 2-D mixture, :math:`P(\lVert x - c\rVert \le 3\sigma) = 1 - e^{-9/2} \approx 98.9\%`.
    """
    x = _as_float64(samples, "samples")
    c = _as_float64(centres, "centres")
    if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1]:
        raise ValueError(f"samples (n, D) and centres (K, D) must agree; got {x.shape} and {c.shape}")
    if len(x) == 0 or len(c) == 0:
        raise ValueError("need at least one sample and one centre")
    if not std > 0 or not threshold > 0:
        raise ValueError(f"std and threshold must be positive; got std={std}, threshold={threshold}")
    from scipy.spatial.distance import cdist

    dist = cdist(x, c)  # (n, K) Euclidean distances to the centres
    nearest = dist.argmin(1)
    hq = dist[np.arange(len(x)), nearest] <= threshold * std
    return ModeCoverage(int(np.unique(nearest[hq]).size), float(hq.mean()))
