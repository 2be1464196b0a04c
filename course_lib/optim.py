"""What every trainer of the course does to its weights (chapter 0): one checked optimiser step
(:func:`optimizer_step`), the learning rate of a budget (:func:`cosine_lr`) and the moving
average of the weights (:class:`EMA`). Re-exported by :mod:`course_lib.train`, whose loop uses them.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def optimizer_step(
    loss: torch.Tensor, opt: torch.optim.Optimizer, *, clip: float | None = None, name: str = "loss",
    scaler: torch.amp.GradScaler | None = None,
) -> float:
    """``zero_grad``, ``backward`` and ``opt.step()``, refusing a non-finite loss or gradient.

    Both are checked *before* the optimiser steps, so a diverging run keeps its last good
    weights and optimiser state instead of writing NaN into them (and into the next
    checkpoint). ``clip`` clips the global gradient norm. Returns that norm (before
    clipping), which the check computes anyway.

    With a ``GradScaler`` (float16 mixed precision, chapter 13) the loss is multiplied by the
    scale before ``backward`` and the gradients divided by it before clipping; a non-finite
    gradient then means the scale was too large: the scaler skips the step and lowers the scale,
    which is how loss scaling works (Micikevicius et al., 2018), not a divergence.
    """
    if not torch.isfinite(loss.detach()).all():
        raise FloatingPointError(f"{name} became {float(loss.detach())}")
    opt.zero_grad(set_to_none=True)
    params = [p for group in opt.param_groups for p in group["params"]]
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        norm = torch.nn.utils.clip_grad_norm_([p for p in params if p.grad is not None],
                                              math.inf if clip is None else clip)
        scaler.step(opt)  # skipped if a gradient is inf or NaN
        scaler.update()
        return float(norm)
    loss.backward()
    params = [p for p in params if p.grad is not None]
    try:
        norm = torch.nn.utils.clip_grad_norm_(
            params, math.inf if clip is None else clip, error_if_nonfinite=True
        )
    except RuntimeError as err:
        raise FloatingPointError(f"the gradient of {name} became non-finite") from err
    opt.step()
    return float(norm)


def cosine_lr(frac: float, peak: float, warmup: float = 0.0, floor: float = 0.0) -> float:
    """The learning rate at fraction ``frac`` of a budget: a linear warm-up over the first
    ``warmup`` of it, then a cosine decay from ``peak`` to ``floor · peak`` (Loshchilov & Hutter,
    2017, without restarts). ``frac`` is clipped to [0, 1]."""
    t = min(max(frac, 0.0), 1.0)
    if t < warmup:
        return peak * t / warmup
    c = math.cos(math.pi * (t - warmup) / (1 - warmup))
    if floor == 0.0:
        return peak * 0.5 * (1 + c)
    return peak * (floor + (1 - floor) * 0.5 * (1 + c))


class EMA:
    r"""An exponential moving average of a module's weights (Polyak averaging).

    :math:`\bar\theta \leftarrow \beta_t\bar\theta + (1-\beta_t)\theta` after every step, with the
    warm-up :math:`\beta_t = \min(\beta, (1+t)/(10+t))` so that short runs do not average in the
    initial weights (Yazıcı et al., 2019; Karras et al., 2018). Buffers (batch-norm statistics)
    are copied, not averaged. Chapter 4 samples a GAN from it; diffusion models do the same.
    """

    def __init__(self, module: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.source, self.decay = module, decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Average in the source's current weights; ``step`` is the number of steps done before."""
        beta = min(self.decay, (1 + step) / (10 + step))
        for p_ema, p in zip(self.module.parameters(), self.source.parameters()):
            p_ema.lerp_(p, 1.0 - beta)
        for b_ema, b in zip(self.module.buffers(), self.source.buffers()):
            b_ema.copy_(b)
