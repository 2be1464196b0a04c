"""The chapter 11 checks accept correct answers and reject the classic wrong ones."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib import restoration
from course_lib.checks import CheckFailed
from course_lib.checks.ch11 import (
    _mask_cases,
    _psnr_cases,
    _psnr_reference,
    check_mask_data_step,
    check_psnr,
    check_residual_loss,
)

# --- PSNR ------------------------------------------------------------------------------------


def psnr_reference(x, x_hat):
    mse = ((x - x_hat) ** 2).mean(dim=(1, 2, 3))
    return (10 * torch.log10(1.0 / mse)).mean()  # a 0-d tensor


def psnr_float_rmse(x, x_hat):  # another correct answer: 20 log10(1 / RMSE), a Python float
    values = []
    for a, b in zip(x, x_hat):
        rmse = math.sqrt(float(((a - b) ** 2).mean()))
        values.append(20 * math.log10(1 / rmse))
    return sum(values) / len(values)


def psnr_numpy(x, x_hat):  # another: numpy, -10 log10(MSE), a numpy scalar
    err = (x.numpy() - x_hat.numpy()) ** 2
    return np.mean(-10 * np.log10(err.reshape(len(err), -1).mean(axis=1)))


def psnr_float32(x, x_hat):  # the same in float32
    return psnr_reference(x.float(), x_hat.float())


def test_psnr_check_accepts_correct_answers(capsys):
    check_psnr(psnr_reference)
    check_psnr(psnr_float_rmse)
    check_psnr(psnr_numpy)
    check_psnr(psnr_float32)
    assert "Correct" in capsys.readouterr().out


def test_psnr_reference_agrees_with_the_library():
    for x, x_hat in _psnr_cases():
        assert math.isclose(float(_psnr_reference(x, x_hat).mean()), restoration.psnr(x, x_hat),
                            rel_tol=1e-9)


def _mse(x, x_hat):
    return ((x - x_hat) ** 2).mean(dim=(1, 2, 3))


def psnr_255(x, x_hat):
    return (10 * torch.log10(255.0**2 / _mse(x, x_hat))).mean()


def psnr_pooled(x, x_hat):
    return 10 * torch.log10(1 / ((x - x_hat) ** 2).mean())


def psnr_pooled_f_mse(x, x_hat):
    return 10 * torch.log10(1 / F.mse_loss(x_hat, x))


def psnr_20_mse(x, x_hat):
    return (20 * torch.log10(1 / _mse(x, x_hat))).mean()


def psnr_rmse_no_square(x, x_hat):
    return (10 * torch.log10(1 / _mse(x, x_hat).sqrt())).mean()


def psnr_natural_log(x, x_hat):
    return (10 * torch.log(1 / _mse(x, x_hat))).mean()


def psnr_per_image(x, x_hat):
    return 10 * torch.log10(1 / _mse(x, x_hat))


def psnr_negative(x, x_hat):
    return (10 * torch.log10(_mse(x, x_hat))).mean()


def psnr_sum(x, x_hat):
    return (10 * torch.log10(1 / ((x - x_hat) ** 2).sum(dim=(1, 2, 3)))).mean()


def psnr_sum_pooled(x, x_hat):
    return 10 * torch.log10(1 / ((x - x_hat) ** 2).sum())


def psnr_in_place(x, x_hat):
    x -= x_hat
    return (10 * torch.log10(1 / (x**2).mean(dim=(1, 2, 3)))).mean()


def psnr_no_return(x, x_hat):
    value = psnr_reference(x, x_hat)  # noqa: F841 - the mistake


@pytest.mark.parametrize(
    "wrong, message",
    [
        (psnr_255, "data range of 255"),
        (psnr_pooled, "pooled the squared errors"),
        (psnr_pooled_f_mse, "pooled the squared errors"),
        (psnr_20_mse, "20·log10\\(1/MSE\\)"),
        (psnr_rmse_no_square, "the square is missing"),
        (psnr_natural_log, "natural log"),
        (psnr_per_image, "one per image \\(the right ones\\)"),
        (lambda x, xh: psnr_per_image(x, xh)[:, None], "one per image"),
        (psnr_negative, "negative sign"),
        (psnr_sum, "sum of squared errors instead of a mean"),
        (psnr_sum_pooled, "sum of squared errors instead of a mean"),
        (psnr_in_place, "in place"),
        (psnr_no_return, "returned None"),
        (lambda x, xh: 10 * torch.log10(1 / (x - xh) ** 2), "must return one number"),
        (lambda x, xh: "30 dB", "not a number"),
        (lambda x, xh: psnr_reference(x, x), "returned inf"),
        (lambda x, xh: psnr_reference(x, xh) + 0.5, "returns .* dB; the mean over the"),
    ],
)
def test_psnr_check_rejects_classic_mistakes(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        check_psnr(wrong)


def test_psnr_check_refuses_the_library_and_the_stub():
    with pytest.raises(CheckFailed, match="asks you to write"):
        check_psnr(lambda x, x_hat: restoration.psnr(x, x_hat))

    def stub(x, x_hat):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not implemented"):
        check_psnr(stub)


# --- the residual-learning loss --------------------------------------------------------------


def residual_loss_reference(net, x, y):
    return ((net(y) - (y - x)) ** 2).mean()


def residual_loss_mse(net, x, y):  # another correct answer: F.mse_loss, noise as a variable
    noise = y - x
    return F.mse_loss(net(y), noise)


def residual_loss_denoised(net, x, y):  # the denoised image against x: the same loss
    return ((y - net(y) - x) ** 2).mean()


def residual_loss_float32(net, x, y):  # the error cast to float32
    return torch.mean(torch.square((net(y) - (y - x)).float()))


def test_residual_loss_check_accepts_correct_answers(capsys):
    check_residual_loss(residual_loss_reference)
    check_residual_loss(residual_loss_mse)
    check_residual_loss(residual_loss_denoised)
    check_residual_loss(residual_loss_float32)
    assert "Correct" in capsys.readouterr().out


def residual_loss_image(net, x, y):
    return ((net(y) - x) ** 2).mean()


def residual_loss_sign(net, x, y):
    return ((net(y) - (x - y)) ** 2).mean()


def residual_loss_clean_input(net, x, y):
    return ((net(x) - (y - x)) ** 2).mean()


def residual_loss_sum(net, x, y):
    return ((net(y) - (y - x)) ** 2).sum()


def residual_loss_sum_per_image(net, x, y):
    return ((net(y) - (y - x)) ** 2).sum(dim=(1, 2, 3)).mean()


def residual_loss_l1(net, x, y):
    return F.l1_loss(net(y), y - x)


def residual_loss_detached(net, x, y):
    return residual_loss_reference(net, x, y).detach()


def residual_loss_item(net, x, y):
    return residual_loss_reference(net, x, y).item()


def residual_loss_no_grad(net, x, y):
    with torch.no_grad():
        return residual_loss_reference(net, x, y)


def residual_loss_backward(net, x, y):
    loss = residual_loss_reference(net, x, y)
    loss.backward()
    return loss


def residual_loss_per_pixel(net, x, y):
    return (net(y) - (y - x)) ** 2


def residual_loss_in_place(net, x, y):
    y -= x
    return ((net(y + x) - y) ** 2).mean()


@pytest.mark.parametrize(
    "wrong, message",
    [
        (residual_loss_image, "compares net\\(y\\) with the clean image"),
        (residual_loss_sign, "wrong sign"),
        (residual_loss_clean_input, "fed the clean image x"),
        (residual_loss_sum, "sum of squared errors instead of a mean"),
        (residual_loss_sum_per_image, "sums the squared errors over each image"),
        (residual_loss_l1, "L1 loss"),
        (residual_loss_detached, "must stay in the graph"),
        (residual_loss_item, "must stay in the graph"),
        (residual_loss_no_grad, "must stay in the graph"),
        (residual_loss_backward, "calls? backward\\(\\)"),
        (residual_loss_per_pixel, "must return a scalar.*each pixel"),
        (lambda net, x, y: ((net(y) - (y - x)) ** 2).mean(dim=(1, 2, 3)), "must return a scalar"),
        (residual_loss_in_place, "in place"),
        (lambda net, x, y: None, "returned None"),
        (lambda net, x, y: 0.5 * residual_loss_reference(net, x, y), "the reference"),
    ],
)
def test_residual_loss_check_rejects_classic_mistakes(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        check_residual_loss(wrong)


def test_residual_loss_check_tests_the_gradient():
    def wrong_gradient(net, x, y):  # the right value, but the gradient of the L1 loss
        l2 = residual_loss_reference(net, x, y)
        l1 = F.l1_loss(net(y), y - x)
        return l1 + (l2 - l1).detach()

    with pytest.raises(CheckFailed, match="wrong gradient"):
        check_residual_loss(wrong_gradient)


def test_residual_loss_check_refuses_the_stub():
    def stub(net, x, y):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not implemented"):
        check_residual_loss(stub)


# --- the data step for inpainting ------------------------------------------------------------


def mask_step_reference(y, mask, z, alpha):
    return (mask * y + alpha * z) / (mask + alpha)


def mask_step_where(y, mask, z, alpha):  # another correct answer: the two cases apart
    observed = (y + alpha * z) / (1 + alpha)
    return torch.where(mask.bool(), observed, z)


def test_mask_step_check_accepts_correct_answers(capsys):
    check_mask_data_step(mask_step_reference)
    check_mask_data_step(mask_step_where)
    check_mask_data_step(lambda y, m, z, a: mask_step_reference(y.float(), m.float(), z.float(), a))
    assert "Correct" in capsys.readouterr().out


def test_mask_step_reference_agrees_with_the_library():
    for y, mask, z, alpha in _mask_cases():
        lib = restoration.Mask(mask).solve(y, z, alpha)
        assert torch.allclose(lib.double(), mask_step_reference(y, mask, z, alpha), atol=1e-12)


def mask_step_ignores_mask(y, mask, z, alpha):
    return (y + alpha * z) / (1 + alpha)


def mask_step_hard(y, mask, z, alpha):
    return mask * y + (1 - mask) * z


def mask_step_one_plus_alpha(y, mask, z, alpha):
    return (mask * y + alpha * z) / (1 + alpha)


def mask_step_leaks(y, mask, z, alpha):
    return (y + alpha * z) / (mask + alpha)


def mask_step_alpha_wrong_term(y, mask, z, alpha):
    return (alpha * mask * y + z) / (alpha * mask + 1)


def mask_step_in_place(y, mask, z, alpha):
    z.mul_(alpha).add_(mask * y)
    return z / (mask + alpha)


def mask_step_in_place_y(y, mask, z, alpha):
    y.mul_(mask)
    return (y + alpha * z) / (mask + alpha)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (mask_step_ignores_mask, "ignores the mask"),
        (mask_step_hard, "hard replacement"),
        (mask_step_one_plus_alpha, "denominator is \\(1 \\+ alpha\\)"),
        (mask_step_leaks, "leak"),
        (mask_step_alpha_wrong_term, "alpha on the wrong term"),
        (mask_step_in_place, "in place"),
        (mask_step_in_place_y, "in place"),
        (lambda y, m, z, a: None, "returned None"),
        (lambda y, m, z, a: mask_step_reference(y, m, z, a)[0], "has shape"),
        (lambda y, m, z, a: mask_step_reference(y, m, z, a).squeeze(1), "has shape"),
        (lambda y, m, z, a: mask_step_reference(y, m, z, a).numpy(), "must return a tensor"),
        (lambda y, m, z, a: z.clone(), "does not match"),
    ],
)
def test_mask_step_check_rejects_classic_mistakes(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        check_mask_data_step(wrong)


def test_mask_step_check_refuses_the_library_and_the_stub():
    with pytest.raises(CheckFailed, match="asks you to write"):
        check_mask_data_step(lambda y, m, z, a: restoration.Mask(m).solve(y, z, a))

    def stub(y, mask, z, alpha):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not implemented"):
        check_mask_data_step(stub)
    # the library function is restored afterwards
    y, mask, z, alpha = _mask_cases()[0]
    assert torch.allclose(restoration.Mask(mask).solve(y, z, alpha).double(),
                          mask_step_reference(y, mask, z, alpha))


def test_checks_are_fast():
    """A few milliseconds of work each; one thread, so that a busy machine's thread contention
    on these tiny tensors does not make the test flaky."""
    import time

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for check, answer in ((check_psnr, psnr_reference),
                              (check_residual_loss, residual_loss_reference),
                              (check_mask_data_step, mask_step_reference)):
            start = time.perf_counter()
            check(answer)
            assert time.perf_counter() - start < 0.5
    finally:
        torch.set_num_threads(threads)
