"""Checks for the exercises of chapter 3 (training a GAN): the D step and the G step.

Each check builds a tiny generator and discriminator, runs the learner's step
once with plain SGD, and compares the parameter update with one step of the
reference loss. Gradients are pre-filled with junk so a missing ``zero_grad``
shows up, and the classic mistakes (no ``detach``, wrong sign, saturating
loss, stepping the wrong network) are named. A second run with a discriminator
that scores everything about -200 rejects the ``log(sigmoid(.))`` form chapter 3
warns against (it turns the loss into ``inf`` and the weights into ``nan``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..gan import (
    MLPDiscriminator,
    MLPGenerator,
    d_loss,
    g_loss_nonsaturating,
    g_loss_saturating,
    gan_step,
)
from . import CheckFailed, call_answer, passed, reproduces, require

LR = 0.1
SEED = 1234


def _flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _nets() -> tuple[MLPGenerator, MLPDiscriminator, torch.Tensor]:
    torch.manual_seed(0)
    G = MLPGenerator(latent_dim=8, hidden=(16,))
    D = MLPDiscriminator(hidden=(16,))
    real = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(1))  # (8, 1, 28, 28)
    return G, D, real


def _confident(D: MLPDiscriminator, bias: float = -200.0) -> MLPDiscriminator:
    """Shift D's output so that every logit is about ``bias``: a discriminator sure that all inputs are fake."""
    with torch.no_grad():
        D.net[-1].bias.fill_(bias)
    return D


def _stable_at_large_logits(name: str, run: Callable, model: str) -> None:
    """Run the learner's step once more where D scores every input about -200 (see :func:`_confident`)."""
    loss, moved, ref = run()
    finite = isinstance(loss, float) and loss == loss and abs(loss) != float("inf")
    require(
        finite and bool(torch.isfinite(moved).all()),
        f"{name} breaks when D is confident (logits near -200): the loss is {loss} and {model}'s weights "
        f"{'are finite' if bool(torch.isfinite(moved).all()) else 'became nan'}. torch.log(torch.sigmoid(l)) "
        "rounds to log(0) there; write the loss from logits with softplus (course_lib.gan).",
    )
    require(_close(moved, ref), f"{name} makes a different update when D is confident (logits near -200): "
            "use the softplus form of the loss, not log(sigmoid) with a clamp or an epsilon.")


def _junk_grads(model: nn.Module) -> torch.Tensor:
    junk = []
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.5)
        junk.append(p.grad.flatten().clone())
    return torch.cat(junk)


def _update_of(loss_fn: Callable[[nn.Module], torch.Tensor], model: nn.Module) -> torch.Tensor:
    """The SGD update -LR * grad of loss_fn(model) w.r.t. the model's parameters."""
    grads = torch.autograd.grad(loss_fn(model), list(model.parameters()))
    return -LR * torch.cat([g.flatten() for g in grads])


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a, b, atol=1e-6, rtol=1e-4)


def _returned_float(value, name: str) -> float:
    require(value is not None, f"{name} returned None: return the loss as a float (loss.item()).")
    require(isinstance(value, float), f"{name} must return the loss as a Python float (loss.item()), got {type(value).__name__}")
    return value


