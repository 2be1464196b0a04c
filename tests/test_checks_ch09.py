"""The chapter 9 checks accept the reference answers and reject the classic mistakes by name;
the notebook's exercise cells themselves are run by tests/test_assignments.py, like every chapter's."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg

from course_lib.checks import CheckFailed
from course_lib.checks import ch09 as C

ROOT = Path(__file__).resolve().parents[1]


def stub(*args):
    raise NotImplementedError()


# ---------------------------------------------------------------- Tr sqrt(S1 S2)


def trace_sqrt_reference(s1, s2):
    """The notebook's solution: S1 = L L^T (Cholesky, or eigh keeping eigenvalues above
    d eps lambda_max when S1 is singular), then eigvalsh(L^T S2 L) clipped at 0."""
    d, eps = len(s1), np.finfo(float).eps
    try:
        factor = np.linalg.cholesky(s1)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(s1)
        keep = w > d * eps * w.max()
        factor = v[:, keep] * np.sqrt(w[keep])
    lam = np.linalg.eigvalsh(factor.T @ s2 @ factor)
    return float(np.sqrt(np.clip(lam, 0, None)).sum())


def trace_sqrt_symmetric_root(s1, s2):
    """Another correct answer: the symmetric square root of S1, eigenvalues below d eps lambda_max set to 0."""
    d, eps = len(s1), np.finfo(float).eps
    w, v = np.linalg.eigh(s1)
    w = np.where(w > d * eps * w.max(), w, 0.0)
    root = (v * np.sqrt(w)) @ v.T
    lam = np.linalg.eigvalsh(root @ s2 @ root)
    return np.sqrt(np.where(lam > d * eps * lam.max(), lam, 0.0)).sum()


def trace_sqrt_cholesky_only(s1, s2):
    factor = np.linalg.cholesky(s1)
    return np.sqrt(np.clip(np.linalg.eigvalsh(factor.T @ s2 @ factor), 0, None)).sum()


def trace_sqrt_factor_keeps_noise(s1, s2):
    """The eigh factor of S1 with its eigenvalues clipped at 0, not thresholded: the noise stays."""
    w, v = np.linalg.eigh(s1)
    keep = w > 0
    factor = v[:, keep] * np.sqrt(w[keep])
    return np.sqrt(np.clip(np.linalg.eigvalsh(factor.T @ s2 @ factor), 0, None)).sum()


def trace_sqrt_clip_at_zero(s1, s2):
    w, v = np.linalg.eigh(s1)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    return np.sqrt(np.clip(np.linalg.eigvalsh(root @ s2 @ root), 0, None)).sum()


def _sym_sqrt(s):
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def trace_sqrt_unclipped(s1, s2):
    w, v = np.linalg.eigh(s1)
    root = (v * np.sqrt(w)) @ v.T
    return np.sqrt(np.linalg.eigvalsh(root @ s2 @ root)).sum()


@pytest.mark.parametrize("answer", [trace_sqrt_reference, trace_sqrt_symmetric_root])
def test_trace_sqrt_accepts_reference(answer, capsys):
    C.check_trace_sqrt_product(answer)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda s1, s2: np.trace(np.sqrt(s1 @ s2)), "each entry"),
        (lambda s1, s2: np.sqrt(np.trace(s1 @ s2)), "square root of the trace"),
        (lambda s1, s2: np.trace(_sym_sqrt(s1) @ _sym_sqrt(s2)), "commute"),
        (lambda s1, s2: np.trace(s1 @ s2), "without taking their square roots"),
        (lambda s1, s2: np.sqrt(np.linalg.eigvals(s1 @ s2).astype(complex)).sum(), "complex"),
        (trace_sqrt_unclipped, "set them to 0"),
        (lambda s1, s2: np.trace(scipy.linalg.sqrtm(s1 @ s2)), "complex"),
        (lambda s1, s2: np.trace(scipy.linalg.sqrtm(s1 @ s2)).real, "close but not accurate"),
        # eigvals returns complex or real values depending on the LAPACK path: either way a refusal
        (lambda s1, s2: np.sqrt(np.linalg.eigvals(s1 @ s2)).sum(), "complex|set them to 0"),
        (lambda s1, s2: np.sqrt(np.linalg.eigvals(s1 @ s2).astype(complex)).real.sum(), "close but not accurate"),
        (lambda s1, s2: np.sqrt(np.clip(np.linalg.eigvals(s1 @ s2).real, 0, None)).sum(), "close but not accurate"),
        (trace_sqrt_clip_at_zero, "close but not accurate"),
        (trace_sqrt_factor_keeps_noise, "close but not accurate"),
        (trace_sqrt_cholesky_only, "Cholesky fails on a singular covariance"),
        (lambda s1, s2: np.sqrt(np.clip(np.linalg.eigvalsh(s1 @ s2), 0, None)).sum(), "not symmetric"),
        (lambda s1, s2: 2.0, "does not match"),
        (lambda s1, s2: None, "return"),
        (lambda s1, s2: np.diag(s1 @ s2), "one number"),
        (stub, "not implemented"),
    ],
    ids=["elementwise-sqrt", "sqrt-of-trace", "product-of-roots", "no-sqrt", "complex-eigvals",
         "no-clip", "sqrtm", "sqrtm-real", "eigvals-sqrt", "eigvals-real", "eigvals-clip", "clip-at-zero",
         "factor-keeps-noise", "cholesky-only", "eigvalsh-of-product", "garbage", "none", "array", "stub"],
)
def test_trace_sqrt_rejects(wrong, message):
    with warnings.catch_warnings(), np.errstate(all="ignore"), pytest.raises(CheckFailed, match=message):
        C.check_trace_sqrt_product(wrong)


# ---------------------------------------------------------------- unbiased MMD^2


def mmd_reference(x, y):
    d = x.shape[1]
    kxx, kyy, kxy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    m, n = len(x), len(y)
    return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
            - 2 * kxy.mean())


def _k(a, b, d):
    return (a @ b.T / d + 1) ** 3


def mmd_power(x, y, power):
    d, m, n = x.shape[1], len(x), len(y)
    kxx, kyy, kxy = ((a @ b.T / d + 1) ** power for a, b in ((x, x), (y, y), (x, y)))
    return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
            - 2 * kxy.mean())


def mmd_pairs_m(x, y):
    d, m = x.shape[1], len(x)
    kxx, kyy, kxy = (_k(a, b, d) for a, b in ((x, x), (y, y), (x, y)))
    return (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()


def test_mmd_accepts_reference():
    C.check_mmd2_unbiased(mmd_reference)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda x, y: _k(x, x, x.shape[1]).mean() + _k(y, y, x.shape[1]).mean() - 2 * _k(x, y, x.shape[1]).mean(),
         "V-statistic"),
        (lambda x, y: ((_k(x, x, x.shape[1]).sum() - np.trace(_k(x, x, x.shape[1]))) / len(x) ** 2
                       + (_k(y, y, x.shape[1]).sum() - np.trace(_k(y, y, x.shape[1]))) / len(y) ** 2
                       - 2 * _k(x, y, x.shape[1]).mean()), r"m\(m - 1\)"),
        (lambda x, y: mmd_reference(x * np.sqrt(x.shape[1]), y * np.sqrt(x.shape[1])), "feature dimension"),
        (lambda x, y: mmd_reference(x, y) + _k(x, y, x.shape[1]).mean(), "cross term"),
        (lambda x, y: mmd_power(x, y, 2), "cubic"),
        (lambda x, y: mmd_pairs_m(x, y), r"n\(n - 1\)"),
        (lambda x, y: np.sqrt(mmd_reference(x, y)), "square root"),
        (lambda x, y: mmd_reference(y[: len(x)], y), "does not match"),
        (stub, "not implemented"),
    ],
    ids=["biased", "divide-m2", "no-d", "cross-once", "quadratic", "m-pairs-for-y", "sqrt", "garbage", "stub"],
)
def test_mmd_rejects(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        C.check_mmd2_unbiased(wrong)


# ---------------------------------------------------------------- Inception Score


def is_reference(p):
    from scipy.special import xlogy

    py = p.mean(0, keepdims=True)
    return float(np.exp((xlogy(p, p) - xlogy(p, np.broadcast_to(py, p.shape))).sum(1).mean()))


def test_inception_score_accepts_reference():
    C.check_inception_score(is_reference)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda p: np.log(is_reference(p)), "log of the score"),
        (lambda p: np.exp((p.mean(0) * (np.log(p.mean(0)) - np.log(p))).sum(1).mean()), "reversed"),
        (lambda p: np.exp(-(p * np.log(p)).sum(1).mean()), "marginal"),
        (lambda p: np.exp((p * (np.log(p) - np.log(p.mean(1, keepdims=True)))).sum(1).mean()), "axis 0"),
        (lambda p: np.exp((p * (np.log(p) - np.log(p.mean(0)))).sum(1).mean()), "0 \\* log 0"),
        (lambda p: np.exp((p * (np.log(p) - np.log(p.mean(0)))).sum(1)).mean(), "exp of the average"),
        (lambda p: np.exp((p * (np.log2(p) - np.log2(p.mean(0)))).sum(1).mean()), "natural log"),
        (lambda p: np.exp((p * (np.log(p) + np.log(p.shape[1]))).sum(1).mean()), "uniform 1/K"),
        (lambda p: is_reference(np.exp(p) / np.exp(p).sum(1, keepdims=True)), "softmax"),
        (stub, "not implemented"),
    ],
    ids=["no-exp", "reversed-kl", "entropy-only", "wrong-axis", "log-zero", "mean-of-exp", "log2",
         "uniform-marginal", "softmax-of-probs", "stub"],
)
def test_inception_score_rejects(wrong, message):
    with np.errstate(all="ignore"), pytest.raises(CheckFailed, match=message):
        C.check_inception_score(wrong)
