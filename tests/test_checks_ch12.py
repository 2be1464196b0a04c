"""The chapter 12 checks accept correct answers and reject the classic wrong ones."""

import pytest
import torch
import torch.nn.functional as F

from course_lib import style, translation
from course_lib.checks import CheckFailed
from course_lib.checks.ch12 import check_cycle_consistency_loss, check_gram_matrix

# --- the cycle-consistency loss ---------------------------------------------------------------


def cycle_reference(G, F_, x, y):
    return (F_(G(x)) - x).abs().mean() + (G(F_(y)) - y).abs().mean()


def cycle_l1_loss(G, F_, x, y):  # another correct answer: torch's L1 loss
    return F.l1_loss(F_(G(x)), x) + F.l1_loss(G(F_(y)), y)


def test_cycle_check_accepts_correct_answers(capsys):
    check_cycle_consistency_loss(cycle_reference)
    check_cycle_consistency_loss(cycle_l1_loss)
    assert "Correct" in capsys.readouterr().out


WRONG_CYCLE = {
    "wrong pair": (lambda G, F_, x, y: (G(x) - y).abs().mean() + (F_(y) - x).abs().mean(), "unpaired"),
    "forward only": (lambda G, F_, x, y: (F_(G(x)) - x).abs().mean(), "backward cycle"),
    "backward only": (lambda G, F_, x, y: (G(F_(y)) - y).abs().mean(), "forward cycle"),
    "wrong order": (lambda G, F_, x, y: (G(F_(x)) - x).abs().mean() + (F_(G(y)) - y).abs().mean(),
                    "wrong order"),
    "squared": (lambda G, F_, x, y: F.mse_loss(F_(G(x)), x) + F.mse_loss(G(F_(y)), y), "squared"),
    "sum": (lambda G, F_, x, y: (F_(G(x)) - x).abs().sum() + (G(F_(y)) - y).abs().sum(), "sums"),
    "detached": (lambda G, F_, x, y: cycle_reference(G, F_, x, y).detach(), "detached"),
    "item": (lambda G, F_, x, y: cycle_reference(G, F_, x, y).item(), "not a tensor"),
    "fake detached": (lambda G, F_, x, y: (F_(G(x).detach()) - x).abs().mean() + (G(F_(y).detach()) - y)
                      .abs().mean(), "wrong gradient"),
    "none": (lambda G, F_, x, y: None, "None"),
    "in place": (lambda G, F_, x, y: cycle_reference(G, F_, x.mul_(1.0).add_(0.1), y), "in place"),
    "per image": (lambda G, F_, x, y: (F_(G(x)) - x).abs().flatten(1).mean(1) + (G(F_(y)) - y).abs()
                  .flatten(1).mean(1), "scalar"),
    "library": (lambda G, F_, x, y: translation.cycle_consistency_loss(G, F_, x, y), "library function"),
}


@pytest.mark.parametrize("name", WRONG_CYCLE)
def test_cycle_check_rejects_classic_mistakes(name):
    fn, match = WRONG_CYCLE[name]
    with pytest.raises(CheckFailed, match=match):
        check_cycle_consistency_loss(fn)


# --- the Gram matrix -------------------------------------------------------------------------


def gram_reference(f):
    b, n, h, w = f.shape
    flat = f.reshape(b, n, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / (h * w)


def gram_einsum(f):  # another correct answer
    return torch.einsum("bihw,bjhw->bij", f, f) / (f.shape[-1] * f.shape[-2])


def test_gram_check_accepts_correct_answers(capsys):
    check_gram_matrix(gram_reference)
    check_gram_matrix(gram_einsum)
    check_gram_matrix(lambda f: gram_reference(f.float()))
    assert "Correct" in capsys.readouterr().out


def _flat(f):
    return f.reshape(f.shape[0], f.shape[1], -1)


WRONG_GRAM = {
    "raw": (lambda f: _flat(f) @ _flat(f).transpose(1, 2), "not normalised"),
    "by N*M": (lambda f: _flat(f) @ _flat(f).transpose(1, 2) / f[0].numel(), "N·H·W"),
    "by N": (lambda f: _flat(f) @ _flat(f).transpose(1, 2) / f.shape[1], "number of channels"),
    "positions": (lambda f: _flat(f).transpose(1, 2) @ _flat(f) / f.shape[1], "positions"),
    "batch mixed": (lambda f: (lambda a: a @ a.T / (f.shape[2] * f.shape[3]))(
        f.permute(1, 0, 2, 3).reshape(f.shape[1], -1)), "mixes the images"),
    "detached": (lambda f: gram_reference(f).detach(), "detached"),
    "none": (lambda f: None, "None"),
    "in place": (lambda f: gram_reference(f.detach().mul_(2)), "in place"),
    "library": (lambda f: style.gram_matrix(f), "library function"),
}


@pytest.mark.parametrize("name", WRONG_GRAM)
def test_gram_check_rejects_classic_mistakes(name):
    fn, match = WRONG_GRAM[name]
    with pytest.raises(CheckFailed, match=match):
        check_gram_matrix(fn)
