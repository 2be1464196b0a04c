"""course_lib.metrics against independent references: scipy sqrtm, closed forms, brute-force loops."""

import itertools
import math
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

from course_lib import metrics
from course_lib.data import toy_mixture


def _sqrtm_fid(x, y):
    """The pytorch-fid formula, float64 scipy sqrtm (fine on small, well-conditioned full-rank problems)."""
    m1, m2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


def _random_features(rng, n, d, shift=0.0, scale=1.0):
    mix = rng.standard_normal((d, d)) / math.sqrt(d)
    return scale * rng.standard_normal((n, d)) @ mix + shift


# --- FID ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("n,d", [(300, 12), (2000, 64)])
def test_fid_matches_float64_sqrtm_reference(n, d):
    rng = np.random.default_rng(n)
    x, y = _random_features(rng, n, d), _random_features(rng, n, d, shift=0.3, scale=1.5)
    ref = _sqrtm_fid(x, y)
    assert metrics.fid(x, y) == pytest.approx(ref, rel=1e-9)
    assert metrics.fid_nuclear(x, y) == pytest.approx(ref, rel=1e-9)


def test_published_baselines_match_sqrtm_on_a_well_conditioned_problem():
    rng = np.random.default_rng(30)
    x, y = _random_features(rng, 400, 10), _random_features(rng, 400, 10, shift=0.2)
    stats = (x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    for fn in (metrics.frechet_distance_sqrtm, metrics.frechet_distance_eigvals):
        got = fn(*stats)
        assert got.value == pytest.approx(_sqrtm_fid(x, y), rel=1e-9) and not got.fallback


def test_frechet_closed_forms():
    rng = np.random.default_rng(0)
    d = 7
    a = rng.standard_normal((d, d))
    sigma = a @ a.T + 0.1 * np.eye(d)
    mu = rng.standard_normal(d)
    # equal Gaussians: Tr sqrt(S S) = Tr S, so the distance is 0
    assert abs(metrics.frechet_distance(mu, sigma, mu, sigma)) < 1e-10 * np.trace(sigma)
    # isotropic: |dmu|^2 + d (s1 - s2)^2
    mu2 = mu + rng.standard_normal(d)
    s1, s2 = 0.7, 2.3
    expected = ((mu - mu2) ** 2).sum() + d * (s1 - s2) ** 2
    got = metrics.frechet_distance(mu, s1**2 * np.eye(d), mu2, s2**2 * np.eye(d))
    assert got == pytest.approx(expected, rel=1e-12)
    # commuting covariances (same eigenvectors): sum (sqrt(a_i) - sqrt(b_i))^2
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    ea, eb = rng.uniform(0.1, 3, d), rng.uniform(0.1, 3, d)
    got = metrics.frechet_distance(np.zeros(d), q @ np.diag(ea) @ q.T, np.zeros(d), q @ np.diag(eb) @ q.T)
    assert got == pytest.approx(((np.sqrt(ea) - np.sqrt(eb)) ** 2).sum(), rel=1e-10)
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2, torch inputs accepted
    got = metrics.frechet_distance(torch.tensor([1.0]), torch.tensor([[4.0]]), torch.tensor([3.0]), torch.tensor([[9.0]]))
    assert got == pytest.approx(4.0 + 1.0)


def test_fid_is_finite_and_exact_on_rank_deficient_covariances():
    rng = np.random.default_rng(1)
    d = 40
    for n in (5, 20, 40):  # n <= d: rank(Sigma) <= n - 1 < d
        x, y = _random_features(rng, n, d), _random_features(rng, n, d, shift=0.2)
        with pytest.warns(UserWarning, match="rank-deficient"):
            got = metrics.fid(x, y)
        assert math.isfinite(got)
        assert got == pytest.approx(metrics.fid_nuclear(x, y), rel=1e-10)
    # a zero covariance (all samples identical) has rank 0
    z = np.zeros((d, d))
    assert metrics.frechet_distance(np.zeros(d), z, np.ones(d), np.eye(d)) == pytest.approx(d + d)


def test_trace_sqrt_product_is_symmetric_in_its_arguments():
    rng = np.random.default_rng(2)
    x, y = _random_features(rng, 30, 50), _random_features(rng, 300, 50)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)  # s1 singular, s2 full rank
    assert metrics.trace_sqrt_product(s1, s2) == pytest.approx(metrics.trace_sqrt_product(s2, s1), rel=1e-10)


