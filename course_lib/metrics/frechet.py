r"""The Fréchet distance and FID (Heusel et al., 2017), stably and fast; FID's bias in n and FID_∞.

Chapter 9 derives every formula here. The trace of the matrix square root is
computed from a Cholesky factor and one symmetric eigenvalue problem (no ``sqrtm``,
exact on rank-deficient covariances); :func:`fid_nuclear` is an independent route
through a nuclear norm, used as the reference in tests.
:func:`frechet_distance_sqrtm` and :func:`frechet_distance_eigvals` are the
methods of published code (pytorch-fid; torchmetrics / torch-fidelity), kept
only to compare against. :func:`fid_infinity` is the extrapolation of Chong &
Forsyth (2020).
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
from scipy.linalg.blas import dtrmm

from ._inputs import ArrayLike, _as_float64, _features, _same_dim


def _vector(mu: ArrayLike, name: str) -> np.ndarray:
    mu = _as_float64(mu, name)
    if mu.ndim != 1:
        raise ValueError(f"{name} must be a vector (d,); got shape {mu.shape}")
    if mu.size == 0:
        raise ValueError(f"{name} is empty (0 feature dimensions); pass the mean of real features.")
    return mu


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


def _covariance(sigma: ArrayLike, name: str, d: int) -> np.ndarray:
    s = _as_float64(sigma, name)
    if s.shape != (d, d):
        raise ValueError(f"{name} must be ({d}, {d}) to match the mean; got shape {s.shape}")
    scale = max(s.max(), -s.min(), np.finfo(float).tiny)
    if not (s == s.T).all():  # np.cov's output is exactly symmetric: then no float temporaries
        if np.abs(s - s.T).max() > 1e-5 * scale:
            raise ValueError(f"{name} is not symmetric; a covariance matrix must be.")
        s = (s + s.T) / 2
    if np.diag(s).min() < -1e-8 * scale:
        raise ValueError(f"{name} has a negative variance on its diagonal; it is not a covariance matrix.")
    return s


def _psd_eigenvalues(w: np.ndarray, name: str) -> np.ndarray:
    r"""Eigenvalues ``w`` of a symmetric positive semi-definite matrix, negative ones clipped at 0.

    A PSD matrix's eigenvalues are :math:`\ge 0`; ``eigvalsh`` returns those that are zero in exact
    arithmetic as rounding noise of either sign, and :math:`\sqrt{\cdot}` of a negative one
    would be NaN. An eigenvalue below :math:`-10^{-6}\lambda_{\max}` is not rounding: the
    matrix ``name`` stands for is not PSD, and this raises.
    """
    top = max(w.max(initial=0.0), np.finfo(float).tiny)
    if w.min(initial=0.0) < -1e-6 * top:
        raise ValueError(
            f"{name} is not positive semi-definite (eigenvalue {w.min():.3g}, largest {top:.3g}); "
            "pass a real covariance matrix, e.g. from gaussian_stats(features)."
        )
    return np.clip(w, 0.0, None)


def psd_factor(sigma: np.ndarray, name: str = "the covariance") -> np.ndarray:
    r"""A factor :math:`L` (d, r) with :math:`\Sigma = L L^\top`, r the numerical rank (chapter 9).

    The Cholesky factor (r = d) when :math:`\Sigma` is positive definite. Cholesky fails (or
    leaves a pivot at rounding level) on a rank-deficient :math:`\Sigma` (n <= d samples give
    rank <= n - 1); then Cholesky with pivoting (LAPACK ``dpstrf``), :math:`P^\top\Sigma P = L_r L_r^\top` and :math:`L = P L_r`,
    which stops at the numerical rank: its remaining pivots are at rounding level,
    :math:`\le d\,\varepsilon\max_k \Sigma_{kk}`. Any other factor with :math:`LL^\top = \Sigma`
    would do (chapter 9's exercise builds one from ``eigh``); this one costs a Cholesky, not a
    d x d eigendecomposition. Raises if :math:`\Sigma` is clearly not positive semi-definite.
    """
    try:
        factor = scipy.linalg.cholesky(sigma, lower=True, check_finite=False)
        # The pivot L_kk^2 is the variance of feature k that features 1..k-1 leave unexplained.
        # Where a singular sigma has a zero pivot, rounding can leave a tiny positive one, so
        # the factor is used only if every pivot keeps more than sqrt(eps) of its variance.
        if (np.diag(factor) ** 2 > np.sqrt(np.finfo(float).eps) * np.diag(sigma)).all():
            return factor
    except np.linalg.LinAlgError:  # a pivot <= 0: singular, or not a covariance
        pass
    c, piv, rank, info = scipy.linalg.lapack.dpstrf(sigma, lower=1)
    if info < 0:  # pragma: no cover - LAPACK argument error
        raise RuntimeError(f"LAPACK dpstrf failed with info={info}")
    factor = np.zeros((len(sigma), rank))
    factor[piv - 1] = np.tril(c[:, :rank])  # row k of L_r is row piv[k] of L; (d, r)
    # L L^T reproduces the pivoted rows and columns of sigma; on the others it leaves the
    # Schur complement, which vanishes (up to rounding) exactly when sigma is PSD.
    rest = piv[rank:] - 1
    schur = sigma[np.ix_(rest, rest)] - factor[rest] @ factor[rest].T
    if schur.size and np.abs(schur).max() > 1e-6 * np.abs(sigma).max():
        raise ValueError(
            f"{name} is not positive semi-definite (Cholesky leaves a remainder of "
            f"{np.abs(schur).max():.3g}); pass a real covariance matrix, e.g. from "
            "gaussian_stats(features)."
        )
    return factor


def _congruence_eigenvalues(factor: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Eigenvalues (r,) of the symmetric ``factor.T @ other @ factor``, as ``eigvalsh`` returns them."""
    if factor.shape[0] == factor.shape[1] and not np.triu(factor, 1).any():
        # the Cholesky factor is triangular: BLAS trmm needs half the flops of two matmuls
        m = dtrmm(1.0, factor, dtrmm(1.0, factor, other, side=1, lower=1), lower=1, trans_a=1)
    else:
        m = factor.T @ (other @ factor)  # (r, r)
    # LAPACK dsyev reads one triangle; measured a little faster than np.linalg.eigvalsh here
    return scipy.linalg.eigh(
        m, eigvals_only=True, driver="ev", overwrite_a=True, check_finite=False
    )


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    r""":math:`\operatorname{Tr}\sqrt{\Sigma_1\Sigma_2}` without a general matrix square root (chapter 9).

    Chapter 9 derives it: with :math:`\Sigma_1 = L L^\top` (:func:`psd_factor`),
    :math:`\Sigma_1\Sigma_2 = L\,(L^\top\Sigma_2)` has the same non-zero eigenvalues as
    :math:`M = L^\top\Sigma_2 L`, since XY and YX do; for a square invertible L the two are
    similar, :math:`L^{-1}(\Sigma_1\Sigma_2)L = M`. M is symmetric positive semi-definite,
    so its eigenvalues are real and :math:`\ge 0`, and

    .. math:: \operatorname{Tr}\sqrt{\Sigma_1\Sigma_2} = \sum_i \sqrt{\lambda_i(L^\top\Sigma_2 L)} .

    One Cholesky factorisation (with pivoting when :math:`\Sigma_1` is singular), two matrix
    products and one symmetric eigenvalue problem (LAPACK ``dsyev``), in float64. Eigenvalues of M that rounding made
    negative are clipped at 0. M has zero eigenvalues when :math:`\Sigma_2` has lower rank
    than :math:`\Sigma_1`; the clip would keep the positive half of their rounding noise,
    so then the roles swap (the trace is symmetric in the two). A clearly negative
    eigenvalue of M means :math:`\Sigma_2` is not positive semi-definite, and raises.
    """
    if len(sigma1) == 0:
        return 0.0
    factor, other = psd_factor(sigma1, "sigma1"), "sigma2"  # (d, r1)
    lam = _congruence_eigenvalues(factor, sigma2)
    if (lam <= np.finfo(float).eps * lam.max(initial=0.0)).any():
        # M has (numerically) zero eigenvalues, as when sigma2 has lower rank than sigma1.
        # They come out as rounding noise of either sign, and the clip at 0 below would keep
        # the positive half. The trace is symmetric in the two, so factor sigma2 instead if
        # it has the lower rank: then M has no zero eigenvalues.
        factor2 = psd_factor(sigma2, "sigma2")  # (d, r2)
        if factor2.shape[1] < factor.shape[1]:
            lam, other = _congruence_eigenvalues(factor2, sigma1), "sigma1"
    return float(np.sqrt(_psd_eigenvalues(lam, other)).sum())


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


# --- the methods of published code, to compare against (chapter 9, benchmarks/bench_fid.py) ----


class BaselineFD(NamedTuple):
    """A Fréchet distance from a published method, the largest imaginary part it discarded, and
    whether pytorch-fid's fallback (adding 1e-6 I to both covariances) was taken."""

    value: float
    imag: float
    fallback: bool


def frechet_distance_sqrtm(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> BaselineFD:
    r"""pytorch-fid's ``calculate_frechet_distance``: :math:`\operatorname{Tr}` of ``scipy.linalg.sqrtm(S1 @ S2)``.

    A general (Schur) square root of the non-symmetric :math:`\Sigma_1\Sigma_2`;
    if it is not finite, retried on :math:`\Sigma_k + 10^{-6}I`; the imaginary part
    is dropped. Shown in chapter 9 to be slower and less accurate than
    :func:`frechet_distance`; do not use it for results.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Matrix is singular" when n <= d
        root = scipy.linalg.sqrtm(sigma1 @ sigma2)
        fallback = not np.isfinite(root).all()
        if fallback:
            offset = 1e-6 * np.eye(len(sigma1))
            root = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(root).real
    return BaselineFD(float(value), float(np.abs(np.imag(root)).max()), fallback)


def frechet_distance_eigvals(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> BaselineFD:
    r"""torchmetrics / torch-fidelity: :math:`\sum_i \sqrt{\lambda_i(\Sigma_1\Sigma_2)}` from the complex ``eigvals``, real part.

    Compared with :func:`frechet_distance` in chapter 9; do not use it for results.
    """
    root = np.sqrt(np.linalg.eigvals(sigma1 @ sigma2).astype(complex))  # (d,) complex
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * root.real.sum()
    return BaselineFD(float(value), float(np.abs(root.imag).max()), False)


# --- FID_infinity ---------------------------------------------------------------------------


class FIDInfinity(NamedTuple):
    r"""The extrapolated :math:`\mathrm{FID}_\infty`, the slope c of :math:`\mathrm{FID}_N \approx \mathrm{FID}_\infty + c/N`,
    and the sizes N (k,) and values :math:`\mathrm{FID}_N` (k,) of the fit."""

    fid_inf: float
    slope: float
    sizes: np.ndarray
    fids: np.ndarray


def fid_infinity(
    real: ArrayLike, fake: ArrayLike, sizes: Any = None, num_points: int = 15, seed: int | None = 0,
    extractor: Any = None, batch_size: int = 500,
) -> FIDInfinity:
    r"""Effectively unbiased FID (Chong & Forsyth, 2020): extrapolate :math:`\mathrm{FID}_N` to :math:`N = \infty`.

    The bias of :math:`\mathrm{FID}_N` is, to first order, linear in :math:`1/N`
    (chapter 9 shows it), so

    .. math:: \mathrm{FID}_N \approx \mathrm{FID}_\infty + \frac{c}{N}.

    The real statistics are fitted once on all of ``real``; for each N in
    ``sizes`` a random subset of N fakes (drawn without replacement) gives
    :math:`\mathrm{FID}_N`; a least-squares line in :math:`1/N` is evaluated
    at :math:`1/N = 0`. The default sizes are the paper's: ``num_points`` = 15
    values evenly spaced from n/10 to n, n = ``len(fake)`` (5,000 to 50,000 in
    the paper). The bias of the fixed real statistics (about c'/len(real)) is
    not removed: keep the real set large.
    """
    r = _features(real, "real", extractor, batch_size, min_n=2)
    f = _features(fake, "fake", extractor, batch_size, min_n=2)
    _same_dim(r, f, "real and fake")
    if sizes is None:
        sizes = np.linspace(len(f) // 10, len(f), num_points)
    sizes = np.asarray(sizes).astype(int)
    if sizes.ndim != 1 or len(np.unique(sizes)) < 2 or sizes.min() < 2 or sizes.max() > len(f):
        raise ValueError(f"sizes must hold at least two distinct sample sizes between 2 and len(fake) = {len(f)}; "
                         f"got {sizes.tolist()}")
    mu_r, s_r = gaussian_stats(r)
    rng = np.random.default_rng(seed)
    fids = np.array([frechet_distance(mu_r, s_r, *gaussian_stats(f[rng.choice(len(f), m, replace=False)]))
                     for m in sizes])
    slope, intercept = np.polyfit(1.0 / sizes, fids, 1)
    return FIDInfinity(float(intercept), float(slope), sizes, fids)


def generator_fid(
    generator: Any, reference_features: ArrayLike, extractor: Any, n: int, seed: int = 1,
    labels: Any = None,
) -> float:
    """FID of ``n`` samples of ``generator`` against ``reference_features`` (chapters 3, 4 and 9).

    The samples are drawn with a generator seeded by ``seed``, so the number is repeatable;
    ``extractor`` maps images to features (the course's MNIST classifier: classifier-FID).
    ``generator.sample(n, labels, generator=...)`` is the course's sampling API (GANs, VAEs).
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    fake = generator.sample(n, labels, generator=gen) if labels is not None else generator.sample(n, generator=gen)
    return fid(_features(fake, "samples", extractor, 500), reference_features)
