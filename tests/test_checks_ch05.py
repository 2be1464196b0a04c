"""The chapter 5 checks accept correct answers and reject the classic wrong ones."""

import pytest
import torch

from course_lib.checks import CheckFailed
from course_lib.checks.ch05 import check_gradient_penalty, check_pack


def _mixed(real, fake, eps=None):
    if eps is None:
        eps = torch.rand((len(real),) + (1,) * (real.ndim - 1), dtype=real.dtype)
    return (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)


def _grad(critic, x, create_graph=True):
    (g,) = torch.autograd.grad(critic(x).sum(), x, create_graph=create_graph)
    return g


def gp_reference(critic, real, fake):
    x = _mixed(real, fake)
    return (_grad(critic, x).flatten(1).norm(dim=1) - 1).pow(2).mean()


def gp_linalg(critic, real, fake):  # another correct answer
    x = _mixed(real, fake)
    g = _grad(critic, x).reshape(len(x), -1)
    return ((torch.linalg.vector_norm(g, dim=1) - 1) ** 2).mean()


def test_gradient_penalty_check_accepts_correct_answers(capsys):
    check_gradient_penalty(gp_reference)
    check_gradient_penalty(gp_linalg)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda c, r, f: (_grad(c, _mixed(r, f)).norm() - 1).pow(2), "whole batch"),
        (lambda c, r, f: (_grad(c, _mixed(r, f)).flatten(1).norm(dim=0) - 1).pow(2).mean(), "batch dimension"),
        (lambda c, r, f: (_grad(c, _mixed(r, f)).flatten(1).pow(2).sum(1) - 1).pow(2).mean(), "squared norm"),
        (lambda c, r, f: (_grad(c, _mixed(r, f)).flatten(1).norm(dim=1) - 1).pow(2).sum(), "summed"),
        (lambda c, r, f: (_grad(c, _mixed(r, f), create_graph=False).flatten(1).norm(dim=1) - 1).pow(2).mean(),
         "no gradient"),
        (lambda c, r, f: gp_reference(c, r, f).detach(), "no gradient"),
        (lambda c, r, f: gp_reference(c, r, r), "real points"),  # the penalty at the reals only
        (lambda c, r, f: (_grad(c, _mixed(r, f, torch.tensor(0.5, dtype=r.dtype))).flatten(1).norm(dim=1) - 1)
         .pow(2).mean(), "halfway"),
        (lambda c, r, f: None, "return"),
        (lambda c, r, f: float(gp_reference(c, r, f)), "torch tensor"),
    ],
)
def test_gradient_penalty_check_rejects_classic_mistakes(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        check_gradient_penalty(wrong)


def test_gradient_penalty_check_refuses_the_library_and_the_stub():
    from course_lib.gan_stabilise import gradient_penalty

    with pytest.raises(CheckFailed, match="asks you to write"):
        check_gradient_penalty(lambda c, r, f: gradient_penalty(c, r, f))

    def stub(c, r, f):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not implemented"):
        check_gradient_penalty(stub)


def pack_reference(x, m):
    if len(x) % m:
        raise ValueError("not a multiple of m")
    return x.reshape(len(x) // m, -1)


def pack_strided(x, m):  # another correct grouping: samples i, i + B/m, ... in one pack
    if len(x) % m:
        raise ValueError("not a multiple of m")
    return x.reshape(m, len(x) // m, -1).transpose(0, 1).reshape(len(x) // m, -1)


def test_pack_check_accepts_any_grouping_of_whole_samples(capsys):
    check_pack(pack_reference)
    check_pack(pack_strided)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda x, m: x.T.reshape(len(x) // m, -1), "splits samples"),  # coordinates mixed up
        (lambda x, m: x.reshape(len(x) // m, m, -1), "has shape"),  # one dimension too many
        (lambda x, m: x[: len(x) // m * m].reshape(len(x) // m, -1), "must raise ValueError"),  # drops the rest
        (lambda x, m: torch.cat([x] * m, dim=1)[:: m] if len(x) % m == 0 else x, "splits samples"),
        (lambda x, m: [x], "must return a tensor"),
    ],
)
def test_pack_check_rejects_classic_mistakes(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        check_pack(wrong)
