"""The chapter 2 checks accept the reference, reject the classic wrong answers and the stub."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.checks import CheckFailed
from course_lib.checks.ch02 import check_d_loss, check_g_loss_nonsaturating


def d_reference(real_logits, fake_logits):
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def d_bce(real_logits, fake_logits):  # another correct answer
    bce = F.binary_cross_entropy_with_logits
    return bce(real_logits, torch.ones_like(real_logits)) + bce(fake_logits, torch.zeros_like(fake_logits))


def d_numpy(real_logits, fake_logits):  # the right number, computed in NumPy: detached from the logits
    r, f = real_logits.detach().numpy().astype(np.float64), fake_logits.detach().numpy().astype(np.float64)
    return torch.as_tensor(np.logaddexp(0, -r).mean() + np.logaddexp(0, f).mean())


def d_straight_through(real_logits, fake_logits):  # the right value, half the fake term's gradient
    half = 0.5 * F.softplus(fake_logits).mean()
    return F.softplus(-real_logits).mean() + half + half.detach()


def test_d_loss_check_accepts_correct_answers(capsys):
    check_d_loss(d_reference)
    check_d_loss(d_bce)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda r, f: -d_reference(r, f), "wrong sign"),
        (lambda r, f: d_reference(f, r), "swapped"),
        (lambda r, f: F.softplus(-r).sum() + F.softplus(f).sum(), "summed"),
        (lambda r, f: F.softplus(-r).mean() + F.softplus(-f).mean(), "labelled the fakes as real"),
        (lambda r, f: -(torch.log(torch.sigmoid(r)).mean() + torch.log(1 - torch.sigmoid(f)).mean()), "inf or nan"),
        (lambda r, f: 0.5 * d_reference(r, f), "half"),
        (lambda r, f: F.softplus(-r).mean(), "does not match"),
        (lambda r, f: None, "return"),
        (lambda r, f: float(d_reference(r, f)), "torch tensor"),
        (lambda r, f: torch.tensor(d_reference(r, f).item()), "no gradient"),
        (lambda r, f: d_reference(r, f).detach(), "no gradient"),
        (d_numpy, "no gradient"),
        (lambda r, f: d_numpy(r, f).numpy(), "torch tensor"),
        (lambda r, f: F.softplus(-r).mean() + F.softplus(f.detach()).mean(), "does not depend"),
        (d_straight_through, "wrong gradient"),
        (lambda r, f: -(torch.log(torch.sigmoid(r).clamp(1e-7, 1)).mean() + torch.log((1 - torch.sigmoid(f)).clamp(1e-7, 1)).mean()),
         "large logits"),
    ],
)
def test_d_loss_check_rejects_classic_mistakes(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        check_d_loss(wrong)


def test_d_loss_check_rejects_the_stub():
    def stub(real_logits, fake_logits):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not implemented"):
        check_d_loss(stub)


def test_g_loss_check_accepts_correct_answers():
    check_g_loss_nonsaturating(lambda f: F.softplus(-f).mean())
    check_g_loss_nonsaturating(lambda f: F.binary_cross_entropy_with_logits(f, torch.ones_like(f)))


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda f: -F.softplus(f).mean(), "saturating"),
        (lambda f: F.softplus(f).mean(), "helps D"),
        (lambda f: -F.softplus(-f).mean(), "wrong sign"),
        (lambda f: F.softplus(-f).sum(), "summed"),
        (lambda f: -torch.log(torch.sigmoid(f)).mean(), "inf"),
        (lambda f: F.softplus(-f.detach()).mean(), "differentiable"),
        (lambda f: torch.zeros(()), "does not match"),
    ],
)
def test_g_loss_check_rejects_classic_mistakes(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        check_g_loss_nonsaturating(wrong)


def test_g_loss_check_rejects_the_stub():
    def stub(fake_logits):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not implemented"):
        check_g_loss_nonsaturating(stub)
