"""Checks for the exercises of chapter 13 (scaling up): averaging gradients over processes with
an all-reduce, and one optimiser step with float16 loss scaling.

The all-reduce check simulates the other processes: the learner's function runs as process 0 of
three, and each call of the ``all_reduce`` it is given sums, in place, the tensor it is handed with
the matching gradient of two simulated replicas (found by value, so a copy, or a gradient already
divided by the world size, works as well as the gradient itself). The loss-scaling check runs small seeded float32 models, once with a loss whose
scaled gradient overflows. When an answer matches a classic mistake, the message names it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import nn

from .. import scaling
from . import CheckFailed, call_answer, passed, reproduces, require


def _replicas(world: int = 3) -> list[nn.Module]:
    """``world`` copies of one small model, each holding the gradient of its own data; the last
    layer is frozen (no gradient), as a fine-tuned model's early layers are."""
    gen = torch.Generator().manual_seed(1300)
    with torch.random.fork_rng():  # the learner's global generator is left as it was
        torch.manual_seed(1300)
        base = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3), nn.Linear(3, 2))
    base[3].requires_grad_(False)
    out = []
    for r in range(world):
        m = copy.deepcopy(base)
        x = torch.randn(6, 4, generator=gen) * (r + 1)
        m(x).pow(2).mean().backward()
        out.append(m)
    return out


class _SimulatedAllReduce:
    """``all_reduce(tensor, op=SUM)`` of process 0 among ``len(replicas)``: ``tensor`` becomes, in
    place, the reduction of process 0's value and the other replicas' matching gradients."""

    def __init__(self, replicas: list[nn.Module]):
        self.replicas, self.calls, self.weights_reduced = replicas, 0, False
        self.grads = [[p.grad.clone() for p in m.parameters() if p.grad is not None] for m in replicas]
        self.weights = [p.detach().clone() for p in replicas[0].parameters()]

    def __call__(self, tensor: torch.Tensor, op=dist.ReduceOp.SUM, group=None, async_op: bool = False):
        require(torch.is_tensor(tensor), f"all_reduce was given a {type(tensor).__name__}, not a tensor: "
                "skip the parameters whose .grad is None.")
        self.calls += 1
        # the tensor is process 0's gradient i times some factor c (a copy, or already divided)
        match = None
        for i, g in enumerate(self.grads[0]):
            if g.shape == tensor.shape:
                c = float((tensor * g).sum() / (g * g).sum())
                if c != 0 and torch.allclose(tensor, c * g, rtol=1e-5, atol=1e-8):
                    match = (i, c)
                    break
        if match is None:
            if any(w.shape == tensor.shape and torch.equal(w, tensor) for w in self.weights):
                raise CheckFailed("you all-reduced a parameter's weights (p or p.data), not its gradient "
                                  "p.grad: the processes already hold the same weights; it is their "
                                  "gradients that differ.")
            raise CheckFailed("all_reduce was given a tensor that is not (a copy of) a gradient of this "
                              "process: reduce each p.grad once.")
        i, c = match
        values = torch.stack([c * g[i] for g in self.grads])  # (W, ...) the processes' tensors
        if op == dist.ReduceOp.SUM:
            tensor.copy_(values.sum(0))
        elif op == dist.ReduceOp.MAX:
            tensor.copy_(values.amax(0))
        elif op == dist.ReduceOp.AVG:  # NCCL has it; gloo does not
            tensor.copy_(values.mean(0))
        else:
            raise CheckFailed(f"all_reduce with op={op}: the average is the SUM divided by the world size.")

@reproduces(scaling.average_gradients)
def check_average_gradients(fn: Callable) -> None:
    r"""``fn(params, world_size, all_reduce)`` must replace, in place, each ``p.grad`` of
    ``params`` by its mean over the ``world_size`` processes,
    :math:`\frac1W\sum_r g_r`, using ``all_reduce(tensor)`` (an in-place sum over the processes, as
    ``torch.distributed.all_reduce``) and skipping parameters without a gradient.

    Reference: :func:`course_lib.scaling.average_gradients`. Rejects: the sum without the division,
    a division by 2 whatever the world size, ``op=MAX``, reducing the weights instead of the
    gradients, a copy reduced and thrown away, only some parameters, a crash on a frozen parameter.
    """
    name = "average_gradients"
    replicas = _replicas(3)
    reduce = _SimulatedAllReduce(replicas)
    mine = [p for p in replicas[0].parameters()]
    expected = [torch.stack(gs).mean(0) for gs in zip(*reduce.grads)]
    before = [g.clone() for g in reduce.grads[0]]
    call_answer(fn, replicas[0].parameters(), 3, reduce)
    got = [p.grad for p in mine if p.grad is not None]
    require(len(got) == len(expected), f"{name} removed or added gradients.")
    require(all(p.grad is None for p in mine if not p.requires_grad),
            f"{name} gave a gradient to a frozen parameter.")
    require(reduce.calls > 0, f"{name} never called all_reduce: each process must combine its gradients "
            "with the others'.")
    sums = [torch.stack(gs).sum(0) for gs in zip(*reduce.grads)]
    if all(torch.allclose(g, s) for g, s in zip(got, sums)):
        raise CheckFailed("You left the sum of the processes' gradients: divide by world_size. Each "
                          "process's loss is already a mean over its share of the batch, so the "
                          "gradient of the global mean is the *mean* of their gradients.")
    if all(torch.allclose(g, s / 2) for g, s in zip(got, sums)):
        raise CheckFailed("You divided by 2 whatever the number of processes: divide by world_size.")
    if all(torch.equal(g, b) for g, b in zip(got, before)):
        raise CheckFailed(f"{name} left the gradients as they were: all_reduce works in place on the "
                          "tensor it is given; if you reduce a copy, put the result back into p.grad.")
    wrong = [i for i, (g, e) in enumerate(zip(got, expected)) if not torch.allclose(g, e, rtol=1e-5, atol=1e-7)]
    require(not wrong, f"{name}: the gradients of parameters {wrong} are not the mean over the processes "
            "(reduce every parameter's gradient, with op=SUM, then divide by world_size).")
    passed("gradients averaged over the processes: sum with all_reduce, divide by the world size")


