"""The chapter 10 checks accept correct answers and reject the classic wrong ones."""

import pytest
import torch
import torch.nn.functional as F

from course_lib import attacks
from course_lib.checks import CheckFailed
from course_lib.checks.ch10 import check_fgsm, check_pgd_step

MEAN, STD = 0.1307, 0.3081


# --- FGSM ----------------------------------------------------------------------------------


def fgsm_reference(model, x, y, eps):  # loss.backward(): leaves gradients in the weights too
    x = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    return (x + eps * x.grad.sign()).clamp(0, 1).detach()


def fgsm_other(model, x, y, eps):  # another correct answer: summed NLL, autograd.grad, min / max
    x_ = x.detach().requires_grad_()
    loss = -model(x_).log_softmax(1).gather(1, y[:, None]).sum()
    (g,) = torch.autograd.grad(loss, x_)
    with torch.no_grad():
        return torch.minimum(torch.maximum(x + eps * torch.sign(g), torch.zeros_like(x)), torch.ones_like(x))


def _input_grad(model, x, y, mean=True):
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="mean" if mean else "sum")
    (g,) = torch.autograd.grad(loss, x)
    return g


def test_fgsm_check_accepts_correct_answers(capsys):
    check_fgsm(fgsm_reference)
    check_fgsm(fgsm_other)
    assert "Correct" in capsys.readouterr().out


def test_fgsm_check_zeroes_the_weights_gradients_before_each_call():
    def strict(model, x, y, eps):  # an answer that would notice gradients left by the previous call
        assert all(p.grad is None for p in model.parameters())
        return fgsm_reference(model, x, y, eps)

    check_fgsm(strict)


def fgsm_no_clamp(model, x, y, eps):
    return (x + eps * _input_grad(model, x, y).sign()).detach()


def fgsm_descend(model, x, y, eps):
    return (x - eps * _input_grad(model, x, y).sign()).clamp(0, 1)


def fgsm_raw_gradient(model, x, y, eps):
    return (x + eps * _input_grad(model, x, y)).clamp(0, 1)


def fgsm_raw_gradient_sum(model, x, y, eps):
    return (x + eps * _input_grad(model, x, y, mean=False)).clamp(0, 1)


def fgsm_normalised_step(model, x, y, eps):  # the step is taken in normalised units
    g = _input_grad(model, x, y)
    x_norm = (x - MEAN) / STD
    x_norm_adv = x_norm + eps * g.sign()
    return (x_norm_adv * STD + MEAN).clamp(0, 1)


def fgsm_normalised_step_no_clamp(model, x, y, eps):
    x_norm_adv = (x - MEAN) / STD + eps * _input_grad(model, x, y).sign()
    return x_norm_adv * STD + MEAN


def fgsm_normalised_twice(model, x, y, eps):  # feeds normalised images to a model that normalises
    x_norm = ((x - MEAN) / STD).requires_grad_(True)
    loss = F.cross_entropy(model(x_norm), y)
    (g,) = torch.autograd.grad(loss, x_norm)
    return (x + eps * g.sign()).clamp(0, 1)


def fgsm_returns_normalised(model, x, y, eps):
    x_norm = ((x - MEAN) / STD).requires_grad_(True)
    F.cross_entropy(model(x_norm), y).backward()
    return (x_norm + eps * x_norm.grad.sign()).clamp(0, 1).detach()


def fgsm_prediction(model, x, y, eps):  # "y is not needed: attack what the model predicts"
    with torch.no_grad():
        y_pred = model(x).argmax(dim=1)
    return (x + eps * _input_grad(model, x, y_pred).sign()).clamp(0, 1)


def fgsm_attached(model, x, y, eps):
    x.requires_grad_(True)
    F.cross_entropy(model(x), y).backward()
    return (x + eps * x.grad.sign()).clamp(0, 1)


def fgsm_in_place(model, x, y, eps):
    g = _input_grad(model, x, y)
    x += eps * g.sign()
    return x.clamp_(0, 1)


def fgsm_no_return(model, x, y, eps):
    x_adv = (x + eps * _input_grad(model, x, y).sign()).clamp(0, 1)  # noqa: F841 - the mistake


