"""The chapter 8 checks accept the reference answers and reject the classic mistakes and the stub."""

import pytest
import torch
import torch.nn.functional as F

from course_lib.checks import CheckFailed
from course_lib.checks.ch08 import check_beta_vae_loss, check_kl_weight


def stub(*args):
    raise NotImplementedError()


def test_kl_weight_check(capsys):
    check_kl_weight(lambda t, w: 1.0 if w == 0 else min(1.0, t / w))
    assert "Correct" in capsys.readouterr().out
    wrong = {
        "integer division": lambda t, w: 1.0 if w == 0 else min(1, t // w),
        "clip": lambda t, w: 1.0 if w == 0 else t / w,
        "divides by zero": lambda t, w: min(1.0, t / w),
        "start at 0": lambda t, w: 1.0 if w == 0 else min(1.0, (t + 1) / w),
        "start at 0|should be": lambda t, w: 1.0 if w == 0 else max(0.0, 1.0 - t / w),  # decreasing
        "should be": lambda t, w: 1.0 if w == 0 else min(1.0, t / (2 * w)),  # too slow
        "not implemented": stub,
    }
    for message, fn in wrong.items():
        with pytest.raises(CheckFailed, match=message):
            check_kl_weight(fn)


def _rec(x, lg):
    return F.binary_cross_entropy_with_logits(lg, x, reduction="none").sum((1, 2, 3))


def _kl(mu, lv):
    return 0.5 * (mu**2 + lv.exp() - 1 - lv).sum(1)


def test_beta_vae_loss_check(capsys):
    check_beta_vae_loss(lambda x, lg, mu, lv, b: (_rec(x, lg) + b * _kl(mu, lv)).mean())
    assert "Correct" in capsys.readouterr().out
    wrong = {
        "not the reconstruction": lambda x, lg, mu, lv, b: (b * _rec(x, lg) + _kl(mu, lv)).mean(),
        "ignored": lambda x, lg, mu, lv, b: (_rec(x, lg) + _kl(mu, lv)).mean(),
        "divided": lambda x, lg, mu, lv, b: (_rec(x, lg) + _kl(mu, lv) / b).mean(),
        "one number": lambda x, lg, mu, lv, b: _rec(x, lg) + b * _kl(mu, lv),
        "no gradient": lambda x, lg, mu, lv, b: torch.tensor((_rec(x, lg) + b * _kl(mu, lv)).mean().item()),
        "gradient with respect to logits": lambda x, lg, mu, lv, b: (_rec(x, lg.detach()) + b * _kl(mu, lv)).mean(),
        "gradient with respect to mu": lambda x, lg, mu, lv, b: (_rec(x, lg) + b * _kl(mu.detach(), lv)).mean(),
        "unstable": lambda x, lg, mu, lv, b: (
            F.binary_cross_entropy(torch.sigmoid(lg), x, reduction="none").sum((1, 2, 3)) + b * _kl(mu, lv)).mean(),
        "not implemented": stub,
    }
    for message, fn in wrong.items():
        with pytest.raises(CheckFailed, match=message):
            check_beta_vae_loss(fn)
