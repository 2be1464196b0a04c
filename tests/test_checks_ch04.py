"""The chapter 4 check accepts slerp, rejects the classic wrong answers and the stub."""

import pytest
import torch

from course_lib.checks import CheckFailed
from course_lib.checks.ch04 import check_slerp


def slerp(z0, z1, n):
    t = torch.linspace(0, 1, n)[:, None]
    omega = torch.arccos(torch.dot(z0 / z0.norm(), z1 / z1.norm()).clamp(-1, 1))
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def nlerp(z0, z1, n):  # the straight line, rescaled to the interpolated norm
    t = torch.linspace(0, 1, n)[:, None]
    line = (1 - t) * z0 + t * z1
    return line / line.norm(dim=1, keepdim=True) * ((1 - t) * z0.norm() + t * z1.norm())


def no_sin_division(z0, z1, n):
    t = torch.linspace(0, 1, n)[:, None]
    omega = torch.arccos(torch.dot(z0 / z0.norm(), z1 / z1.norm()).clamp(-1, 1))
    return torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1


def unnormalised_arccos(z0, z1, n):  # cos of the angle without dividing by the norms
    t = torch.linspace(0, 1, n)[:, None]
    omega = torch.arccos(torch.dot(z0, z1).clamp(-1, 1))
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def test_check_accepts_slerp(capsys):
    check_slerp(slerp)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda z0, z1, n: (1 - torch.linspace(0, 1, n)[:, None]) * z0 + torch.linspace(0, 1, n)[:, None] * z1, "straight line"),
        (lambda z0, z1, n: slerp(z0 / z0.norm(), z1 / z1.norm(), n), "unit vectors"),
        (lambda z0, z1, n: slerp(z0, z1, n + 1)[:-1], "stops before z1"),
        (lambda z0, z1, n: slerp(z0, z1, n).T, "shape"),
        (lambda z0, z1, n: slerp(z0, z1, n).tolist(), "tensor"),
        (lambda z0, z1, n: slerp(z1, z0, n), "start at z0"),
        (lambda z0, z1, n: None, "return"),
        (nlerp, "nlerp"),
        (no_sin_division, "divide by sin"),
        (unnormalised_arccos, "nan or inf|divide the dot product"),
        (lambda z0, z1, n: slerp(z0, z1, n) * float("nan"), "nan or inf"),
    ],
)
def test_check_rejects_classic_mistakes(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        check_slerp(wrong)


def test_check_rejects_the_stub():
    def stub(z0, z1, n):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not implemented"):
        check_slerp(stub)