@pytest.mark.parametrize(
    "wrong, message",
    [
        (fgsm_no_clamp, "not clamped to \\[0, 1\\]"),
        (fgsm_descend, "descends the loss"),
        (fgsm_raw_gradient, "raw gradient"),
        (fgsm_raw_gradient_sum, "raw gradient"),
        (fgsm_normalised_step, "normalised x outside the model"),
        (fgsm_normalised_step_no_clamp, "normalised x outside the model"),
        (fgsm_normalised_twice, "normalised twice"),
        (fgsm_returns_normalised, "return the \\*normalised\\* image"),
        (fgsm_prediction, "predicted label"),
        (fgsm_attached, "still requires grad"),
        (fgsm_in_place, "in place"),
        (fgsm_no_return, "returned None"),
        (lambda m, x, y, eps: fgsm_reference(m, x, y, eps).flatten(1), "has shape"),
        (lambda m, x, y, eps: fgsm_reference(m, x, y, eps).squeeze(1), "has shape"),
        (lambda m, x, y, eps: fgsm_reference(m, x, y, eps).numpy(), "must return a tensor"),
        (lambda m, x, y, eps: x.clone(), "does not match"),  # no attack at all
    ],
)
def test_fgsm_check_rejects_classic_mistakes(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        check_fgsm(wrong)


def test_fgsm_check_refuses_the_library_and_the_stub():
    with pytest.raises(CheckFailed, match="asks you to write"):
        check_fgsm(lambda m, x, y, eps: attacks.fgsm(m, x, y, eps))

    def stub(model, x, y, eps):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not implemented"):
        check_fgsm(stub)


# --- one PGD step --------------------------------------------------------------------------


def pgd_step_reference(model, x, x_adv, y, eps, alpha):
    x_adv = x_adv.clone().detach().requires_grad_(True)
    loss = F.cross_entropy(model(x_adv), y)
    (grad,) = torch.autograd.grad(loss, x_adv)
    x_adv = x_adv.detach() + alpha * grad.sign()
    delta = torch.clamp(x_adv - x, min=-eps, max=eps)
    return torch.clamp(x + delta, 0, 1).detach()


def pgd_step_clamp_first(model, x, x_adv, y, eps, alpha):  # [0, 1] first, then the box around x
    x_adv = x_adv.clone().requires_grad_(True)
    F.cross_entropy(model(x_adv), y, reduction="sum").backward()
    with torch.no_grad():
        z = (x_adv + alpha * x_adv.grad.sign()).clamp(0, 1)
        return torch.max(torch.min(z, x + eps), x - eps)


def test_pgd_step_check_accepts_correct_answers(capsys):
    check_pgd_step(pgd_step_reference)
    check_pgd_step(pgd_step_clamp_first)  # clamp-then-project is the same box intersection
    assert "Correct" in capsys.readouterr().out


def _ascent(model, x_adv, y, alpha):
    return x_adv + alpha * _input_grad(model, x_adv, y).sign()


def pgd_step_descend(model, x, x_adv, y, eps, alpha):
    z = x_adv - alpha * _input_grad(model, x_adv, y).sign()
    return (x + (z - x).clamp(-eps, eps)).clamp(0, 1)


def pgd_step_l2(model, x, x_adv, y, eps, alpha):
    delta = _ascent(model, x_adv, y, alpha) - x
    norm = delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    delta = torch.where(norm > eps, delta * eps / norm, delta)
    return (x + delta).clamp(0, 1)


def pgd_step_around_x_adv(model, x, x_adv, y, eps, alpha):
    z = _ascent(model, x_adv, y, alpha)
    return (x_adv + (z - x_adv).clamp(-eps, eps)).clamp(0, 1)


def pgd_step_no_projection(model, x, x_adv, y, eps, alpha):
    return _ascent(model, x_adv, y, alpha).clamp(0, 1)


def pgd_step_one_sided(model, x, x_adv, y, eps, alpha):
    delta = (_ascent(model, x_adv, y, alpha) - x).clamp(0, eps)
    return (x + delta).clamp(0, 1)


def pgd_step_forgets_x(model, x, x_adv, y, eps, alpha):
    x_adv = _ascent(model, x_adv, y, alpha)
    x_adv = torch.clamp(x_adv, -eps, eps)
    return torch.clamp(x_adv, 0, 1)


def pgd_step_no_clamp(model, x, x_adv, y, eps, alpha):
    return x + (_ascent(model, x_adv, y, alpha) - x).clamp(-eps, eps)


def pgd_step_grad_at_x(model, x, x_adv, y, eps, alpha):
    z = x_adv + alpha * _input_grad(model, x, y).sign()
    return (x + (z - x).clamp(-eps, eps)).clamp(0, 1)


def pgd_step_from_x(model, x, x_adv, y, eps, alpha):
    z = x + alpha * _input_grad(model, x_adv, y).sign()
    return (x + (z - x).clamp(-eps, eps)).clamp(0, 1)


def pgd_step_eps(model, x, x_adv, y, eps, alpha):
    z = x_adv + eps * _input_grad(model, x_adv, y).sign()
    return (x + (z - x).clamp(-eps, eps)).clamp(0, 1)


def pgd_step_attached(model, x, x_adv, y, eps, alpha):
    x_adv = x_adv.clone().requires_grad_(True)
    F.cross_entropy(model(x_adv), y).backward()
    return (x + (x_adv + alpha * x_adv.grad.sign() - x).clamp(-eps, eps)).clamp(0, 1)


def pgd_step_in_place(model, x, x_adv, y, eps, alpha):
    g = _input_grad(model, x_adv, y)
    x_adv += alpha * g.sign()
    return (x + (x_adv - x).clamp(-eps, eps)).clamp(0, 1)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (pgd_step_descend, "descends the loss"),
        (pgd_step_l2, "ℓ2 ball"),
        (pgd_step_around_x_adv, "around the original x"),
        (pgd_step_no_projection, "around the original x"),
        (pgd_step_one_sided, "one-sided"),
        (pgd_step_forgets_x, "clamped x_adv itself"),
        (pgd_step_no_clamp, "not clamped to \\[0, 1\\]"),
        (pgd_step_grad_at_x, "gradient at x"),
        (pgd_step_from_x, "stepped from x instead"),
        (pgd_step_eps, "step is eps instead of alpha"),
        (pgd_step_attached, "still requires grad"),
        (pgd_step_in_place, "in place"),
        (lambda m, x, xa, y, eps, a: None, "returned None"),
        (lambda m, x, xa, y, eps, a: pgd_step_reference(m, x, xa, y, eps, a)[0], "has shape"),
        (lambda m, x, xa, y, eps, a: xa.clone(), "does not match"),  # no step at all
    ],
)
def test_pgd_step_check_rejects_classic_mistakes(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        check_pgd_step(wrong)


def test_pgd_step_check_refuses_the_library_and_the_stub():
    with pytest.raises(CheckFailed, match="asks you to write"):
        check_pgd_step(lambda m, x, xa, y, eps, a: attacks.pgd(m, x, y, eps, a, 1, random_start=False, init=xa))

    def fgsm_then_project(m, x, xa, y, eps, a):  # one PGD step is an FGSM step of size alpha
        z = attacks.fgsm(m, xa, y, a)
        return (x + (z - x).clamp(-eps, eps)).clamp(0, 1)

    with pytest.raises(CheckFailed, match="asks you to write"):
        check_pgd_step(fgsm_then_project)

    def stub(model, x, x_adv, y, eps, alpha):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not implemented"):
        check_pgd_step(stub)


def test_checks_are_fast():
    """A few milliseconds of work each; one thread, so that a busy machine's thread contention
    on these tiny tensors (tens of ms per op) does not make the test flaky."""
    import time

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for check, answer in ((check_fgsm, fgsm_reference), (check_pgd_step, pgd_step_reference)):
            start = time.perf_counter()
            check(answer)
            assert time.perf_counter() - start < 0.5
    finally:
        torch.set_num_threads(threads)
