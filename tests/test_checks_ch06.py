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
        "differs": lambda mu, lv, eps: torch.normal(mu, torch.exp(0.5 * lv)),  # fresh noise, not eps
        "sqrt": lambda mu, lv, eps: mu + torch.sqrt(lv.abs()) * eps,
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
        "standard deviation": lambda mu, lv: 0.5 * (mu**2 + lv**2 - 1 - torch.log(lv**2)).sum(1),
        "no gradient": lambda mu, lv: torch.tensor(kl_standard_normal(mu, lv).tolist()),
        "dKL/dlogvar": lambda mu, lv: 0.5 * (mu**2 + lv.detach().exp() - 1 - lv.detach()).sum(1),
        "not implemented": stub,
    }
    for message, fn in wrong.items():
        with pytest.raises(CheckFailed, match=message):
            check_kl_standard_normal(fn)
