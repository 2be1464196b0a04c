r"""k-nearest-neighbour metrics (chapter 9): precision/recall, density/coverage, copy detection.

* :func:`precision_recall` -- improved precision and recall, Kynkäänniemi et al. (2019);
* :func:`density_coverage` -- density and coverage, Naeem et al. (2020);
* :func:`nearest_distances`, :func:`memorisation_rate` -- the nearest-training-image test.

Each sample's k-NN ball has the radius :math:`\mathrm{NND}_k` = distance to its
k-th nearest neighbour in its own set. Distances are exact Euclidean distances
in float64 (``scipy.spatial.distance.cdist``: an exact copy is at distance 0,
which the fast ``|a|² + |b|² - 2ab`` formula does not give), computed in row chunks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
from scipy.spatial.distance import cdist

from ._inputs import ArrayLike, _features, _same_dim

CHUNK = 2048  # rows of a distance matrix held at once: 2048 x n float64


def _chunks(x: np.ndarray, y: np.ndarray, chunk: int = CHUNK) -> Iterator[tuple[int, np.ndarray]]:
    """(start, D) with D = cdist(x[start:start + chunk], y), shape (<= chunk, n_y)."""
    for start in range(0, len(x), chunk):
        yield start, cdist(x[start : start + chunk], y)


def knn_radii(features: ArrayLike, k: int = 3, chunk: int = CHUNK) -> np.ndarray:
    r""":math:`\mathrm{NND}_k(x_i)`: distance from each sample (n, d) to its k-th nearest *other* sample, shape (n,)."""
    x = _features(features, "features")
    if not 1 <= k < len(x):
        raise ValueError(f"k={k} needs at least k + 1 = {k + 1} samples; got {len(x)}. Lower k or add samples.")
    # index k of each sorted row: index 0 is the point itself, at distance 0
    return np.concatenate([np.partition(d, k, axis=1)[:, k] for _, d in _chunks(x, x, chunk)])


def _prepare(real: ArrayLike, fake: ArrayLike, k: int, normalize: bool, extractor: Any,
             batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    r = _features(real, "real", extractor, batch_size)
    f = _features(fake, "fake", extractor, batch_size)
    _same_dim(r, f, "real and fake")
    for name, x in (("real", r), ("fake", f)):
        if not 1 <= k < len(x):
            raise ValueError(f"k={k} needs at least k + 1 = {k + 1} {name} samples; got {len(x)}.")
    if normalize:
        r = r / np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-12)
        f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    return r, f


def precision_recall(
    real: ArrayLike, fake: ArrayLike, k: int = 3, normalize: bool = False, extractor: Any = None,
    batch_size: int = 500,
) -> tuple[float, float]:
    r"""Improved precision and recall (Kynkäänniemi et al., 2019), both in [0, 1]; chapter 9.

    The union of the k-NN balls of a set estimates the support of its distribution:

    .. math:: \mathrm{precision} = \frac1{n_f}\sum_j \mathbb 1\big[\exists i:\ \lVert f_j - r_i\rVert \le \mathrm{NND}_k(r_i)\big],\quad
              \mathrm{recall} = \frac1{n_r}\sum_i \mathbb 1\big[\exists j:\ \lVert r_i - f_j\rVert \le \mathrm{NND}_k(f_j)\big]

    Precision = fraction of fakes that look real (quality); recall = fraction of
    reals the fakes cover (diversity). Features (n, d), or images with ``extractor``.
    The default is the paper's definition, on raw features, with its k = 3.

    ``normalize=True`` first projects every feature onto the unit sphere. A
    classifier's feature *norm* tracks its confidence: noise images land near
    the origin, inside the huge k-NN balls of a few unusual real digits, and
    raw-feature precision calls pure noise "realistic" (chapter 9 shows it).
    """
    r, f = _prepare(real, fake, k, normalize, extractor, batch_size)
    rad_r, rad_f = knn_radii(r, k), knn_radii(f, k)
    fake_in = np.zeros(len(f), bool)  # (n_f,): inside some real ball
    real_in = np.zeros(len(r), bool)  # (n_r,): inside some fake ball
    for s, d in _chunks(f, r):  # d: (chunk of fakes, n_r)
        fake_in[s : s + len(d)] = (d <= rad_r[None]).any(1)
        real_in |= (d <= rad_f[s : s + len(d), None]).any(0)
    return float(fake_in.mean()), float(real_in.mean())


class DensityCoverage(NamedTuple):
    """Density (fidelity; expectation 1 for a perfect generator, unbounded) and coverage (diversity, in [0, 1])."""

    density: float
    coverage: float


def density_coverage(
    real: ArrayLike, fake: ArrayLike, k: int = 5, normalize: bool = False, extractor: Any = None,
    batch_size: int = 500,
) -> DensityCoverage:
    r"""Density and coverage (Naeem et al., 2020), chapter 9: k-NN balls around the *real* samples only.

    With real :math:`X_1..X_N`, fake :math:`Y_1..Y_M` and :math:`B_i = B(X_i, \mathrm{NND}_k(X_i))`:

    .. math:: \mathrm{density} = \frac{1}{kM}\sum_{j=1}^M \sum_{i=1}^N \mathbb 1[Y_j \in B_i],\qquad
              \mathrm{coverage} = \frac1N \sum_{i=1}^N \mathbb 1\big[\exists j:\ Y_j \in B_i\big].

    Density counts *how many* real balls contain each fake, so one outlier's
    huge ball adds at most 1/k per fake (precision counts it fully); coverage
    never builds balls around the fakes, so a fake outlier cannot inflate it
    (recall can). For fakes from the real distribution the paper shows
    :math:`\mathbb E[\mathrm{density}] = 1` and
    :math:`\mathbb E[\mathrm{coverage}] = 1 - \prod_{i=1}^k \frac{N-i}{M+N-i} \to 1 - 2^{-k}` for M = N.
    The paper's default is k = 5 on raw features. Features (n, d), or images with ``extractor``.
    """
    r, f = _prepare(real, fake, k, normalize, extractor, batch_size)
    rad_r = knn_radii(r, k)
    inside = 0  # number of (fake, real-ball) pairs with the fake inside
    covered = np.zeros(len(r), bool)  # (N,): ball i holds some fake
    for _, d in _chunks(f, r):  # d: (chunk of fakes, N)
        hit = d <= rad_r[None]
        inside += int(hit.sum())
        covered |= hit.any(0)
    return DensityCoverage(inside / (k * len(f)), float(covered.mean()))


def coverage_expectation(n_real: int, n_fake: int, k: int) -> float:
    r""":math:`\mathbb E[\mathrm{coverage}] = 1 - \prod_{i=1}^k \frac{N-i}{M+N-i}` for fakes from the real distribution (Naeem et al., 2020)."""
    return 1.0 - float(np.prod([(n_real - i) / (n_fake + n_real - i) for i in range(1, k + 1)]))


def nearest_distances(samples: ArrayLike, train: ArrayLike, chunk: int = CHUNK) -> np.ndarray:
    """Exact Euclidean distance from each sample (n, d) to its nearest training point (m, d), shape (n,).

    Pass flattened images for pixel distances (chapter 9's copy test).
    """
    x, t = _features(samples, "samples"), _features(train, "train")
    _same_dim(x, t, "samples and train")
    return np.concatenate([d.min(1) for _, d in _chunks(x, t, chunk)])


def memorisation_rate(samples: ArrayLike, train: ArrayLike, reference: ArrayLike) -> float:
    """Share of samples closer to the training set than any held-out real sample is (chapter 9).

    ``reference`` (m, d) are real samples the model never saw (e.g. a test
    split). No genuinely new image comes closer to ``train`` than the closest
    of them, so a sample below that distance is flagged as an (almost) exact
    copy. For samples from the data distribution the expected rate is about
    1 / (m + 1); for a generator that copies a share q of its outputs, about q.
    """
    threshold = nearest_distances(reference, train).min()
    return float((nearest_distances(samples, train) < threshold).mean())
