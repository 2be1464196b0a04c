r"""Conditioning an unconditional GAN on clusters of its training images (chapter 4).

A class-conditional GAN with the R1 penalty reaches the real-vs-real floor of classifier-FID
on the embedded digits, while the same networks without labels stay far from it: without a
discrete variable, the generator must split one continuous latent space into ten separated
digits, and the images it draws between them are neither. Labels are not needed to give it
that variable. Cluster the training images, train the conditional GAN on the
cluster indices, and sample a cluster with its frequency in the data before drawing an image
of it (cluster-conditioned GANs: Sage et al., 2018, cluster pretrained features once; the
self-conditioned GAN of Liu et al., 2020, re-clusters the discriminator's features during
training). The result is an unconditional model of the data: :math:`p(x) = \sum_k \pi_k\,
p_G(x \mid k)`, with :math:`\pi_k` the clusters' shares of the training set.

The clusters are found in the training digits blurred by a 3x3 box filter, so that a stroke
shifted by a pixel stays close to itself. The recipe uses spectral clustering (Shi & Malik,
2000; Ng, Jordan & Weiss, 2002): connect each digit to its 10 nearest neighbours, embed the
digits with the first k eigenvectors of that graph's normalised Laplacian, and group them there
(scikit-learn's ``SpectralClustering``, ``cluster_qr`` assignment; Damle et al., 2019). A group
is held together by chains of near neighbours, so it can follow a digit's long, curved spread
through pixel space (a 7 slanting by degrees) that k-means' round clusters cut across; on the
digits its groups hold one digit more often (:func:`purity`, printed in chapter 4).
``method="kmeans"`` is the k-means alternative.
``benchmarks/bench_gan.py`` measures the gain.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .gan import Generator

CLUSTERINGS = ("spectral", "kmeans")


def cluster_labels(images: torch.Tensor, k: int, seed: int = 0, method: str = "spectral") -> torch.Tensor:
    """Cluster indices of ``images`` (N, C, H, W) blurred by a 3x3 box filter: (N,) ints in
    [0, k) (chapter 4). ``method``: ``"spectral"`` (a 10-nearest-neighbour graph, scikit-learn's
    ``SpectralClustering`` with ``cluster_qr``) or ``"kmeans"`` (``KMeans``, three k-means++
    starts, the best kept). Deterministic for a ``seed``."""
    from sklearn.cluster import KMeans, SpectralClustering

    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    if not isinstance(k, int) or not 1 <= k < len(images):
        raise ValueError(f"k={k!r}: choose an int between 1 and the number of images ({len(images)}) - 1")
    if method not in CLUSTERINGS:
        raise ValueError(f"method={method!r}: choose one of {CLUSTERINGS}")
    blurred = F.avg_pool2d(images.float(), 3, stride=1, padding=1, count_include_pad=False)  # (N, C, H, W)
    x = blurred.flatten(1).numpy()  # (N, C*H*W)
    if method == "kmeans":
        return torch.from_numpy(KMeans(n_clusters=k, n_init=3, random_state=seed).fit(x).labels_).long()
    graph = SpectralClustering(k, affinity="nearest_neighbors", n_neighbors=min(10, len(x) - 1),
                               assign_labels="cluster_qr", random_state=seed)
    return torch.from_numpy(graph.fit(x).labels_).long()


def purity(clusters: torch.Tensor, labels: torch.Tensor) -> float:
    """The share of items whose label is their cluster's most common label (chapter 4): 1 when
    every cluster holds one class; about the largest class's share for random clusters of a few
    items each. ``clusters``, ``labels``: (N,) non-negative ints."""
    if clusters.shape != labels.shape or clusters.ndim != 1 or len(clusters) == 0:
        raise ValueError(f"clusters and labels must be two (N,) tensors of one length N > 0, got shapes "
                         f"{tuple(clusters.shape)} and {tuple(labels.shape)}")
    n_labels = int(labels.max()) + 1
    majority = sum(int(torch.bincount(labels[clusters == k], minlength=n_labels).max())
                   for k in clusters.unique())
    return majority / len(clusters)


class ClusterConditioned(nn.Module):
    r"""An unconditional sampler made of a generator conditioned on ``k`` clusters and the
    clusters' sizes (chapter 4): :meth:`sample` draws a cluster :math:`k \sim \pi` (its share of
    the training images), then an image :math:`G(z, k)`.

    ``generator``: a :class:`course_lib.gan.Generator` with ``n_classes = k``; ``counts``:
    (k,) training images per cluster.
    """

    def __init__(self, generator: Generator, counts: torch.Tensor):
        super().__init__()
        if counts.ndim != 1 or len(counts) != generator.n_classes or counts.sum() <= 0 or (counts < 0).any():
            raise ValueError(f"counts must be {generator.n_classes} non-negative numbers with a positive sum, "
                             f"got shape {tuple(counts.shape)}")
        self.generator = generator
        self.register_buffer("weights", counts.float() / counts.sum())  # (k,): the clusters' shares
        self.latent_dim, self.image_shape = generator.latent_dim, generator.image_shape
        self.n_classes = 0  # to the outside, an unconditional model

    @property
    def clusters(self) -> int:
        return len(self.weights)

    def draw_clusters(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` cluster indices drawn with the clusters' shares: (n,) ints."""
        return torch.multinomial(self.weights.cpu(), n, replacement=True, generator=generator)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.generator(z, labels)

    @torch.no_grad()
    def sample(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None,
               z: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` images (n, C, H, W) in [0, 1]: clusters drawn with their shares, unless
        ``labels`` (cluster indices) are given; ``z`` fixes the latent codes."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        if labels is None:
            labels = self.draw_clusters(n, generator)
        return self.generator.sample(n, labels, generator=generator, z=z)
