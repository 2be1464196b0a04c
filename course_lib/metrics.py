r"""Metrics for generative models: FID, KID, IS, precision/recall, mode coverage, discriminator ROC.

Derived and demonstrated in chapter 9 (evaluating generative models); the
mode-coverage protocol is the one of chapter 5 (PacGAN / VEEGAN toy mixtures).

Every sample-based metric takes **features** ``(n, d)`` (NumPy or torch), or
**images plus an extractor**: pass ``extractor=`` (e.g.
:func:`course_lib.features.load_mnist_classifier`) and the images are run
through :func:`course_lib.features.extract` first. Computations are done in
float64 NumPy; results are Python floats.

* :func:`frechet_distance`, :func:`fid` -- Heusel et al. (2017), with the trace
  of the matrix square root computed through a pivoted Cholesky factor (no
  ``sqrtm``, finite on rank-deficient covariances); :func:`fid_nuclear` is an
  independent route through a nuclear norm, used as the reference in tests.
* :func:`kid` -- Bińkowski et al. (2018): unbiased MMD² with the cubic kernel.
* :func:`inception_score` -- Salimans et al. (2016).
* :func:`precision_recall` -- Kynkäänniemi et al. (2019), k-NN balls.
* :func:`mode_coverage` -- Srivastava et al. (2017, VEEGAN), Lin et al. (2018, PacGAN).
* :func:`discriminator_metrics` -- accuracy, ROC curve and AUC (scikit-learn).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from scipy.linalg import lapack

ArrayLike = np.ndarray | torch.Tensor | Sequence[Any]


# --- input checks ---------------------------------------------------------------------------


def _as_float64(x: ArrayLike, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be numbers (a NumPy array or torch tensor); {err}") from err
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise ValueError(
            f"{name} contains {bad} NaN/inf value(s); metrics need finite numbers. Check the model "
            "that produced them (a diverged generator gives NaN images)."
        )
    return arr


def _features(x: ArrayLike, name: str, extractor: Any = None, batch_size: int = 500,
              min_n: int = 1) -> np.ndarray:
    """Features (n, d) as float64: ``x`` itself, or ``extract(extractor, x)`` if an extractor is given."""
    if extractor is not None:
        from .features import extract

        x = extract(extractor, torch.as_tensor(x), batch_size=batch_size)
    arr = _as_float64(x, name)
    if arr.ndim != 2:
        hint = " (images? pass extractor=, e.g. load_mnist_classifier())" if arr.ndim == 4 else ""
        raise ValueError(f"{name} must be features of shape (n, d); got shape {arr.shape}{hint}")
    if len(arr) < min_n:
        raise ValueError(f"{name} has {len(arr)} sample(s); this metric needs at least {min_n}.")
    return arr


def _same_dim(a: np.ndarray, b: np.ndarray, names: str) -> None:
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"{names} have different feature dimensions ({a.shape[-1]} vs {b.shape[-1]}); "
            "extract both with the same network."
        )


# --- Fréchet distance -----------------------------------------------------------------------


def gaussian_stats(features: ArrayLike, extractor: Any = None, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
    r"""Mean (d,) and unbiased covariance (d, d) of features (n, d): the Gaussian fitted by FID.

    :math:`\hat\Sigma = \frac{1}{n-1}\sum_i (x_i-\hat\mu)(x_i-\hat\mu)^\top` needs
    :math:`n \ge 2`; it has full rank only when :math:`n > d`.
    """
    x = _features(features, "features", extractor, batch_size)
    n, d = x.shape
    if n < 2:
        raise ValueError(
            f"A covariance needs at least 2 samples; got {n}. For a full-rank covariance of "
            f"{d} features use more than {d} samples (FID is usually computed on 10,000+)."
        )
    if n <= d:
        warnings.warn(
            f"{n} samples of {d} features give a rank-deficient covariance (rank <= {n - 1}). "
            f"FID stays finite but is strongly biased upwards; use more than {d} samples.",
            stacklevel=3,
        )
    return x.mean(0), np.cov(x, rowvar=False)


def _vector(mu: ArrayLike, name: str) -> np.ndarray:
    mu = _as_float64(mu, name)
    if mu.ndim != 1:
        raise ValueError(f"{name} must be a vector (d,); got shape {mu.shape}")
    return mu


def _covariance(sigma: ArrayLike, name: str, d: int) -> np.ndarray:
    s = _as_float64(sigma, name)
    if s.shape != (d, d):
        raise ValueError(f"{name} must be ({d}, {d}) to match the mean; got shape {s.shape}")
    scale = max(np.abs(s).max(), np.finfo(float).tiny)
    if np.abs(s - s.T).max() > 1e-5 * scale:
        raise ValueError(f"{name} is not symmetric; a covariance matrix must be.")
    if np.diag(s).min() < -1e-8 * scale:
        raise ValueError(f"{name} has a negative variance on its diagonal; it is not a covariance matrix.")
    return (s + s.T) / 2


def psd_factor(sigma: np.ndarray, name: str = "the covariance") -> np.ndarray:
    r"""A factor :math:`B` (d, r) with :math:`\Sigma = B B^\top`, r = numerical rank (chapter 9).

    Cholesky with complete pivoting (LAPACK ``dpstrf``):
    :math:`P^\top \Sigma P = L L^\top`, so :math:`B = P L`. It stops at the
    numerical rank, so it works on rank-deficient covariances where plain
    Cholesky fails. Raises if :math:`\Sigma` is clearly not positive
    semi-definite (checked on two fixed random probe vectors, O(d r)).
    """
    d = sigma.shape[0]
    if d == 0:
        return np.zeros((0, 0))
    c, piv, rank, info = lapack.dpstrf(sigma, lower=1)
    if info < 0:  # pragma: no cover - LAPACK argument error
        raise RuntimeError(f"LAPACK dpstrf failed with info={info}")
    b = np.zeros((d, rank))
    b[piv - 1] = np.tril(c[:, :rank])  # row i of L belongs to row piv[i] of Sigma (1-based piv)
    if rank < d:  # dpstrf stopped early: the remainder Sigma - B B^T must vanish for a PSD matrix
        probe = np.random.default_rng(0).standard_normal((d, 2))  # (d, 2)
        residual = np.abs(sigma @ probe - b @ (b.T @ probe)).max()
        scale = max(np.abs(sigma @ probe).max(), np.finfo(float).tiny)
        if residual > 1e-6 * scale:
            raise ValueError(
                f"{name} is not positive semi-definite (Cholesky remainder {residual:.3g}); "
                "pass a real covariance matrix, e.g. from gaussian_stats(features)."
            )
    return b


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    r""":math:`\operatorname{Tr}\sqrt{\Sigma_1\Sigma_2}` without a general matrix square root (chapter 9).

    With :math:`\Sigma_1 = B B^\top` (:func:`psd_factor`), :math:`\Sigma_1\Sigma_2 = B (B^\top \Sigma_2)`
    has the same non-zero eigenvalues as :math:`M = B^\top \Sigma_2 B`, which is
    symmetric positive semi-definite. Hence

    .. math:: \operatorname{Tr}\sqrt{\Sigma_1\Sigma_2} = \sum_i \sqrt{\lambda_i(B^\top \Sigma_2 B)},

    two pivoted Cholesky factorisations, two products and one symmetric
    eigenvalue problem, in float64. The covariance of lower rank is the one
    factored into M (the trace is symmetric in the two), so M has no
    structurally zero eigenvalues whose rounding noise would enter through
    :math:`\sqrt{\cdot}`; tiny negative eigenvalues from rounding are clipped to zero.
    """
    b1, b2 = psd_factor(sigma1, "sigma1"), psd_factor(sigma2, "sigma2")  # (d, r1), (d, r2)
    b, other = (b1, sigma2) if b1.shape[1] <= b2.shape[1] else (b2, sigma1)
    m = b.T @ (other @ b)  # (r, r), symmetric PSD
    w = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(w, 0, None)).sum())


def _clip_rounding(value: float, scale: float) -> float:
    """Set a distance that is negative only by rounding (|value| <= 1e-9 scale) to 0."""
    return 0.0 if -1e-9 * scale <= value < 0 else value


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    r"""Fréchet (Wasserstein-2) distance² between :math:`\mathcal N(\mu_1,\Sigma_1)` and :math:`\mathcal N(\mu_2,\Sigma_2)`.

    .. math:: d^2 = \lVert\mu_1-\mu_2\rVert^2 + \operatorname{Tr}\Sigma_1 + \operatorname{Tr}\Sigma_2
              - 2\operatorname{Tr}\big(\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2}\big)^{1/2}

    (Dowson & Landau, 1982; FID of Heusel et al., 2017). The last trace equals
    :math:`\operatorname{Tr}\sqrt{\Sigma_1\Sigma_2}` and is computed by
    :func:`trace_sqrt_product` in float64: no ``scipy.linalg.sqrtm``, no complex
    ``eigvals``, finite when a covariance is rank-deficient. Derived in chapter 9.
    """
    mu1, mu2 = _vector(mu1, "mu1"), _vector(mu2, "mu2")
    _same_dim(mu1, mu2, "mu1 and mu2")
    d = len(mu1)
    s1, s2 = _covariance(sigma1, "sigma1", d), _covariance(sigma2, "sigma2", d)
    diff = mu1 - mu2
    tr1, tr2 = float(np.trace(s1)), float(np.trace(s2))
    value = float(diff @ diff) + tr1 + tr2 - 2 * trace_sqrt_product(s1, s2)
    return _clip_rounding(value, float(diff @ diff) + tr1 + tr2)


def fid(features_a: ArrayLike, features_b: ArrayLike, extractor: Any = None, batch_size: int = 500) -> float:
    r"""Fréchet Inception Distance between two samples: :func:`frechet_distance` of their Gaussian fits.

    ``features_a``/``features_b`` are (n, d) features, or images if ``extractor``
    is given. Biased: for finite n its expectation exceeds the population value
    by roughly c/n (chapter 9 measures this), so compare FIDs only at equal n.
    """
    a = _features(features_a, "features_a", extractor, batch_size)
    b = _features(features_b, "features_b", extractor, batch_size)
    _same_dim(a, b, "features_a and features_b")
    return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))


def fid_nuclear(features_a: ArrayLike, features_b: ArrayLike) -> float:
    r"""FID from features by a second, independent route: a nuclear norm (reference for tests, chapter 9).

    With centred, scaled features :math:`A_k = (X_k - \bar x_k)/\sqrt{n_k - 1}`,
    :math:`\Sigma_k = A_k^\top A_k` and the non-zero eigenvalues of
    :math:`\Sigma_1\Sigma_2` are the squared singular values of :math:`A_1 A_2^\top`, so
    :math:`\operatorname{Tr}\sqrt{\Sigma_1\Sigma_2} = \lVert A_1A_2^\top\rVert_* = \lVert R_1 R_2^\top\rVert_*`
    with :math:`A_k = Q_k R_k` (QR). Never forms a covariance product; exact for any n.
    """
    a = _features(features_a, "features_a", min_n=2)
    b = _features(features_b, "features_b", min_n=2)
    _same_dim(a, b, "features_a and features_b")
    ca = (a - a.mean(0)) / np.sqrt(len(a) - 1)  # (n_a, d)
    cb = (b - b.mean(0)) / np.sqrt(len(b) - 1)  # (n_b, d)
    ra, rb = np.linalg.qr(ca, mode="r"), np.linalg.qr(cb, mode="r")  # (min(n, d), d)
    nuclear = np.linalg.svd(ra @ rb.T, compute_uv=False).sum()
    diff = a.mean(0) - b.mean(0)
    return float(diff @ diff + (ca**2).sum() + (cb**2).sum() - 2 * nuclear)


# --- Kernel Inception Distance --------------------------------------------------------------


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


# --- Inception Score ------------------------------------------------------------------------


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
        from .features import probabilities

        probs = probabilities(classifier, torch.as_tensor(probs), batch_size=batch_size)
    p = _as_float64(probs, "probs")
    if p.ndim != 2:
        raise ValueError(f"probs must be (N, K) class probabilities; got shape {p.shape}")
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


# --- precision and recall -------------------------------------------------------------------


def _pairwise_dist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.cdist(x, y)  # (n_x, n_y), float64


def knn_radii(features: ArrayLike, k: int = 3, chunk: int = 2048) -> np.ndarray:
    """Distance from each sample (n, d) to its k-th nearest *other* sample, shape (n,)."""
    x = torch.from_numpy(_features(features, "features"))
    if not 1 <= k < len(x):
        raise ValueError(f"k={k} needs at least k + 1 = {k + 1} samples; got {len(x)}. Lower k or add samples.")
    out = [_pairwise_dist(x[i : i + chunk], x).kthvalue(k + 1, dim=1).values for i in range(0, len(x), chunk)]
    return torch.cat(out).numpy()  # the (k+1)-th smallest includes the point itself at distance 0


def _in_any_ball(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int = 2048) -> np.ndarray:
    inside = [(_pairwise_dist(points[i : i + chunk], centres) <= radii[None]).any(1)
              for i in range(0, len(points), chunk)]
    return torch.cat(inside).numpy()


def precision_recall(
    real: ArrayLike, fake: ArrayLike, k: int = 3, normalize: bool = True, extractor: Any = None,
    batch_size: int = 500,
) -> tuple[float, float]:
    r"""Improved precision and recall (Kynkäänniemi et al., 2019), both in [0, 1].

    Each sample's k-NN ball (radius :math:`\rho_k` = distance to its k-th nearest
    neighbour in its own set) approximates the support of its distribution:

    .. math:: \mathrm{precision} = \frac1{n_f}\sum_j \mathbb 1\big[\exists i:\ \lVert f_j - r_i\rVert \le \rho_k(r_i)\big],\quad
              \mathrm{recall} = \frac1{n_r}\sum_i \mathbb 1\big[\exists j:\ \lVert r_i - f_j\rVert \le \rho_k(f_j)\big]

    Precision = fraction of fakes that look real (quality); recall = fraction of
    reals the fakes cover (diversity). Features (n, d), or images with ``extractor``.

    ``normalize=True`` (default) first projects every feature onto the unit
    sphere. A classifier's feature *norm* tracks its confidence: noise images
    land near the origin, inside the huge k-NN balls of a few unusual real
    digits, and raw-feature precision calls pure noise "realistic" (chapter 9
    shows it). ``normalize=False`` is the paper's definition on raw features.
    """
    r = _features(real, "real", extractor, batch_size)
    f = _features(fake, "fake", extractor, batch_size)
    _same_dim(r, f, "real and fake")
    for name, x in (("real", r), ("fake", f)):
        if not 1 <= k < len(x):
            raise ValueError(f"k={k} needs at least k + 1 = {k + 1} {name} samples; got {len(x)}.")
    if normalize:
        r = r / np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-12)
        f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    rt, ft = torch.from_numpy(r), torch.from_numpy(f)
    rad_r, rad_f = torch.from_numpy(knn_radii(r, k)), torch.from_numpy(knn_radii(f, k))
    precision = _in_any_ball(ft, rt, rad_r).mean()
    recall = _in_any_ball(rt, ft, rad_f).mean()
    return float(precision), float(recall)


# --- mode coverage on the 2-D toy mixtures --------------------------------------------------


class ModeCoverage(NamedTuple):
    """Modes captured (an int out of K) and the fraction of high-quality samples."""

    modes: int
    high_quality: float


def mode_coverage(samples: ArrayLike, centres: ArrayLike, std: float, threshold: float = 3.0) -> ModeCoverage:
    r"""Modes captured and % high quality, the protocol of VEEGAN and PacGAN (chapters 5 and 9).

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
    dist = np.sqrt(((x[:, None, :] - c[None]) ** 2).sum(-1))  # (n, K)
    nearest = dist.argmin(1)
    hq = dist[np.arange(len(x)), nearest] <= threshold * std
    return ModeCoverage(int(np.unique(nearest[hq]).size), float(hq.mean()))


# --- judging a discriminator ----------------------------------------------------------------


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
