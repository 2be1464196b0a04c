"""Checks for the exercises of chapter 9 (evaluating generative models).

Each check compares the learner's function with :mod:`course_lib.metrics` on
several inputs, and names the classic mistake when the answer matches one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..metrics import inception_score, mmd2_unbiased, polynomial_kernel, trace_sqrt_product
from . import CheckFailed, call_answer, passed, reproduces, require


def _scalar(value, name: str) -> float:
    require(value is not None, f"{name} returned None: did you forget `return`?")
    if isinstance(value, complex) or np.iscomplexobj(value):
        raise CheckFailed(
            f"{name} returned a complex number ({value}). The eigenvalues of S1 S2 are real and "
            "non-negative in exact arithmetic; compute them from a *symmetric* matrix with "
            "np.linalg.eigvalsh so rounding cannot make them complex."
        )
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise CheckFailed(f"{name} returned {type(value).__name__}, not a number: {err}") from err
    require(arr.size == 1, f"{name} must return one number; got an array of shape {arr.shape}")
    return float(arr.reshape(()))


def _close(a: float, b: float, rtol: float = 1e-6) -> bool:
    return math.isfinite(a) and abs(a - b) <= rtol * max(abs(b), 1e-12)


def _psd(rng: np.random.Generator, d: int, rank: int | None = None, positive: bool = False) -> np.ndarray:
    """A covariance (d, d) of the given rank; with ``positive`` all its entries are > 0."""
    a = rng.standard_normal((d, rank or d))
    if positive:
        a = np.abs(a) + 0.1
    return a @ a.T / (rank or d)


def _sqrtm_sym(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def _rank_deficient_pair(rng: np.random.Generator, d: int = 128, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Two covariances (d, d) estimated from n < d correlated samples each: rank n - 1."""
    mix = rng.standard_normal((d, d)) / np.sqrt(d) / np.sqrt(1 + np.arange(d))  # decaying spectrum
    x = rng.standard_normal((n, d)) @ mix.T  # (n, d)
    y = 1.3 * rng.standard_normal((n, d)) @ mix.T + 0.1
    return np.cov(x, rowvar=False), np.cov(y, rowvar=False)


