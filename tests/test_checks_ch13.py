"""The chapter-13 checks accept the right answers and reject the classic wrong ones."""

import pytest
import torch
import torch.distributed as dist

from course_lib import scaling
from course_lib.checks import CheckFailed
from course_lib.checks.ch13 import check_average_gradients, check_scaled_step

# --- averaging gradients ----------------------------------------------------------------------


def right_copy(params, world_size, all_reduce):
    for p in params:
        if p.grad is not None:
            g = p.grad.clone()
            all_reduce(g)
            p.grad = g / world_size


def right_divide_first(params, world_size, all_reduce):
    for p in params:
        if p.grad is not None:
            p.grad /= world_size
            all_reduce(p.grad)


@pytest.mark.parametrize("fn", [right_copy, right_divide_first])
def test_average_gradients_accepts_right_answers(fn):
    check_average_gradients(fn)


def sum_only(params, world_size, all_reduce):
    for p in params:
        if p.grad is not None:
            all_reduce(p.grad)


def halved(params, world_size, all_reduce):
    for p in params:
        if p.grad is not None:
            all_reduce(p.grad)
            p.grad /= 2


def max_op(params, world_size, all_reduce):
    for p in params:
        if p.grad is not None:
            all_reduce(p.grad, op=dist.ReduceOp.MAX)


def weights(params, world_size, all_reduce):
    for p in params:
        all_reduce(p.data)
        p.data /= world_size


def copy_thrown_away(params, world_size, all_reduce):
    for p in params:
        if p.grad is not None:
            g = p.grad.clone()
            all_reduce(g)
            g /= world_size


def first_only(params, world_size, all_reduce):
    p = next(iter(params))
    all_reduce(p.grad)
    p.grad /= world_size


def no_skip(params, world_size, all_reduce):
    for p in params:
        all_reduce(p.grad)
        p.grad /= world_size


def nothing(params, world_size, all_reduce):
    pass


@pytest.mark.parametrize("fn, message", [
    (sum_only, "divide by world_size"),
    (halved, "divided by 2"),
    (max_op, "not the mean"),
    (weights, "weights"),
    (copy_thrown_away, "never called all_reduce|left the gradients"),
    (first_only, "not the mean"),
    (no_skip, "skip the parameters"),
    (nothing, "never called all_reduce"),
])
def test_average_gradients_rejects_classic_mistakes(fn, message):
    with pytest.raises(CheckFailed, match=message):
        check_average_gradients(fn)


def test_average_gradients_forbids_the_library():
    with pytest.raises(CheckFailed):
        check_average_gradients(scaling.average_gradients)


# --- loss scaling -----------------------------------------------------------------------------


def scaled_right_loop(loss, opt, scale):
    opt.zero_grad()
    (scale * loss).backward()
    params = [p for g in opt.param_groups for p in g["params"]]
    if any(not torch.isfinite(p.grad).all() for p in params):
        return scale * 0.5
    for p in params:
        p.grad = p.grad / scale
    opt.step()
    return scale


def test_scaled_step_accepts_a_right_answer():
    check_scaled_step(scaled_right_loop)


def scaled_step_missing(part):
    """A loss-scaled step with one part left out: each is a classic mistake."""

    def step(loss, opt, scale):
        if part != "zero_grad":
            opt.zero_grad()
        (loss if part == "scale_loss" else loss * scale).backward()
        params = [p for g in opt.param_groups for p in g["params"]]
        if part != "skip_on_inf" and any(not torch.isfinite(p.grad).all() for p in params):
            return scale if part == "halve" else scale / 2
        if part != "unscale":
            for p in params:
                p.grad /= scale
        opt.step()
        return scale / 2 if part == "keep_scale" else scale

    return step


@pytest.mark.parametrize("part, message", [
    ("unscale", "too large"),
    ("skip_on_inf", "inf or NaN"),
    ("halve", "scale / 2"),
    ("keep_scale", "same scale"),
    ("zero_grad", "differs from the reference|changed the weights"),
    ("scale_loss", "differs from the reference|changed the weights|inf or NaN"),
])
def test_scaled_step_rejects_classic_mistakes(part, message):
    with pytest.raises(CheckFailed, match=message):
        check_scaled_step(scaled_step_missing(part))


def test_scaled_step_forbids_the_library():
    with pytest.raises(CheckFailed):
        check_scaled_step(scaling.scaled_step)
