"""Checks for the exercises of chapter 5 (mode collapse): the WGAN-GP gradient penalty and
PacGAN's packed discriminator input.

Each check compares the learner's function with :mod:`course_lib.gan_stabilise` and names
the classic mistake when the answer matches one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..gan_stabilise import gradient_penalty, pack
from . import CheckFailed, call_answer, passed, reproduces, require


class _Quadratic(nn.Module):
    r"""f(x) = a/2 |x|^2: its gradient a x has norm a|x|, one per sample, and d(penalty)/da is known."""

    def __init__(self, a: float):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(float(a), dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.a * x.flatten(1).pow(2).sum(1)  # (B,)


def _points(seed: int, shape=(6, 2)) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _mean_penalty(a: torch.Tensor, x: torch.Tensor, per_sample: bool = True, square: bool = False):
    g = a * x.flatten(1)  # the critic's gradient at each sample
    if not per_sample:
        return (g.norm() - 1).pow(2)
    norms = g.pow(2).sum(1) if square else g.norm(dim=1)
    return (norms - 1).pow(2).mean()


@reproduces(gradient_penalty)
def check_gradient_penalty(fn: Callable) -> None:
    r"""``fn(critic, real, fake)`` must return :math:`\mathbb E[(\|\nabla_{\hat x} f(\hat x)\|_2 - 1)^2]`.

    Reference: :func:`course_lib.gan_stabilise.gradient_penalty`. With ``real == fake`` every
    interpolate :math:`\hat x` is the point itself, whatever :math:`\epsilon` the answer draws,
    so the value is known exactly. Rejects the norm of the whole batch's gradient, the norm
    over the batch dimension, the squared norm, a sum over the batch, a penalty with no graph
    (``create_graph=False``: it cannot train the critic) and one that ignores the inputs.
    """
    name = "gradient_penalty"
    for seed, a in ((0, 0.7), (1, 1.9), (2, 0.3)):
        critic = _Quadratic(a)
        x = _points(seed, (6, 1, 2, 2))  # image-shaped: the norm is over every dimension but the batch
        out = call_answer(fn, critic, x.clone(), x.clone())
        require(out is not None, f"{name} returned None: did you forget `return`?")
        require(torch.is_tensor(out) and out.numel() == 1,
                f"{name} must return one number, a torch tensor; got {type(out).__name__} "
                f"{tuple(getattr(out, 'shape', ()))}")
        got = out.reshape(()).detach().double()
        with torch.no_grad():
            ref = _mean_penalty(critic.a, x)
            mistakes = [
                (_mean_penalty(critic.a, x, per_sample=False), "You took one norm of the whole batch's "
                 "gradient. The penalty is per sample: grad.flatten(1).norm(dim=1), then (norm - 1)^2, "
                 "then the mean."),
                ((critic.a * x.flatten(1)).norm(dim=0).sub(1).pow(2).mean(), "You took the norm over the "
                 "batch dimension (dim=0); each sample's gradient norm is over its own features "
                 "(grad.flatten(1).norm(dim=1))."),
                (_mean_penalty(critic.a, x, square=True), "You used the squared norm |grad|^2; WGAN-GP "
                 "penalises (|grad|_2 - 1)^2 with the norm itself."),
                (ref * len(x), "You summed over the batch; take the mean."),
            ]
        if not abs(float(got) - float(ref)) <= 1e-6 * max(1.0, float(ref)):
            for value, message in mistakes:
                require(abs(float(got) - float(value)) > 1e-6 * max(1.0, abs(float(value))), message)
            raise CheckFailed(f"{name} does not match E[(|grad f(x_hat)|_2 - 1)^2].\n"
                              f"  yours:    {float(got):.6f}\n  expected: {float(ref):.6f}")
        require(out.requires_grad, f"{name} has no gradient with respect to the critic's weights: "
                "compute the input gradient with torch.autograd.grad(..., create_graph=True), so the "
                "penalty can be backpropagated into the critic.")
        (da,) = torch.autograd.grad(out.reshape(()), critic.a, allow_unused=True)
        a_var = critic.a.detach().clone().requires_grad_(True)
        (ref_da,) = torch.autograd.grad(_mean_penalty(a_var, x), a_var)
        require(da is not None and abs(float(da) - float(ref_da)) < 1e-6 * max(1.0, abs(float(ref_da))),
                f"{name} has the right value but the wrong gradient for the critic: d/da = "
                f"{None if da is None else float(da)}, expected {float(ref_da):.6f}.")
    # interpolation: with real != fake the penalty must be taken between them, not at the reals
    critic, real, fake = _Quadratic(1.0), _points(5, (4000, 2)), _points(6, (4000, 2)) + 3.0
    got = float(torch.as_tensor(call_answer(fn, critic, real, fake)).detach())
    with torch.no_grad():
        at_real, at_fake = float(_mean_penalty(critic.a, real)), float(_mean_penalty(critic.a, fake))
        mid = float(_mean_penalty(critic.a, (real + fake) / 2))
    require(abs(got - at_real) > 0.05 * at_real and abs(got - at_fake) > 0.05 * at_fake,
            f"{name} with real != fake is the penalty at the {'real' if abs(got - at_real) < abs(got - at_fake) else 'fake'} "
            "points: take it at x_hat = eps * real + (1 - eps) * fake, with eps ~ U[0, 1] per sample.")
    require(abs(got - mid) > 0.02 * mid,
            f"{name} takes every interpolate halfway (eps = 0.5): draw eps ~ U[0, 1], one per sample.")
    passed("the WGAN-GP penalty: per-sample gradient norms at random interpolates, differentiable in the critic")


@reproduces(pack)
def check_pack(fn: Callable) -> None:
    """``fn(x, m)`` must turn ``(B, d)`` samples into ``(B // m, m * d)`` PacGAN inputs.

    Reference: :func:`course_lib.gan_stabilise.pack`. Any grouping of whole samples into packs
    of ``m`` is a sample of the product distribution, so each row must hold ``m`` intact
    samples and every sample must be used once. Rejects a transposed reshape that splits samples
    across packs, a stack with one dimension too many, and an answer that drops the remainder
    instead of refusing a batch that is not a multiple of ``m``.
    """
    name = "pack"
    for m, b, d in ((4, 12, 2), (2, 10, 3), (1, 5, 2)):
        x = torch.arange(b * d, dtype=torch.float32).reshape(b, d)
        out = call_answer(fn, x.clone(), m)
        require(torch.is_tensor(out), f"{name} must return a tensor, got {type(out).__name__}")
        require(tuple(out.shape) == (b // m, m * d),
                f"{name}(x of shape {(b, d)}, m={m}) has shape {tuple(out.shape)}; PacGAN's discriminator "
                f"takes ({b // m}, {m * d}): m whole samples side by side per row.")
        pieces = out.reshape(b // m, m, d).reshape(b, d)
        rows = {tuple(r.tolist()) for r in pieces}
        require(rows == {tuple(r.tolist()) for r in x} and len(pieces) == b,
                f"{name} splits samples between packs: each row must be m whole samples (each sample's "
                "coordinates together), every sample once. A transposed reshape mixes coordinates of "
                "different samples.")
    try:
        out = call_answer(fn, torch.zeros(10, 2), 4)
    except ValueError:
        out = None
    except CheckFailed:
        raise
    except Exception as err:  # noqa: BLE001 - any other error is a clear but wrong refusal
        raise CheckFailed(f"{name} with 10 samples and m=4 raised {type(err).__name__}; raise a ValueError "
                          "that says the batch must be a multiple of m.") from err
    require(out is None, f"{name} with 10 samples and m=4 returned a tensor; it must raise ValueError "
            "(dropping or padding samples changes the batch the discriminator judges).")
    passed("PacGAN packing: m whole samples per discriminator input, a batch not a multiple of m refused")