@pytest.mark.parametrize(
    "n1,n2",
    [(400, 300), (20, 20), (400, 15), (15, 400), (25, 12), (40, 40)],
    ids=[
        "full-rank",
        "both-rank-deficient",
        "sigma2-lower-rank",
        "sigma1-lower-rank",
        "unequal-rank-deficient",
        "n-equals-d",
    ],
)
def test_frechet_distance_agrees_with_the_references(n1, n2):
    """The Cholesky / eigvalsh route against the nuclear norm of the features (any rank) and the
    published eigvals method (full rank), far tighter than the 1e-6 the benchmark asks for."""
    rng = np.random.default_rng(n1 + 7 * n2)
    d = 40
    x, y = _random_features(rng, n1, d), _random_features(rng, n2, d, shift=0.2, scale=1.3)
    stats = (x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    got = metrics.frechet_distance(*stats)
    assert got == pytest.approx(metrics.fid_nuclear(x, y), rel=1e-10)
    if min(n1, n2) > d:
        assert got == pytest.approx(metrics.frechet_distance_eigvals(*stats).value, rel=1e-9)
    s1, s2 = stats[1], stats[3]
    assert metrics.trace_sqrt_product(s1, s2) == pytest.approx(
        metrics.trace_sqrt_product(s2, s1), rel=1e-10
    )


def test_frechet_distance_is_exact_on_ill_conditioned_singular_covariances():
    """n = d samples with a decaying spectrum: rank d - 1 and eigenvalues spread over 1e9. The
    small eigenvalues of L^T S2 L count; a factor with its columns in ascending order, as
    ``eigh`` returns them, loses about 1e-8 relative here."""
    d = 128
    for seed in range(3):
        rng = np.random.default_rng(seed)
        mix = rng.standard_normal((d, d)) / math.sqrt(d) / np.sqrt(1 + np.arange(d))
        x, y = rng.standard_normal((d, d)) @ mix.T, 1.2 * rng.standard_normal((d, d)) @ mix.T + 0.05
        stats = (x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
        ref = metrics.fid_nuclear(x, y)
        assert metrics.frechet_distance(*stats) == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("seed", [15, 20, 25])
def test_a_singular_covariance_that_cholesky_accepts_is_factored_by_its_rank(seed):
    """10 samples of 10 features: rank 9, yet rounding leaves Cholesky a tiny positive pivot.
    psd_factor must see the rank (9 columns), or L^T S L keeps a noise eigenvalue."""
    rng = np.random.default_rng(seed)
    d = 10
    x, y = _random_features(rng, d + 1, d), _random_features(rng, d, d, shift=0.2, scale=1.3)
    s2 = np.cov(y, rowvar=False)
    scipy.linalg.cholesky(s2, lower=True)  # succeeds although s2 is singular
    assert metrics.psd_factor(s2).shape == (d, d - 1)
    got = metrics.frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), s2)
    assert got == pytest.approx(metrics.fid_nuclear(x, y), rel=1e-12)


def _rotated(q, w):
    return (q * w) @ q.T


def test_trace_sqrt_product_keeps_small_eigenvalues_of_a_singular_factor():
    """Tr sqrt(S c^2 I) = c sum sqrt(w): a factor that dropped the eigenvalue 1e-8 of the singular
    S (square root 1e-4) would be off by 1e-4 relative."""
    rng = np.random.default_rng(11)
    d, c = 12, 1.5
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    w = np.zeros(d)
    w[:4] = [1.0, 0.3, 1e-4, 1e-8]  # rank 4
    s = _rotated(q, w)
    factor = metrics.psd_factor(s)
    assert factor.shape == (d, 4)
    np.testing.assert_allclose(factor @ factor.T, s, atol=1e-14)
    expected = c * np.sqrt(w).sum()
    assert metrics.trace_sqrt_product(s, c**2 * np.eye(d)) == pytest.approx(expected, rel=1e-10)
    assert metrics.trace_sqrt_product(c**2 * np.eye(d), s) == pytest.approx(expected, rel=1e-10)