def _scaling_case(seed: int, overflow: bool) -> tuple[nn.Module, Callable[[nn.Module], torch.Tensor]]:
    gen = torch.Generator().manual_seed(1310 + seed)
    with torch.random.fork_rng():
        model = nn.Linear(3, 2)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    x = torch.randn(5, 3, generator=gen)

    def loss(m: nn.Module) -> torch.Tensor:
        out = m(x)
        return (out * 1e35).pow(2).mean() if overflow else out.pow(2).mean()

    return model, loss


@reproduces(scaling.scaled_step)
def check_scaled_step(fn: Callable) -> None:
    """``fn(loss, opt, scale)`` must do one optimiser step with loss scaling and return the next
    scale: backpropagate ``scale · loss``, divide the gradients by ``scale``, step, and return
    ``scale``; if a scaled gradient is inf or NaN, skip the step and return ``scale / 2``.

    Reference: :func:`course_lib.scaling.scaled_step`, on SGD with momentum (so a step taken on
    stale gradients shows). Rejects: gradients left scaled (a step ``scale`` times too large), a
    step taken on inf gradients, the scale not halved after an overflow or halved after a good
    step, gradients not zeroed between calls, the loss scaled after ``backward``.
    """
    name = "scaled_step"
    for seed in range(2):
        for overflow in (False, True):
            model, loss = _scaling_case(seed, overflow)
            ref_model = copy.deepcopy(model)
            opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
            ref_opt = torch.optim.SGD(ref_model.parameters(), lr=0.05, momentum=0.9)
            scale = 2.0**10
            for _ in range(2):  # twice: gradients must not pile up across calls
                start = [p.detach().clone() for p in model.parameters()]
                got = call_answer(fn, loss(model), opt, scale)
                ref = scaling.scaled_step(loss(ref_model), ref_opt, scale)
                require(isinstance(got, (int, float)) or (torch.is_tensor(got) and got.numel() == 1),
                        f"{name} must return the next scale (a number), got {type(got).__name__}.")
                got = float(got)
                params = [p.detach() for p in model.parameters()]
                if overflow:
                    require(all(torch.isfinite(p).all() for p in params),
                            f"{name} stepped on inf gradients: the weights are now inf or NaN. Check "
                            "the gradients first and skip the step when any is not finite.")
                    require(all(torch.equal(p, s) for p, s in zip(params, start)),
                            f"{name} changed the weights although the scaled gradient overflowed: skip the step.")
                    require(got == scale / 2, f"after an overflow {name} must return scale / 2 = {scale / 2}, "
                            f"got {got}: a smaller scale is what lets the next step succeed.")
                else:
                    require(got == ref, f"after a step without overflow {name} must return the same scale "
                            f"({ref}), got {got}.")
                    moved = max(float((p - s).abs().max()) for p, s in zip(params, start))
                    expected = max(float((p.detach() - s).abs().max())
                                   for p, s in zip(ref_model.parameters(), start))
                    if expected > 0 and abs(moved / expected - scale) < 0.05 * scale:
                        raise CheckFailed(f"{name} stepped with the scaled gradients: the step is {scale:g} "
                                          "times too large. Divide each p.grad by the scale before opt.step().")
                    require(all(torch.allclose(p, r.detach(), rtol=1e-5, atol=1e-7)
                                for p, r in zip(params, ref_model.parameters())),
                            f"{name}'s step differs from the reference (zero the gradients first; scale the "
                            "loss *before* backward; divide the gradients by the scale; then step).")
                scale = ref
    passed("loss scaling: scaled backward, unscaled step, skipped and halved on overflow")
