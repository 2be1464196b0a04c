"""The chapter 1 checks accept the reference answers and reject the classic mistakes by name."""

import math

import pytest
import torch

from course_lib.checks import CheckFailed
from course_lib.checks import ch01 as C


def stub(*args):
    raise NotImplementedError()


# ---------------------------------------------------------------- Gaussian KL


def kl_reference(mu1, s1, mu2, s2):
    return torch.log(s2 / s1) + (s1**2 + (mu1 - mu2) ** 2) / (2 * s2**2) - 0.5


def test_gaussian_kl_accepts_reference(capsys):
    C.check_gaussian_kl(kl_reference)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda m1, s1, m2, s2: kl_reference(m2, s2, m1, s1), "swapped"),
        (lambda m1, s1, m2, s2: kl_reference(m1, s1.sqrt(), m2, s2.sqrt()), "variance"),
        (lambda m1, s1, m2, s2: 2 * kl_reference(m1, s1, m2, s2), "1/2"),
        (lambda m1, s1, m2, s2: kl_reference(m1, s1, m2, s2) + 0.5, "-1"),
        (lambda m1, s1, m2, s2: torch.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2), "-1"),
        (lambda m1, s1, m2, s2: (m1 - m2) ** 2, "does not match"),
        (lambda m1, s1, m2, s2: None, "return"),
        (lambda m1, s1, m2, s2: kl_reference(m1, s1, m2, s2)[:3], "shape"),
        (stub, "not implemented"),
    ],
    ids=["swapped", "sigma-as-variance", "missing-half", "off-by-half", "missing-minus-one", "garbage", "none", "shape", "stub"],
)
def test_gaussian_kl_rejects(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        C.check_gaussian_kl(wrong)


# ---------------------------------------------------------------- Gaussian MLE


def mle_reference(x):
    mu = x.mean()
    return mu, ((x - mu) ** 2).mean()


def test_gaussian_mle_accepts_reference_and_plain_floats():
    C.check_gaussian_mle(mle_reference)
    C.check_gaussian_mle(lambda x: (float(x.mean()), float(x.var(correction=0))))


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda x: (x.mean(), x.var()), "N - 1"),  # torch's default is the unbiased variance
        (lambda x: (x.mean(), x.std(correction=0)), "standard deviation"),
        (lambda x: (x.mean(), x.var(correction=0).log()), "log"),
        (lambda x: (x.median(), x.var(correction=0)), "sample mean"),
        (lambda x: x.mean(), "pair"),
        (stub, "not implemented"),
    ],
    ids=["unbiased", "std", "logvar", "median", "single", "stub"],
)
def test_gaussian_mle_rejects(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        C.check_gaussian_mle(wrong)


# ---------------------------------------------------------------- mixture log-density


def log_normal(x, m, s):
    return -0.5 * math.log(2 * math.pi) - torch.log(s) - (x - m) ** 2 / (2 * s**2)


def mixture_reference(x, w, m, s):
    return torch.logsumexp(torch.log(w) + log_normal(x[:, None], m, s), dim=1)


def test_mixture_log_prob_accepts_reference():
    C.check_mixture_log_prob(mixture_reference)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda x, w, m, s: (w * log_normal(x[:, None], m, s)).sum(1), "log of a sum"),
        (lambda x, w, m, s: torch.logsumexp(log_normal(x[:, None], m, s), 1), "weights"),
        (lambda x, w, m, s: torch.logsumexp(log_normal(x[:, None], m, s), 1) - math.log(len(w)), "weights"),
        (lambda x, w, m, s: torch.log((w * torch.exp(log_normal(x[:, None], m, s))).sum(1)), "logsumexp"),
        (lambda x, w, m, s: mixture_reference(x, w, m, s) + 0.5 * math.log(2 * math.pi), "2 pi"),
        (lambda x, w, m, s: mixture_reference(x, w, m, 2 * s), "does not match"),
        (stub, "not implemented"),
    ],
    ids=["mean-of-logs", "no-weights", "uniform-weights", "underflow", "no-2pi", "wrong-std", "stub"],
)
def test_mixture_log_prob_rejects(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        C.check_mixture_log_prob(wrong)


# ---------------------------------------------------------------- mixture moments


def moments_reference(w, m, s):
    mean = (w * m).sum()
    return mean, (w * (s**2 + m**2)).sum() - mean**2


def test_mixture_moments_accepts_reference():
    C.check_mixture_moments(moments_reference)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda w, m, s: ((w * m).sum(), (w * s**2).sum()), "spread of the means"),
        (lambda w, m, s: ((w * m).sum(), (w * (s**2 + m**2)).sum()), "mean\\^2"),
        (lambda w, m, s: ((w * m).sum(), (w**2 * s**2).sum()), "weighted SUM"),
        (lambda w, m, s: (m.mean(), moments_reference(w, m, s)[1]), "mean ="),
        (stub, "not implemented"),
    ],
    ids=["within-only", "second-moment", "weighted-sum", "unweighted-mean", "stub"],
)
def test_mixture_moments_rejects(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        C.check_mixture_moments(wrong)
