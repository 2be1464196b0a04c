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
    _, _, nearest, hq = _nearest_modes(samples, centres, std, threshold)
    return ModeCoverage(int(np.unique(nearest[hq]).size), float(hq.mean()))


def _nearest_modes(samples: ArrayLike, centres: ArrayLike, std: float, threshold: float):
    """Samples and centres as float64 arrays, each sample's nearest centre, and whether it is
    high quality (within ``threshold * std`` of that centre): the protocol's one computation."""
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
    return x, c, nearest, dist[np.arange(len(x)), nearest] <= threshold * std


class ModeStatistics(NamedTuple):
    """How the high-quality samples sit on their modes (chapter 5): their spread around the
    nearest centre in units of the mixture's σ, and the KL of the mode histogram from uniform."""

    spread: float
    kl_uniform: float


def mode_statistics(samples: ArrayLike, centres: ArrayLike, std: float, threshold: float = 3.0) -> ModeStatistics:
    r"""Spread and mode balance of the high-quality samples (chapter 5; PacGAN's reverse KL).

    * ``spread``: the standard deviation of the high-quality samples' offsets from their nearest
      centre, per coordinate, divided by σ. Samples of the true mixture, truncated at 3σ, give
      :math:`\sqrt{(1 - e^{-9/2}(1 + 9/2)) / (1 - e^{-9/2})} \approx 0.974`; samples piled onto the
      centres give about 0 (the high-quality fraction alone rewards them).
    * ``kl_uniform``: :math:`\sum_k p_k \log(K p_k)`, the KL divergence of the histogram of
      nearest modes of the high-quality samples from the uniform distribution over the K modes
      (Lin et al., 2018, report it as the reverse KL); 0 when every mode gets the same share,
      :math:`\log K` when one mode gets all.
    """
    x, c, nearest, hq = _nearest_modes(samples, centres, std, threshold)
    if not hq.any():
        raise ValueError("no high-quality sample: the spread and the mode histogram are undefined")
    offsets = x[hq] - c[nearest[hq]]  # (n_hq, D)
    p = np.bincount(nearest[hq], minlength=len(c)) / hq.sum()
    kl = float(np.sum(p[p > 0] * np.log(len(c) * p[p > 0])))
    return ModeStatistics(float(np.sqrt(np.mean(offsets**2)) / std), kl)
