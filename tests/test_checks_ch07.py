"""The chapter 7 checks accept the reference answers and reject the classic mistakes and the stub."""

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.checks import CheckFailed
from course_lib.checks.ch07 import check_causal_mask, check_iwae_estimate, check_negative_elbo


def _kl(mu, lv):
    return -0.5 * (1 + lv - mu**2 - lv.exp()).sum(1)


def negative_elbo(x, logits, mu, logvar):
    rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))
    return (rec + _kl(mu, logvar)).mean()


def stub(*args):
    raise NotImplementedError()


def test_negative_elbo_check(capsys):
    check_negative_elbo(negative_elbo)
    assert "Correct" in capsys.readouterr().out
    bce = lambda lg, x: F.binary_cross_entropy_with_logits(lg, x, reduction="none").sum((1, 2, 3))  # noqa: E731
    wrong = {
        "averaged over pixels": lambda x, lg, mu, lv: F.binary_cross_entropy_with_logits(lg, x) + _kl(mu, lv).mean(),
        "wrong sign": lambda x, lg, mu, lv: (bce(lg, x) - _kl(mu, lv)).mean(),
        "averaged over latent": lambda x, lg, mu, lv: (bce(lg, x) + _kl(mu, lv) / mu.shape[1]).mean(),
        "sum over the batch": lambda x, lg, mu, lv: (bce(lg, x) + _kl(mu, lv)).sum(),
        "KL is missing": lambda x, lg, mu, lv: bce(lg, x).mean(),
        "one number": lambda x, lg, mu, lv: bce(lg, x) + _kl(mu, lv),
        "no gradient": lambda x, lg, mu, lv: torch.tensor(negative_elbo(x, lg, mu, lv).item()),
        "no gradient|gradient with respect to": lambda x, lg, mu, lv: negative_elbo(x, lg, mu, lv).detach(),
        "gradient with respect to mu": lambda x, lg, mu, lv: (bce(lg, x) + _kl(mu.detach(), lv)).mean(),
        "gradient with respect to logvar": lambda x, lg, mu, lv: (bce(lg, x) + _kl(mu, lv.detach())).mean(),
        "unstable": lambda x, lg, mu, lv: (
            F.binary_cross_entropy(torch.sigmoid(lg), x, reduction="none").sum((1, 2, 3)) + _kl(mu, lv)).mean(),
        "unstable|not finite": lambda x, lg, mu, lv: (
            -(x * torch.log(torch.sigmoid(lg)) + (1 - x) * torch.log(1 - torch.sigmoid(lg))).sum((1, 2, 3))
            + _kl(mu, lv)).mean(),
        "not implemented": stub,
    }
    for message, fn in wrong.items():
        with pytest.raises(CheckFailed, match=message):
            check_negative_elbo(fn)


def test_iwae_check(capsys):
    right = {
        "logsumexp": lambda lw: torch.logsumexp(lw, 0) - math.log(lw.shape[0]),
        "float64 logsumexp": lambda lw: torch.logsumexp(lw.double(), 0) - math.log(lw.shape[0]),
        "max trick": lambda lw: lw.max(0).values + (lw - lw.max(0).values).exp().mean(0).log(),
    }
    for fn in right.values():
        check_iwae_estimate(fn)
        assert "Correct" in capsys.readouterr().out
    wrong = {
        "underflows": lambda lw: torch.log(lw.exp().mean(0)),
        "underflows to 0, even in float64": lambda lw: lw.double().exp().mean(0).log().float(),
        "averaged the log-weights": lambda lw: lw.mean(0),
        "log of the SUM": lambda lw: torch.logsumexp(lw, 0),
        "maximum": lambda lw: lw.max(0).values,
        "one value per example": lambda lw: torch.logsumexp(lw, 1) - math.log(lw.shape[1]),
        "not implemented": stub,
    }
    for message, fn in wrong.items():
        with pytest.raises(CheckFailed, match=message):
            check_iwae_estimate(fn)


def pixelcnn_mask(kernel, mask_type):
    m = torch.zeros(kernel, kernel)
    c = kernel // 2
    m[:c] = 1
    m[c, :c] = 1
    if mask_type == "B":
        m[c, c] = 1
    return m


def test_causal_mask_check(capsys):
    check_causal_mask(pixelcnn_mask)
    assert "Correct" in capsys.readouterr().out
    check_causal_mask(lambda k, t: pixelcnn_mask(k, t).bool())  # a boolean mask is a mask too

    def with_centre_row(k, t, keep_right=False, keep_left=True):
        m = pixelcnn_mask(k, t)
        c = k // 2
        if keep_right:
            m[c, c + 1:] = 1
        if not keep_left:
            m[c, :c] = 0
        return m

    wrong = {
        "swapped": lambda k, t: pixelcnn_mask(k, "B" if t == "A" else "A"),
        "hides the centre pixel": lambda k, t: pixelcnn_mask(k, "B"),  # no type A at all
        "lets the centre through": lambda k, t: pixelcnn_mask(k, "A"),  # no type B at all
        "rows below": lambda k, t: torch.cat([pixelcnn_mask(k, t)[: k // 2 + 1], torch.ones(k // 2, k)]),
        "right of the centre": lambda k, t: with_centre_row(k, t, keep_right=True),
        "left of the centre": lambda k, t: with_centre_row(k, t, keep_left=False),
        "masked columns": lambda k, t: pixelcnn_mask(k, t).T,
        "0s and 1s": lambda k, t: 0.5 * pixelcnn_mask(k, t),
        "mask, got": lambda k, t: pixelcnn_mask(k, t)[None, None],
        "not implemented": stub,
    }
    for message, fn in wrong.items():
        with pytest.raises(CheckFailed, match=message):
            check_causal_mask(fn)
