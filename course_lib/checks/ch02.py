"""Checks for the exercises of chapter 2 (GAN theory): the losses, written from logits.

Each check compares the learner's loss with :mod:`course_lib.gan` on several
inputs, including logits large enough to break ``log(sigmoid(.))`` in float32,
and names the classic mistake when the answer matches one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..gan import d_loss, g_loss_nonsaturating, g_loss_saturating
from . import CheckFailed, call_answer, passed, reproduces, require


def _scalar(value, name: str) -> torch.Tensor:
    require(value is not None, f"{name} returned None: did you forget `return`?")
    require(torch.is_tensor(value), f"{name} must return a torch tensor, got {type(value).__name__}")
    require(value.numel() == 1, f"{name} must return one number (the batch mean); got shape {tuple(value.shape)}")
    return value.reshape(()).double()


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool(torch.isfinite(a)) and abs(float(a) - float(b)) <= 1e-4 * max(1.0, abs(float(b)))


def _logits(seed: int, n: int = 64, scale: float = 3.0) -> torch.Tensor:
    return torch.randn(n, generator=torch.Generator().manual_seed(seed)) * scale


@reproduces(d_loss)
def check_d_loss(fn: Callable) -> None:
    r"""``fn(real_logits, fake_logits)`` must return :math:`-\mathbb E[\log D(x)] - \mathbb E[\log(1 - D(G(z)))]`.

    Reference: :func:`course_lib.gan.d_loss`. Rejects the wrong sign, swapped
    real/fake, a sum instead of a mean, a ``log(sigmoid)`` form that
    overflows at large logits, and a value that does not backpropagate to the
    logits with the gradient of ``d_loss`` (detached, NumPy, clamped).
    """
    name = "discriminator_loss"
    for seed in range(3):
        real, fake = _logits(2 * seed) + 1.0, _logits(2 * seed + 1) - 1.0
        got = _scalar(call_answer(fn, real.clone(), fake.clone()), name)
        ref = d_loss(real, fake).double()
        if _close(got, ref):
            continue
        mistakes = [
            (-ref, "Your loss has the wrong sign: that is V(D, G) itself. D *maximises* V, so the loss "
             "to minimise is -V = -E[log D(x)] - E[log(1 - D(G(z)))]."),
            (d_loss(fake, real), "You swapped real and fake: real images should get label 1 "
             "(softplus(-l_real)), fakes label 0 (softplus(l_fake))."),
            (d_loss(real, fake) * len(real), "You summed over the batch; average it (mean) so the "
             "learning rate does not depend on the batch size."),
            (F.softplus(-real).mean() + F.softplus(-fake).mean(), "You labelled the fakes as real "
             "(softplus(-l_fake)); the discriminator must call fakes 0: softplus(l_fake)."),
            (0.5 * ref, "Your loss is half the reference: add the real and fake terms, do not average them."),
        ]
        for value, message in mistakes:
            require(not _close(got, value.double()), message)
        raise CheckFailed(f"{name} does not match -E[log D(x)] - E[log(1 - D(G(z)))].\n"
                          f"  yours:    {float(got):.6f}\n  expected: {float(ref):.6f}")
    # a confident discriminator: fakes scored +40 (fooled) and reals -40 (wrong way round)
    big = torch.tensor([40.0, 120.0])
    got = _scalar(call_answer(fn, -big, big), name)
    require(
        bool(torch.isfinite(got)),
        "Your loss is inf or nan when the logits are large (here +-40 and +-120): log(sigmoid(l)) "
        "rounds to log(0) in float32. Write it from logits: -log sigmoid(l) = softplus(-l), "
        "-log(1 - sigmoid(l)) = softplus(l) (or F.binary_cross_entropy_with_logits).",
    )
    require(_close(got, d_loss(-big, big).double()), f"{name} is wrong at large logits: {float(got)}")
    # the loss must train D: it has to backpropagate to both logits with the gradient of d_loss
    real = torch.tensor([-30.0, -2.0, 0.0, 3.0], requires_grad=True)
    fake = torch.tensor([-4.0, 0.5, 2.0, 30.0], requires_grad=True)
    out = call_answer(fn, real, fake)
    require(torch.is_tensor(out) and out.requires_grad,
            f"{name} returned a value with no gradient: it was detached from the logits (torch.tensor(x.item()), "
            ".detach(), or computed in NumPy). Build it from torch operations on the logits so backward() reaches D.")
    g_real, g_fake = torch.autograd.grad(out.reshape(()), (real, fake), allow_unused=True)
    require(g_real is not None and g_fake is not None, f"{name} does not depend on both the real and the fake logits.")
    ref_real, ref_fake = torch.autograd.grad(d_loss(real, fake), (real, fake))
    require(bool(torch.isfinite(g_real).all() and torch.isfinite(g_fake).all()),
            f"{name} has a nan/inf gradient at logits of +-30: log(sigmoid(l)) breaks there; use softplus.")
    require(torch.allclose(g_real, ref_real, atol=1e-6) and torch.allclose(g_fake, ref_fake, atol=1e-6),
            f"{name} has the right value but the wrong gradient (clamped or otherwise cut): "
            f"d/d l_real = {g_real.tolist()}, expected {ref_real.tolist()}.")
    passed("discriminator loss from logits: -E[log D(x)] - E[log(1 - D(G(z)))], stable at any logit")


@reproduces(g_loss_nonsaturating)
def check_g_loss_nonsaturating(fn: Callable) -> None:
    r"""``fn(fake_logits)`` must return :math:`-\mathbb E[\log D(G(z))]` from logits.

    Reference: :func:`course_lib.gan.g_loss_nonsaturating`. Rejects the
    saturating loss, the wrong sign, a sum instead of a mean and a
    ``log(sigmoid)`` form that overflows.
    """
    name = "generator_loss"
    for seed in range(3):
        fake = _logits(10 + seed) - 2.0
        got = _scalar(call_answer(fn, fake.clone()), name)
        ref = g_loss_nonsaturating(fake).double()
        if _close(got, ref):
            continue
        mistakes = [
            (g_loss_saturating(fake), "That is the saturating (minimax) loss E[log(1 - D(G(z)))]. Its "
             "gradient vanishes when D rejects the fakes; the non-saturating loss is -E[log D(G(z))]."),
            (-g_loss_saturating(fake), "That is -E[log(1 - D(G(z)))], the discriminator's fake term: "
             "minimising it helps D, not G. The non-saturating loss is -E[log D(G(z))]."),
            (-ref, "Your loss has the wrong sign: G wants D(G(z)) large, so minimise -E[log D(G(z))]."),
            (ref * len(fake), "You summed over the batch; use the mean."),
        ]
        for value, message in mistakes:
            require(not _close(got, value.double()), message)
        raise CheckFailed(f"{name} does not match -E[log D(G(z))].\n"
                          f"  yours:    {float(got):.6f}\n  expected: {float(ref):.6f}")
    # a poor generator: D rejects its fakes with logits -120 (sigmoid underflows to 0)
    big = torch.tensor([-40.0, -120.0])
    got = _scalar(call_answer(fn, big), name)
    require(
        bool(torch.isfinite(got)),
        "Your loss is inf when D confidently rejects the fakes (logit -120): sigmoid(-120) is 0 in "
        "float32 and log(0) = -inf. Use -log sigmoid(l) = softplus(-l).",
    )
    require(_close(got, g_loss_nonsaturating(big).double()), f"{name} is wrong at large logits: {float(got)}")
    x = torch.tensor([-6.0, 0.0], requires_grad=True)
    out = call_answer(fn, x)
    require(out.requires_grad, f"{name} must stay differentiable: build it from torch operations on the logits")
    (grad,) = torch.autograd.grad(out, x)
    require(torch.allclose(grad, -(1 - torch.sigmoid(x.detach())) / 2, atol=1e-5),
            f"{name} has the right value but the wrong gradient: {grad.tolist()}")
    passed("non-saturating generator loss -E[log D(G(z))] from logits")
