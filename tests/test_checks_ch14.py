"""The chapter-14 checks accept the right answers and reject the classic wrong ones."""

import math

import pytest
import torch

from course_lib.checks import CheckFailed
from course_lib.checks.ch14 import check_ddim_step, check_q_sample

# --- the forward process ----------------------------------------------------------------------


def right(x0, t, betas, eps):
    ab = torch.cumprod(1 - betas, 0)[t].reshape(-1, 1, 1, 1)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * eps


def right_log_space(x0, t, betas, eps):  # the product as a sum of logs
    ab = torch.exp(torch.cumsum(torch.log1p(-betas), 0))[t][:, None, None, None]
    return torch.sqrt(ab) * x0 + torch.sqrt(1 - ab) * eps


def alpha_not_bar(x0, t, betas, eps):
    a = (1 - betas)[t].reshape(-1, 1, 1, 1)
    return a.sqrt() * x0 + (1 - a).sqrt() * eps


def no_sqrt(x0, t, betas, eps):
    ab = torch.cumprod(1 - betas, 0)[t].reshape(-1, 1, 1, 1)
    return ab * x0 + (1 - ab) * eps


def off_by_one_low(x0, t, betas, eps):
    ab = torch.cumprod(1 - betas, 0)[(t - 1).clamp(min=0)].reshape(-1, 1, 1, 1)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * eps


def off_by_one_high(x0, t, betas, eps):  # the product over betas[1:], indexed by t
    ab = torch.cumprod(1 - betas[1:], 0)[t.clamp(max=len(betas) - 2)].reshape(-1, 1, 1, 1)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * eps


def one_t(x0, t, betas, eps):
    ab = torch.cumprod(1 - betas, 0)[t[0]]
    return ab.sqrt() * x0 + (1 - ab).sqrt() * eps


def one_step_noise(x0, t, betas, eps):
    ab = torch.cumprod(1 - betas, 0)[t].reshape(-1, 1, 1, 1)
    return ab.sqrt() * x0 + betas[t].sqrt().reshape(-1, 1, 1, 1) * eps


def detached(x0, t, betas, eps):
    return right(x0.detach(), t, betas, eps)


@pytest.mark.parametrize("fn", [right, right_log_space])
def test_q_sample_accepts_right_answers(fn):
    check_q_sample(fn)


@pytest.mark.parametrize("fn, message", [
    (alpha_not_bar, "alpha_t = 1 - beta_t"), (no_sqrt, "square roots"), (off_by_one_low, "t - 1"),
    (off_by_one_high, "t \\+ 1"), (one_t, "first image's t"), (one_step_noise, "sqrt\\(beta_t\\)"),
    (detached, "detached"),
])
def test_q_sample_rejects_classic_mistakes(fn, message):
    with pytest.raises(CheckFailed, match=message):
        check_q_sample(fn)


# --- one DDIM step ----------------------------------------------------------------------------


def ddim_right(x_t, eps_hat, ab_t, ab_s):
    x0 = (x_t - math.sqrt(1 - ab_t) * eps_hat) / math.sqrt(ab_t)
    return math.sqrt(ab_s) * x0 + math.sqrt(1 - ab_s) * eps_hat


def ddim_right_expanded(x_t, eps_hat, ab_t, ab_s):  # the same step, multiplied out
    r = math.sqrt(ab_s / ab_t)
    return r * x_t + (math.sqrt(1 - ab_s) - r * math.sqrt(1 - ab_t)) * eps_hat


def ddim_x0(x_t, eps_hat, ab_t, ab_s):
    return (x_t - math.sqrt(1 - ab_t) * eps_hat) / math.sqrt(ab_t)


def ddim_no_sqrt(x_t, eps_hat, ab_t, ab_s):
    return ab_s * (x_t - (1 - ab_t) * eps_hat) / ab_t + (1 - ab_s) * eps_hat


def ddim_swapped(x_t, eps_hat, ab_t, ab_s):
    return ddim_right(x_t, eps_hat, ab_s, ab_t)


def ddim_no_eps(x_t, eps_hat, ab_t, ab_s):
    return math.sqrt(ab_s) * ddim_x0(x_t, eps_hat, ab_t, ab_s)


@pytest.mark.parametrize("fn", [ddim_right, ddim_right_expanded])
def test_ddim_step_accepts_right_answers(fn):
    check_ddim_step(fn)


@pytest.mark.parametrize("fn, message", [
    (ddim_x0, "prediction of x_0"), (ddim_no_sqrt, "square roots"), (ddim_swapped, "swapped"),
    (ddim_no_eps, "keeps the predicted noise"),
])
def test_ddim_step_rejects_classic_mistakes(fn, message):
    with pytest.raises(CheckFailed, match=message):
        check_ddim_step(fn)