def test_trace_sqrt_product_clips_the_rounding_noise_of_zero_eigenvalues():
    """Covariances of equal rank 30 whose supports share 20 directions: L^T S2 L has 10 zero
    eigenvalues, which rounding makes partly negative. Without the clip at 0 their square roots
    are NaN; Tr sqrt(S1 S2) = sum sqrt(w1 w2) (same eigenvectors)."""
    rng = np.random.default_rng(12)
    d = 50
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    w1, w2 = np.zeros(d), np.zeros(d)
    w1[:30], w2[10:40] = rng.uniform(0.5, 2.0, 30), rng.uniform(0.5, 2.0, 30)
    s1, s2 = _rotated(q, w1), _rotated(q, w2)
    factor = metrics.psd_factor(s1)
    assert factor.shape == (d, 30) and np.linalg.eigvalsh(factor.T @ s2 @ factor).min() < 0
    got = metrics.trace_sqrt_product(s1, s2)
    assert math.isfinite(got) and got == pytest.approx(np.sqrt(w1 * w2).sum(), rel=1e-6)


def test_fid_input_errors():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((50, 4))
    with pytest.raises(ValueError, match="different feature dimensions"):
        metrics.fid(x, rng.standard_normal((50, 5)))
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        metrics.fid(bad, x)
    with pytest.raises(ValueError, match="at least 2 samples"):
        metrics.fid(x[:1], x)
    with pytest.raises(ValueError, match=r"shape \(n, d\).*extractor"):
        metrics.fid(np.zeros((5, 1, 28, 28)), x)
    mu = np.zeros(2)
    with pytest.raises(ValueError, match="not symmetric"):
        metrics.frechet_distance(mu, np.array([[1.0, 0.5], [0.0, 1.0]]), mu, np.eye(2))
    with pytest.raises(ValueError, match="not positive semi-definite"):
        metrics.frechet_distance(mu, np.array([[1.0, 2.0], [2.0, 1.0]]), mu, np.eye(2))
    with pytest.raises(ValueError, match="sigma2 is not positive semi-definite"):
        metrics.frechet_distance(mu, np.eye(2), mu, np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        metrics.frechet_distance(mu, np.eye(3), mu, np.eye(2))


# --- KID ----------------------------------------------------------------------------------------


def _mmd2_brute(x, y):
    d = len(x[0])

    def k(a, b):
        return (sum(ai * bi for ai, bi in zip(a, b)) / d + 1) ** 3

    m, n = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return kxx + kyy - 2 * kxy


def test_kid_matches_brute_force_definition():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((15, 3)), rng.standard_normal((15, 3)) + 0.5
    ref = _mmd2_brute(x.tolist(), y.tolist())
    assert metrics.mmd2_unbiased(x, y) == pytest.approx(ref, rel=1e-12)
    mean, std = metrics.kid(x, y, subsets=3, subset_size=15)  # every subset is the whole set
    assert mean == pytest.approx(ref, rel=1e-12) and std == pytest.approx(0, abs=1e-12)
    # a subset average is an average of brute-force values on the chosen rows
    mean, _ = metrics.kid(x, y, subsets=4, subset_size=6, seed=7)
    g = np.random.default_rng(7)
    picks = [(g.choice(15, 6, replace=False), g.choice(15, 6, replace=False)) for _ in range(4)]
    assert mean == pytest.approx(np.mean([_mmd2_brute(x[i].tolist(), y[j].tolist()) for i, j in picks]))


def test_kid_is_unbiased_against_closed_form():
    # In 1-D, k(x, y) = (xy + 1)^3 = 1 + 3xy + 3x^2y^2 + x^3y^3, so
    # MMD^2 = 3 (m1x - m1y)^2 + 3 (m2x - m2y)^2 + (m3x - m3y)^2 with raw moments m_k.
    mu = 0.5
    truth = 3 * mu**2 + 3 * (1 + mu**2 - 1) ** 2 + (mu**3 + 3 * mu) ** 2
    rng = np.random.default_rng(5)
    reps, m = 4000, 8
    vals = np.array([metrics.mmd2_unbiased(rng.standard_normal((m, 1)), mu + rng.standard_normal((m, 1)))
                     for _ in range(reps)])
    se = vals.std() / math.sqrt(reps)
    assert abs(vals.mean() - truth) < 4 * se, (vals.mean(), truth, se)
    # equal distributions: the unbiased estimate averages to 0 although each value is noisy
    vals0 = np.array([metrics.mmd2_unbiased(rng.standard_normal((m, 1)), rng.standard_normal((m, 1)))
                      for _ in range(reps)])
    assert abs(vals0.mean()) < 4 * vals0.std() / math.sqrt(reps)
    assert (vals0 < 0).any()


def test_kid_input_errors():
    x = np.zeros((10, 3))
    with pytest.raises(ValueError, match="subset_size=50"):
        metrics.kid(x, x, subset_size=50)
    with pytest.raises(ValueError, match="different feature dimensions"):
        metrics.kid(x, np.zeros((10, 4)), subset_size=5)


# --- Inception Score ----------------------------------------------------------------------------


def _is_definition(p):
    py = [sum(row[k] for row in p) / len(p) for k in range(len(p[0]))]
    kl = [sum(r[k] * math.log(r[k] / py[k]) for k in range(len(r)) if r[k] > 0) for r in p]
    return math.exp(sum(kl) / len(kl))


def test_inception_score_matches_definition_and_limits():
    rng = np.random.default_rng(6)
    logits = rng.standard_normal((40, 5)) * 3
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert metrics.inception_score(p, splits=1)[0] == pytest.approx(_is_definition(p.tolist()), rel=1e-12)
    mean, std = metrics.inception_score(p, splits=2)
    halves = [_is_definition(p[:20].tolist()), _is_definition(p[20:].tolist())]
    assert mean == pytest.approx(np.mean(halves)) and std == pytest.approx(np.std(halves))
    # confident and balanced over K classes: IS = K; identical predictions: IS = 1
    onehot = np.eye(4)[np.arange(40) % 4]
    assert metrics.inception_score(onehot, splits=1)[0] == pytest.approx(4.0)
    assert metrics.inception_score(np.tile(p[:1], (40, 1)), splits=1)[0] == pytest.approx(1.0)


def test_inception_score_input_errors():
    with pytest.raises(ValueError, match="sum to 1.*softmax"):
        metrics.inception_score(np.full((10, 3), 0.5), splits=1)
    with pytest.raises(ValueError, match="negative.*logits"):
        metrics.inception_score(np.array([[1.5, -0.5]] * 4), splits=1)
    with pytest.raises(ValueError, match="splits=10"):
        metrics.inception_score(np.eye(3), splits=10)


# --- precision / recall -------------------------------------------------------------------------


def _pr_brute(real, fake, k):
    def dist(a, b):
        return math.sqrt(sum((ai - bi) ** 2 for ai, bi in zip(a, b)))

    def radius(points, i):
        return sorted(dist(points[i], points[j]) for j in range(len(points)) if j != i)[k - 1]

    rr = [radius(real, i) for i in range(len(real))]
    rf = [radius(fake, j) for j in range(len(fake))]
    prec = sum(any(dist(f, r) <= rr[i] for i, r in enumerate(real)) for f in fake) / len(fake)
    rec = sum(any(dist(r, f) <= rf[j] for j, f in enumerate(fake)) for r in real) / len(real)
    return prec, rec


@pytest.mark.parametrize("k", [1, 3])
def test_precision_recall_match_brute_force(k):
    rng = np.random.default_rng(k)
    real = rng.standard_normal((40, 3))
    fake = 1.3 * rng.standard_normal((30, 3)) + np.array([0.8, 0.0, 0.0])
    got = metrics.precision_recall(real, fake, k=k)  # the default is the paper's: raw features
    ref = _pr_brute(real.tolist(), fake.tolist(), k)
    assert got == pytest.approx(ref, abs=1e-12)
    assert 0 < got[0] < 1 and 0 < got[1] < 1  # the reference is not a trivial case
    # normalize=True is the same definition on features projected onto the unit sphere
    rn, fn = (v / np.linalg.norm(v, axis=1, keepdims=True) for v in (real, fake))
    got = metrics.precision_recall(real, fake, k=k, normalize=True)
    assert got == pytest.approx(_pr_brute(rn.tolist(), fn.tolist(), k), abs=1e-12)
    assert got != pytest.approx(ref, abs=1e-3)  # and it differs from the raw one here


def test_precision_recall_default_is_the_paper_on_a_hand_made_case():
    # Reals on a line, k = 1: every real ball has radius 1. Fakes: two inside a real ball,
    # (10, 0) and (0, 3) outside, so precision = 2/4. Fake radii (k = 1, by hand):
    # f1 = (2.5, .5) and f4 = (1, .9) are 1.552 apart; f2 = (10, 0) is 7.517 from f1.
    # (1, 0) is 0.9 from f4, (2, 0) and (3, 0) are 0.707 from f1, (4, 0) is 6 from f2: recall 1.
    real = np.array([[1.0, 0], [2, 0], [3, 0], [4, 0]])
    fake = np.array([[2.5, 0.5], [10, 0], [0, 3], [1, 0.9]])
    assert metrics.precision_recall(real, fake, k=1) == (0.5, 1.0)
    # On the unit sphere all reals collapse to (1, 0) with radius 0, and only (10, 0) lands there
    assert metrics.precision_recall(real, fake, k=1, normalize=True)[0] == 0.25


def test_precision_recall_default_sees_a_too_narrow_generator():
    # fakes from N(0, 0.25 I): the paper's recall is low; projecting onto the sphere hides
    # the radial shrinkage, so the normalised recall is high
    rng = np.random.default_rng(2)
    real, fake = rng.standard_normal((400, 5)), 0.5 * rng.standard_normal((400, 5))
    got = metrics.precision_recall(real, fake)
    assert got == pytest.approx(_pr_numpy(real, fake, 3), abs=1e-12)
    assert got[0] > 0.95 and got[1] < 0.6
    assert metrics.precision_recall(real, fake, normalize=True)[1] > 0.9


def _pr_numpy(real, fake, k):
    """Kynkäänniemi et al. (2019), eq. (1)-(2), from full distance matrices and sorting."""
    d_rr, d_ff = np.linalg.norm(real[:, None] - real[None], axis=2), np.linalg.norm(fake[:, None] - fake[None], axis=2)
    rad_r, rad_f = np.sort(d_rr, 1)[:, k], np.sort(d_ff, 1)[:, k]
    d_fr = np.linalg.norm(fake[:, None] - real[None], axis=2)  # (n_f, n_r)
    return (d_fr <= rad_r[None]).any(1).mean(), (d_fr <= rad_f[:, None]).any(0).mean()


def test_precision_recall_separate_quality_from_diversity():
    rng = np.random.default_rng(8)
    real = rng.standard_normal((500, 2))
    collapsed = 0.1 * rng.standard_normal((500, 2))  # good-looking but not diverse
    p, r = metrics.precision_recall(real, collapsed, normalize=False)
    assert p > 0.95 and r < 0.3
    far = rng.standard_normal((500, 2)) + 10
    assert metrics.precision_recall(real, far, normalize=False) == (0.0, 0.0)
    assert metrics.precision_recall(real, real) == (1.0, 1.0)
    assert metrics.precision_recall(real, real, normalize=True) == (1.0, 1.0)


def test_precision_recall_errors():
    x = np.zeros((3, 2))
    with pytest.raises(ValueError, match="k=3 needs at least k \\+ 1 = 4 real"):
        metrics.precision_recall(x, np.zeros((10, 2)))
    with pytest.raises(ValueError, match="4 samples"):
        metrics.knn_radii(x, k=3)


# --- density / coverage -------------------------------------------------------------------------


def _dc_brute(real, fake, k):
    """Naeem et al. (2020), eq. (3)-(4), with Python loops."""
    def dist(a, b):
        return math.sqrt(sum((ai - bi) ** 2 for ai, bi in zip(a, b)))

    radius = [sorted(dist(x, y) for j, y in enumerate(real) if j != i)[k - 1] for i, x in enumerate(real)]
    inside = [[dist(y, x) <= radius[i] for i, x in enumerate(real)] for y in fake]
    density = sum(sum(row) for row in inside) / (k * len(fake))
    coverage = sum(any(row[i] for row in inside) for i in range(len(real))) / len(real)
    return density, coverage


@pytest.mark.parametrize("k", [1, 3])
def test_density_coverage_match_brute_force(k):
    rng = np.random.default_rng(10 + k)
    real, fake = rng.standard_normal((35, 3)), 0.8 * rng.standard_normal((25, 3)) + 0.5
    got = metrics.density_coverage(real, fake, k=k)
    assert got == pytest.approx(_dc_brute(real.tolist(), fake.tolist(), k), abs=1e-12)
    assert 0 < got.coverage < 1 and got.density != got.coverage


def test_density_coverage_expectations_for_a_perfect_generator():
    # Naeem et al. (2020): E[density] = 1 and E[coverage] = 1 - prod_i (N - i)/(M + N - i) -> 1 - 2^-k
    rng = np.random.default_rng(12)
    k, n = 5, 1000
    runs = np.array([metrics.density_coverage(rng.standard_normal((n, 8)), rng.standard_normal((n, 8)), k=k)
                     for _ in range(5)])  # (5, 2)
    expected = metrics.coverage_expectation(n, n, k)
    assert expected == pytest.approx(1 - 0.5**k, abs=2e-3)
    assert abs(runs[:, 0].mean() - 1) < 0.05  # without the 1/k the density would be about k
    assert abs(runs[:, 1].mean() - expected) < 0.01
    assert metrics.coverage_expectation(10**6, 10**6, 3) == pytest.approx(1 - 0.5**3, abs=1e-5)


def test_density_coverage_are_robust_to_outliers_where_precision_recall_are_not():
    # The demonstration of Naeem et al. (2020), section 4: one far outlier has a huge k-NN ball.
    rng = np.random.default_rng(13)
    d, k = 64, 5
    shift = np.full(d, 2.0)  # |shift| = 16, twice the radius of a cloud: fakes far from the reals
    real, fake = rng.standard_normal((1000, d)), rng.standard_normal((1000, d)) + shift
    p0, r0 = metrics.precision_recall(real, fake, k=k)
    d0, c0 = metrics.density_coverage(real, fake, k=k)
    assert max(p0, r0, d0, c0) < 0.05  # all four see the shifted fakes
    real_out = np.vstack([real, 2 * shift])  # one real outlier whose ball swallows the fakes
    p1, _ = metrics.precision_recall(real_out, fake, k=k)
    d1, _ = metrics.density_coverage(real_out, fake, k=k)
    assert p1 > 0.95, "precision is fooled by the real outlier"
    assert d1 <= 1 / k + 1e-12 and d1 < 0.25, "density: one ball adds at most 1/k per fake"
    fake_out = np.vstack([fake, -shift])  # one fake outlier whose ball swallows the reals
    _, r2 = metrics.precision_recall(real, fake_out, k=k)
    _, c2 = metrics.density_coverage(real, fake_out, k=k)
    assert r2 > 0.95, "recall is fooled by the fake outlier"
    assert c2 < 0.05, "coverage builds no ball around the fakes"


def test_density_coverage_errors():
    with pytest.raises(ValueError, match="k=5 needs at least k \\+ 1 = 6 fake"):
        metrics.density_coverage(np.zeros((10, 2)), np.zeros((4, 2)))


# --- FID_infinity -------------------------------------------------------------------------------


def test_fid_infinity_removes_the_bias_for_equal_distributions():
    ratios, wrong = [], []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        real, fake = rng.standard_normal((20000, 8)), rng.standard_normal((5000, 8))
        res = metrics.fid_infinity(real, fake, seed=seed)
        assert res.sizes.tolist() == np.linspace(500, 5000, 15).astype(int).tolist()  # the paper's grid, n/10..n
        assert (res.fids > 0).all() and res.fids[0] > 2 * res.fids[-1] and res.slope > 0
        assert res.fid_inf == pytest.approx(np.polyfit(1 / res.sizes, res.fids, 1)[1], rel=1e-9)
        assert res.fids[-1] == pytest.approx(metrics.fid(real, fake), rel=1e-8)  # N = n: all the fakes
        ratios.append(abs(res.fid_inf) / res.fids[0])
        wrong.append(np.polyfit(res.sizes, res.fids, 1)[1] / res.fids[0])  # a line in N, not 1/N
    assert np.mean(ratios) < 0.2, ratios
    assert np.mean(wrong) > 0.5, wrong  # the wrong fit fails the same bar


def test_fid_infinity_recovers_the_population_distance():
    d = 16
    mu, s = np.full(d, 0.1), np.linspace(0.7, 1.3, d)
    truth = metrics.frechet_distance(np.zeros(d), np.eye(d), mu, np.diag(s**2))
    assert truth == pytest.approx((mu**2).sum() + ((1 - s) ** 2).sum())
    rng = np.random.default_rng(20)
    real = rng.standard_normal((20000, d))
    runs = [metrics.fid_infinity(real, mu + s * rng.standard_normal((5000, d)), seed=i) for i in range(6)]
    inf = np.mean([r.fid_inf for r in runs])
    assert abs(inf - truth) < 0.04
    assert np.mean([r.fids[0] for r in runs]) - truth > 0.1  # FID_500 is biased
    assert abs(np.mean([np.polyfit(r.sizes, r.fids, 1)[1] for r in runs]) - truth) > 0.04


def test_fid_infinity_errors():
    x = np.zeros((50, 2)) + np.arange(100).reshape(50, 2)
    with pytest.raises(ValueError, match="two distinct sample sizes"):
        metrics.fid_infinity(x, x, sizes=[10, 10])
    with pytest.raises(ValueError, match="len\\(fake\\) = 50"):
        metrics.fid_infinity(x, x, sizes=[10, 60])


# --- memorisation -------------------------------------------------------------------------------


def test_memorisation_rate_flags_near_copies_only():
    rng = np.random.default_rng(14)
    train, reference, fresh = (rng.standard_normal((400, 20)) for _ in range(3))
    near_copies = train[:200] + 1e-3 * rng.standard_normal((200, 20))
    assert metrics.nearest_distances(train[:5], train).max() == 0.0  # exact: copies at distance 0
    half = np.vstack([near_copies, fresh[:200]])
    assert abs(metrics.memorisation_rate(half, train, reference) - 0.5) < 0.02
    # the chapter's bar (> 0.4) fails for a generator that does not copy
    assert metrics.memorisation_rate(fresh, train, reference) < 0.02


# --- mode coverage ------------------------------------------------------------------------------


P_3SIGMA_2D = 1 - math.exp(-4.5)  # P(|x - c| <= 3 sigma) for an isotropic 2-D Gaussian


@pytest.mark.parametrize("name,modes", [("ring", 8), ("grid", 25)])
def test_mode_coverage_on_true_samples(name, modes):
    mix = toy_mixture(name, 50_000, seed=0)
    got = metrics.mode_coverage(mix.samples, mix.centres, mix.std)
    assert got.modes == modes
    se = math.sqrt(P_3SIGMA_2D * (1 - P_3SIGMA_2D) / 50_000)
    assert abs(got.high_quality - P_3SIGMA_2D) < 4 * se, got


def test_mode_coverage_collapse_and_garbage():
    mix = toy_mixture("ring", 2000, seed=1)
    one_mode = mix.centres[3] + mix.std * torch.randn(2000, 2, generator=torch.Generator().manual_seed(0))
    got = metrics.mode_coverage(one_mode, mix.centres, mix.std)
    assert got.modes == 1 and got.high_quality > 0.97
    # samples between modes are low quality and capture nothing
    between = (mix.centres[:1] + mix.centres[1:2]) / 2 + torch.zeros(100, 2)
    assert metrics.mode_coverage(between, mix.centres, mix.std) == (0, 0.0)
    modes, hq = metrics.mode_coverage(mix.samples, mix.centres, mix.std)  # plain tuple unpacking
    assert modes == 8
    with pytest.raises(ValueError, match="must agree"):
        metrics.mode_coverage(np.zeros((5, 3)), mix.centres, mix.std)


def test_mode_coverage_needs_high_quality_to_capture_a_mode():
    # three tight modes plus near misses 4 sigma from the other five centres: 3 modes, not 8
    mix = toy_mixture("ring", 3000, seed=2)
    g = torch.Generator().manual_seed(1)
    tight = mix.centres[[0, 3, 5]][torch.randint(3, (3000,), generator=g)] + mix.std * torch.randn(3000, 2, generator=g)
    angle = 2 * math.pi * torch.rand(100, generator=g)
    ring_4sigma = 4 * mix.std * torch.stack([angle.cos(), angle.sin()], 1)
    misses = mix.centres[[1, 2, 4, 6, 7]][torch.randint(5, (100,), generator=g)] + ring_4sigma
    samples = torch.cat([tight, misses])
    got = metrics.mode_coverage(samples, mix.centres, mix.std)
    assert got.modes == 3
    nearest = torch.cdist(samples, mix.centres).argmin(1)  # a count without the 3-sigma filter
    assert nearest.unique().numel() == 8


# --- discriminator ------------------------------------------------------------------------------


def test_discriminator_auc_is_the_mann_whitney_probability():
    rng = np.random.default_rng(9)
    real = np.round(rng.normal(1.0, 1.0, 60), 1)  # rounding creates ties
    fake = np.round(rng.normal(0.0, 1.0, 50), 1)
    pairs = list(itertools.product(real, fake))
    mw = sum((r > f) + 0.5 * (r == f) for r, f in pairs) / len(pairs)
    rep = metrics.discriminator_metrics(real, fake)
    assert rep.auc == pytest.approx(mw, abs=1e-12)
    acc = ((real > 0).sum() + (fake <= 0).sum()) / 110
    assert rep.accuracy == pytest.approx(acc)
    assert rep.fpr[0] == 0 and rep.tpr[-1] == 1 and rep.fpr[-1] == 1
    assert metrics.discriminator_metrics(real + 100, fake).auc == 1.0
    assert metrics.discriminator_metrics(fake, real).auc == pytest.approx(1 - mw)


def test_discriminator_metrics_from_a_module():
    torch.manual_seed(0)
    disc = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1)).train()
    real, fake = torch.randn(30, 1, 2, 2) + 1, torch.randn(20, 1, 2, 2)
    rep = metrics.discriminator_metrics(real, fake, discriminator=disc, batch_size=7)
    with torch.no_grad():
        ref = metrics.discriminator_metrics(disc(real).squeeze(1), disc(fake).squeeze(1))
    assert rep.auc == pytest.approx(ref.auc) and rep.accuracy == pytest.approx(ref.accuracy)
    assert disc.training  # mode restored
    with pytest.raises(ValueError, match="NaN"):
        metrics.discriminator_metrics([0.1, float("nan")], [0.2])