@reproduces(trace_sqrt_product)
def check_trace_sqrt_product(fn: Callable) -> None:
    r"""``fn(sigma1, sigma2)`` must return :math:`\operatorname{Tr}\sqrt{\Sigma_1\Sigma_2}` as a float.

    Reference: :func:`course_lib.metrics.trace_sqrt_product`, the route of chapter 9:
    :math:`\Sigma_1 = L L^\top`, then the eigenvalues of the symmetric :math:`L^\top\Sigma_2 L`.
    Tried on full-rank and rank-deficient 6x6 covariances, then on covariances of 128
    features estimated from 60 samples (rank 59) to a relative 1e-10: there the zero
    eigenvalues come out as rounding noise whose square roots add up, which
    ``sqrtm(S1 @ S2)``, ``eigvals(S1 @ S2)`` and a factor that keeps the noise all suffer from.
    """
    rng = np.random.default_rng(9)
    name = "trace_sqrt_product"
    s1, s2 = _psd(rng, 6, positive=True), _psd(rng, 6, positive=True)
    got = _scalar(call_answer(fn, s1.copy(), s2.copy()), name)
    ref = trace_sqrt_product(s1, s2)
    if not _close(got, ref):
        mistakes = [
            (np.trace(np.sqrt(s1 @ s2)), "You took the square root of each entry (np.sqrt works "
             "elementwise). The matrix square root is a different thing: use the eigenvalues."),
            (math.sqrt(np.trace(s1 @ s2)), "You took the square root of the trace; the trace of the "
             "square root is the sum of the square roots of the eigenvalues."),
            (np.trace(_sqrtm_sym(s1) @ _sqrtm_sym(s2)), "You computed Tr(sqrt(S1) sqrt(S2)). "
             "sqrt(S1) sqrt(S2) is not sqrt(S1 S2) unless S1 and S2 commute; use "
             "Tr sqrt(S1^(1/2) S2 S1^(1/2))."),
            (np.trace(s1 @ s2), "You summed the eigenvalues of S1 S2 without taking their square roots."),
            (np.sqrt(np.clip(np.linalg.eigvalsh(s1 @ s2), 0, None)).sum(), "You called eigvalsh on "
             "S1 @ S2, which is not symmetric: eigvalsh reads only one triangle. Factor S1 = L L^T "
             "and use the symmetric L^T S2 L, which has the same eigenvalues."),
        ]
        for value, message in mistakes:
            require(not _close(got, value), message)
        raise CheckFailed(f"{name} does not match Tr sqrt(S1 S2).\n  yours:    {got}\n  expected: {ref}")
    cases = [(f"6x6, rank {r}", _psd(rng, 6, r), _psd(rng, 6), 1e-6) for r in (6, 3)]
    cases.append(("128 features from 60 samples (rank 59)", *_rank_deficient_pair(rng), 1e-10))
    for case, s1, s2, rtol in cases:
        try:
            with np.errstate(invalid="ignore"):
                got = _scalar(call_answer(fn, s1.copy(), s2.copy()), name)
        except np.linalg.LinAlgError as err:
            if "positive definite" in str(err):
                raise CheckFailed(
                    f"{name} raised LinAlgError ({err}) for covariances {case}: Cholesky fails on "
                    "a singular covariance (fewer samples than features). Catch "
                    "np.linalg.LinAlgError and factor S1 from np.linalg.eigh instead: "
                    "L = V_k sqrt(w_k) over the eigenvalues w_k above d * eps * w.max()."
                ) from err
            raise CheckFailed(
                f"{name} raised LinAlgError ({err}) for covariances {case}: a NaN got into "
                "a matrix. Rounding makes zero eigenvalues slightly negative (-1e-17) and np.sqrt turns "
                "them into NaN; set them to 0 before the square root."
            ) from err
        require(math.isfinite(got),
                f"{name} returned {got} for covariances {case}. Rounding makes their zero "
                "eigenvalues slightly negative (-1e-17); set them to 0 before the square root.")
        ref = trace_sqrt_product(s1, s2)
        if not _close(got, ref, rtol) and _close(got, ref, 1e-5):
            raise CheckFailed(
                f"{name} is close but not accurate for covariances {case}: relative error "
                f"{abs(got - ref) / ref:.1e} (allowed {rtol:g}). Eigenvalues that are zero in exact "
                "arithmetic come out as rounding noise of about eps * lambda_max; each square root "
                "turns that into about 1e-8 * sqrt(lambda_max), and dozens of them add up. "
                "sqrtm(S1 @ S2), eigvals(S1 @ S2) and a square root or factor of S1 that keeps "
                "its eigenvalues clipped at 0 all keep this noise. Factor S1 = L L^T from its "
                "eigenvalues above d * eps * lambda_max only (eps = np.finfo(float).eps), then "
                "take the eigenvalues of L^T S2 L."
            )
        require(_close(got, ref, rtol), f"{name} is wrong for covariances {case}: {got} vs {ref}")
    passed(f"{name} matches the library to 1e-10, also on rank-deficient covariances of 128 features.")


