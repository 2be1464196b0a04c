"""The chapter 6 checks accept the reference answer and reject the classic mistakes and the stub."""

import pytest
import torch

from course_lib.checks import CheckFailed
from course_lib.checks.ch06 import check_kl_standard_normal, check_reparameterize


def reparameterize(mu, logvar, eps):
    return mu + torch.exp(0.5 * logvar) * eps


def kl_standard_normal(mu, logvar):
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)


def stub(*args):
    raise NotImplementedError()


def test_reparameterize_check(capsys):
    check_reparameterize(reparameterize)
    assert "Correct" in capsys.readouterr().out
    wrong = {
        "variance": lambda mu, lv, eps: mu + lv.exp() * eps,
        "logvar is log": lambda mu, lv, eps: mu + lv * eps,
        "missing the mean": lambda mu, lv, eps: torch.exp(0.5 * lv) * eps,
        "no gradient": lambda mu, lv, eps: (mu + torch.exp(0.5 * lv) * eps).detach(),
        "detach logvar": lambda mu, lv, eps: mu + torch.exp(0.5 * lv.detach()) * eps,
        "not implemented": stub,
    }
    for message, fn in wrong.items():
        with pytest.raises(CheckFailed, match=message):
            check_reparameterize(fn)


def test_kl_check(capsys):
    check_kl_standard_normal(kl_standard_normal)
    assert "Correct" in capsys.readouterr().out
    wrong = {
        "swapped": lambda mu, lv: 0.5 * ((1 + mu**2) / lv.exp() - 1 + lv).sum(1),
        "1/2 is missing": lambda mu, lv: (mu**2 + lv.exp() - 1 - lv).sum(1),
        "averaged": lambda mu, lv: 0.5 * (mu**2 + lv.exp() - 1 - lv).mean(1),
        "sign": lambda mu, lv: -0.5 * (mu**2 + lv.exp() - 1 - lv).sum(1),
        "sum over the latent": lambda mu, lv: 0.5 * (mu**2 + lv.exp() - 1 - lv),
        "not implemented": stub,
    }
    for message, fn in wrong.items():
        with pytest.raises(CheckFailed, match=message):
            check_kl_standard_normal(fn)