def test_metrics_take_images_plus_extractor():
    torch.manual_seed(0)
    extractor = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 6))
    a, b = torch.rand(80, 1, 4, 4), torch.rand(80, 1, 4, 4) * 0.5
    with torch.no_grad():
        fa, fb = extractor(a), extractor(b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert metrics.fid(a, b, extractor=extractor, batch_size=9) == pytest.approx(metrics.fid(fa, fb), rel=1e-6)
    assert metrics.kid(a, b, subset_size=50, extractor=extractor)[0] == pytest.approx(
        metrics.kid(fa, fb, subset_size=50)[0], rel=1e-5)
    assert metrics.precision_recall(a, b, extractor=extractor) == metrics.precision_recall(fa, fb)
    assert metrics.inception_score(a, splits=2, classifier=extractor)[0] == pytest.approx(
        metrics.inception_score(fa.softmax(1), splits=2)[0], rel=1e-6)


def test_generator_fid_is_fid_of_seeded_samples():
    import torch

    from course_lib import features, gan

    torch.manual_seed(0)
    G = gan.MLPGenerator(latent_dim=4, hidden=(8,)).eval()
    clf = features.load_mnist_classifier()
    ref = features.extract(clf, torch.rand(200, 1, 28, 28))
    fake = G.sample(200, generator=torch.Generator().manual_seed(3))
    expected = metrics.fid(features.extract(clf, fake), ref)
    assert metrics.generator_fid(G, ref, clf, n=200, seed=3) == expected
    assert metrics.generator_fid(G, ref, clf, n=200, seed=4) != expected  # the seed is used