@reproduces(gan_step)
def check_d_step(fn: Callable) -> None:
    """``fn(G, D, opt_d, real)`` must make one discriminator update on detached fakes and return the loss.

    Reference: the D step of :func:`course_lib.gan.gan_step`, with
    ``z = G.sample_latent(len(real))`` drawn from the global torch RNG.
    """
    name = "discriminator_step"
    G, D, real = _nets()
    g0, d0 = _flat(G), _flat(D)
    opt_d = torch.optim.SGD(D.parameters(), lr=LR)
    junk = _junk_grads(D)

    torch.manual_seed(SEED)
    fake = G(G.sample_latent(len(real))).detach()
    ref = _update_of(lambda m: d_loss(m(real), m(fake)), D)
    swapped = _update_of(lambda m: d_loss(m(fake), m(real)), D)
    ref_loss = d_loss(D(real), D(fake)).item()

    torch.manual_seed(SEED)
    loss = call_answer(fn, G, D, opt_d, real)
    step = _flat(D) - d0
    require(_close(_flat(G), g0), "The discriminator step changed the generator's weights: only D may move here.")
    leaked = [p.grad for p in G.parameters() if p.grad is not None and p.grad.abs().sum() > 0]
    require(
        not leaked,
        "Gradient reached the generator: you did not detach the fakes. Use D(fake.detach()) in the "
        "D step, so loss_d.backward() stops at G's output (and does not leave junk in G's .grad).",
    )
    if not _close(step, ref):
        mistakes = [
            (torch.zeros_like(ref), "D's weights did not change: call opt_d.step() after loss.backward()."),
            (ref - LR * junk, "D moved by the right gradient plus stale gradient left in .grad: call "
             "opt_d.zero_grad() before loss.backward()."),
            (-ref, "Your D step has the wrong sign: it makes D worse. Minimise "
             "softplus(-l_real) + softplus(l_fake) (= -V), do not maximise it."),
            (swapped, "You swapped the labels: real images "
             "must be pushed towards 1 and fakes towards 0."),
        ]
        for value, message in mistakes:
            require(not _close(step, value), message)
        raise CheckFailed(
            f"{name} changed D differently from one step on d_loss(D(real), D(fake.detach())). Draw the "
            "fakes as G(G.sample_latent(len(real))) and use course_lib.gan.d_loss (or softplus on logits)."
        )
    got = _returned_float(loss, name)
    require(abs(got - ref_loss) < 1e-4, f"{name} returned {got:.5f}; the loss before the step was {ref_loss:.5f}.")

    def confident_run():
        G, D, real = _nets()
        _confident(D)
        d0 = _flat(D)
        opt_d = torch.optim.SGD(D.parameters(), lr=LR)
        torch.manual_seed(SEED)
        fake = G(G.sample_latent(len(real))).detach()
        ref = _update_of(lambda m: d_loss(m(real), m(fake)), D)
        D.zero_grad(set_to_none=True)
        torch.manual_seed(SEED)
        loss = call_answer(fn, G, D, opt_d, real)
        return loss, _flat(D) - d0, ref

    _stable_at_large_logits(name, confident_run, "D")
    passed("the D step: fakes detached, gradients zeroed, one step on -V, generator untouched, stable at any logit")


@reproduces(gan_step)
def check_g_step(fn: Callable) -> None:
    """``fn(G, D, opt_g, batch_size)`` must make one non-saturating generator update and return the loss.

    Reference: the G step of :func:`course_lib.gan.gan_step`: fresh fakes
    ``G(G.sample_latent(batch_size))``, a forward through D, ``-E[log D(G(z))]``,
    and only G's optimiser steps.
    """
    name = "generator_step"
    G, D, _ = _nets()
    g0, d0 = _flat(G), _flat(D)
    opt_g = torch.optim.SGD(G.parameters(), lr=LR)
    junk = _junk_grads(G)
    n = 8

    def fakes(m):
        torch.manual_seed(SEED)
        return m(m.sample_latent(n))

    ref = _update_of(lambda m: g_loss_nonsaturating(D(fakes(m))), G)
    saturating = _update_of(lambda m: g_loss_saturating(D(fakes(m))), G)
    ref_loss = g_loss_nonsaturating(D(fakes(G))).item()
    D.zero_grad(set_to_none=True)

    torch.manual_seed(SEED)
    loss = call_answer(fn, G, D, opt_g, n)
    step = _flat(G) - g0
    require(_close(_flat(D), d0), "The generator step changed the discriminator's weights: only G may move here.")
    if not _close(step, ref):
        mistakes = [
            (torch.zeros_like(ref), "G's weights did not change. Did you detach the fakes in the G step "
             "(then no gradient reaches G), or forget opt_g.step()?"),
            (ref - LR * junk, "G moved by the right gradient plus stale gradient left in .grad: call "
             "opt_g.zero_grad() before loss.backward()."),
            (saturating, "You used the saturating loss "
             "log(1 - D(G(z))). Use the non-saturating -log D(G(z)) = softplus(-logits)."),
            (-ref, "Your G step has the wrong sign: it helps D. Minimise -log D(G(z))."),
        ]
        for value, message in mistakes:
            require(not _close(step, value), message)
        raise CheckFailed(
            f"{name} changed G differently from one step on -E[log D(G(z))]. Draw z with "
            "G.sample_latent(batch_size) and use course_lib.gan.g_loss_nonsaturating."
        )
    got = _returned_float(loss, name)
    require(abs(got - ref_loss) < 1e-4, f"{name} returned {got:.5f}; the loss before the step was {ref_loss:.5f}.")

    def confident_run():
        G, D, _ = _nets()
        _confident(D)
        g0 = _flat(G)
        opt_g = torch.optim.SGD(G.parameters(), lr=LR)
        ref = _update_of(lambda m: g_loss_nonsaturating(D(fakes(m))), G)
        G.zero_grad(set_to_none=True)
        D.zero_grad(set_to_none=True)
        torch.manual_seed(SEED)
        loss = call_answer(fn, G, D, opt_g, n)
        return loss, _flat(G) - g0, ref

    _stable_at_large_logits(name, confident_run, "G")
    passed("the G step: fresh forward through D, non-saturating loss, only G steps, stable at any logit")