@reproduces(mmd2_unbiased)
def check_mmd2_unbiased(fn: Callable) -> None:
    r"""``fn(x, y)`` for features x (m, d), y (n, d) must return the unbiased MMD² with k = (x·y/d + 1)³.

    Reference: :func:`course_lib.metrics.mmd2_unbiased`.
    """
    rng = np.random.default_rng(10)
    name = "mmd2_unbiased"
    for m, n, d in ((12, 12, 3), (9, 15, 5)):
        x, y = rng.standard_normal((m, d)), rng.standard_normal((n, d)) + 0.4
        got = _scalar(call_answer(fn, x.copy(), y.copy()), name)
        ref = mmd2_unbiased(x, y)
        if _close(got, ref):
            continue
        kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
        biased = kxx.mean() + kyy.mean() - 2 * kxy.mean()
        require(not _close(got, biased),
                "You included the diagonal terms k(x_i, x_i): that is the biased (V-statistic) "
                "estimate. Sum over i != j and divide by m(m - 1).")
        div_m2 = (kxx.sum() - np.trace(kxx)) / m**2 + (kyy.sum() - np.trace(kyy)) / n**2 - 2 * kxy.mean()
        require(not _close(got, div_m2),
                "You dropped the diagonal but still divided by m^2: divide by m(m - 1), the number of pairs i != j.")
        k_nod = (x @ y.T + 1) ** 3
        no_d = ((x @ x.T + 1) ** 3).sum() - np.trace((x @ x.T + 1) ** 3)
        no_d = no_d / (m * (m - 1)) + (((y @ y.T + 1) ** 3).sum() - np.trace((y @ y.T + 1) ** 3)) / (n * (n - 1))
        require(not _close(got, no_d - 2 * k_nod.mean()),
                "Your kernel is (x.y + 1)^3; the KID kernel divides by the feature dimension: (x.y/d + 1)^3.")
        one_cross = ref + kxy.mean()
        require(not _close(got, one_cross),
                "The cross term appears twice: subtract 2 * mean k(x_i, y_j), not once.")
        quad = [(a @ b.T / d + 1) ** 2 for a, b in ((x, x), (y, y), (x, y))]
        require(not _close(got, (quad[0].sum() - np.trace(quad[0])) / (m * (m - 1))
                           + (quad[1].sum() - np.trace(quad[1])) / (n * (n - 1)) - 2 * quad[2].mean()),
                "Your kernel is squared; the KID kernel is cubic: (x.y/d + 1)^3.")
        require(not _close(got, (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
                           + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()),
                "You divided the y-y term by m(m - 1); it has n(n - 1) pairs (here m != n).")
        require(not (ref > 0 and _close(got, math.sqrt(ref))),
                "You returned MMD, the square root; the function returns the unbiased MMD^2 itself "
                "(which can be negative, so it has no square root in general).")
        raise CheckFailed(f"{name} does not match (m={m}, n={n}).\n  yours:    {got}\n  expected: {ref}")
    passed(f"{name} matches the unbiased estimator, also for m != n.")


@reproduces(inception_score)
def check_inception_score(fn: Callable) -> None:
    r"""``fn(probs)`` for class probabilities (N, K) must return exp(E_x KL(p(y|x) || p(y))) as a float.

    One split, so it must equal ``course_lib.metrics.inception_score(probs, splits=1)[0]``.
    """
    rng = np.random.default_rng(11)
    name = "inception_score"
    logits = 2 * rng.standard_normal((30, 4))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    got = _scalar(call_answer(fn, p.copy()), name)
    ref = inception_score(p, splits=1)[0]
    if not _close(got, ref):
        py = p.mean(0)
        kl = (p * (np.log(p) - np.log(py))).sum(1)
        reverse = (py * (np.log(py) - np.log(p))).sum(1)
        require(not _close(got, float(kl.mean())),
                "You returned E KL, the log of the score: the Inception Score is exp(E_x KL(p(y|x) || p(y))).")
        require(not _close(got, float(np.exp(reverse.mean()))),
                "Your KL is reversed: the expectation is under p(y|x), so KL(p(y|x) || p(y)) = "
                "sum_y p(y|x) log(p(y|x) / p(y)).")
        require(not _close(got, float(np.exp(-(p * np.log(p)).sum(1).mean()))),
                "You used only the conditional entropy; the score also needs the marginal p(y) = mean_x p(y|x).")
        require(not _close(got, float(np.exp(kl).mean())),
                "You averaged exp(KL) over the images; the score is exp of the average KL: exp(E_x KL).")
        require(not _close(got, float(np.exp(kl.mean() / math.log(2)))),
                "You used log base 2; the Inception Score uses the natural log (np.log).")
        uniform = (p * (np.log(p) - np.log(1 / p.shape[1]))).sum(1)
        require(not _close(got, float(np.exp(uniform.mean()))),
                "Your p(y) is the uniform 1/K (which is also what averaging p(y|x) over the classes, "
                "axis 1, gives); p(y) is the marginal: average p(y|x) over the images (axis 0).")
        q = np.exp(p) / np.exp(p).sum(1, keepdims=True)  # softmax applied to probabilities
        q_kl = (q * (np.log(q) - np.log(q.mean(0)))).sum(1)
        require(not _close(got, float(np.exp(q_kl.mean()))),
                "You applied softmax to the input: probs are already probabilities (rows sum to 1).")
        raise CheckFailed(f"{name} does not match.\n  yours:    {got}\n  expected: {ref}")
    onehot = np.eye(5)[np.arange(50) % 5]
    got = _scalar(call_answer(fn, onehot), name)
    require(_close(got, 5.0),
            f"Confident predictions spread evenly over K = 5 classes must score K = 5; got {got}. "
            "Zero probabilities contribute 0 * log 0 = 0 (use scipy.special.xlogy or mask them).")
    passed(f"{name} matches exp(E KL(p(y|x) || p(y))) and scores K for K balanced confident classes.")
