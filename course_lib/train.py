"""A small training loop shared by every chapter: budgets, progress bar, history, NaN guard.

Defined in chapter 0; the GAN (chapters 3-5) and VAE (chapters 7-8) chapters
plug their own ``step`` function into :func:`fit`. The loop knows nothing about
models: a step takes one minibatch, updates whatever it owns, and returns the
numbers to record.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch

from .utils import progress

History = dict[str, list[float]]
Batch = tuple[torch.Tensor, ...]


def minibatches(
    tensors: Sequence[torch.Tensor], batch_size: int, generator: torch.Generator | None = None,
    drop_last: bool = True,
) -> Iterator[tuple[int, Batch]]:
    """Endless ``(epoch, batch)`` pairs over in-memory tensors, reshuffled every epoch.

    Indexing tensors in memory is several times faster than a ``DataLoader`` on
    the small datasets of the course.
    """
    n = len(tensors[0])
    if any(len(t) != n for t in tensors):
        raise ValueError(f"tensors differ in length: {[len(t) for t in tensors]}")
    if batch_size < 1 or (drop_last and batch_size > n):
        raise ValueError(f"batch_size={batch_size} does not fit {n} samples")
    epoch = 0
    while True:
        order = torch.randperm(n, generator=generator)
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            idx = order[start : start + batch_size]
            yield epoch, tuple(t[idx] for t in tensors)
        epoch += 1


def validate_budget(
    steps: int | None = None, epochs: float | None = None, seconds: float | None = None
) -> None:
    """Check training budgets before a loop starts; raise :class:`ValueError` naming the bad one.

    At least one must be given. ``steps`` is a positive integer (``2.5`` or ``True`` are
    refused, not rounded); ``epochs`` and ``seconds`` are finite positive numbers. A NaN
    budget would otherwise never compare as spent (the loop runs forever), and zero or
    negative ones would silently run zero or one step. Trainers with their own loop
    call this too, so every loop of the course agrees on what a budget is.
    """
    if steps is None and epochs is None and seconds is None:
        raise ValueError("give a budget: epochs=, steps= or seconds=")
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, numbers.Integral):
            raise ValueError(
                f"steps={steps!r} must be a whole number of optimiser steps (an int >= 1); "
                "for a fraction of the data use epochs=."
            )
        if steps < 1:
            raise ValueError(f"steps={steps} must be >= 1; give a positive number of steps.")
    for name, value in (("epochs", epochs), ("seconds", seconds)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"{name}={value!r} must be a number > 0.")
        if not math.isfinite(value):
            raise ValueError(
                f"{name}={value} is not a finite budget; a NaN or inf budget never runs out. "
                f"Give a finite {name} > 0, or leave {name}=None and use another budget."
            )
        if value <= 0:
            raise ValueError(f"{name}={value} must be > 0; give a positive budget.")


def fit(
    step: Callable[[Batch], Mapping[str, float]],
    tensors: Sequence[torch.Tensor] | torch.Tensor,
    batch_size: int = 128,
    *,
    epochs: float | None = None,
    steps: int | None = None,
    seconds: float | None = None,
    seed: int | None = 0,
    history: History | None = None,
    callback: Callable[[int, History], None] | None = None,
    callback_every: int = 0,
    desc: str = "train",
    device: torch.device | str | None = None,
) -> History:
    """Run ``step(batch)`` on shuffled minibatches until the first budget runs out.

    Budgets: ``epochs`` (may be fractional), ``steps`` or wall-time ``seconds``;
    give at least one; :func:`validate_budget` refuses NaN, infinite, zero, negative and
    fractional-step budgets. ``step`` returns ``{name: float}``; the values are
    appended to ``history`` with ``"step"``, ``"epoch"`` and ``"time"`` columns.
    Pass an existing ``history`` to continue it (e.g. after loading a checkpoint).
    A NaN or inf value stops training with :class:`FloatingPointError` naming
    the step and the quantity. ``callback(step, history)`` runs every
    ``callback_every`` steps (e.g. to store a sample grid).
    """
    validate_budget(steps=steps, epochs=epochs, seconds=seconds)
    if isinstance(tensors, torch.Tensor):
        tensors = (tensors,)
    n = len(tensors[0])
    max_steps = math.inf if steps is None else steps
    if epochs is not None:
        max_steps = min(max_steps, max(1, int(epochs * (n // batch_size))))
    history = {} if history is None else history
    start_step = int(history["step"][-1]) + 1 if history.get("step") else 0
    start_time = history["time"][-1] if history.get("time") else 0.0
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    total = None if math.isinf(max_steps) else int(max_steps)
    bar = progress(total=total, desc=desc, unit="step")
    t0 = time.perf_counter()
    i = 0
    for epoch, batch in minibatches(tensors, batch_size, gen):
        if i >= max_steps or (seconds is not None and time.perf_counter() - t0 >= seconds):
            break
        if device is not None:
            batch = tuple(t.to(device, non_blocking=True) for t in batch)
        logs = step(batch)
        for key, value in logs.items():
            value = float(value)
            if not math.isfinite(value):
                bar.close()
                raise FloatingPointError(
                    f"{key} became {value} at step {start_step + i}: training diverged. Lower the "
                    "learning rate, check for log(0) (use losses on logits), or clip gradients."
                )
            history.setdefault(key, []).append(value)
        history.setdefault("step", []).append(start_step + i)
        history.setdefault("epoch", []).append(epoch)
        history.setdefault("time", []).append(start_time + time.perf_counter() - t0)
        i += 1
        bar.update(1)
        if i % 10 == 0:
            bar.set_postfix({k: f"{float(v):.3g}" for k, v in logs.items()}, refresh=False)
        if callback is not None and callback_every and i % callback_every == 0:
            callback(start_step + i - 1, history)
    bar.close()
    return history


def smooth(values: Sequence[float], window: int = 50) -> list[float]:
    """Running mean over the last ``window`` values (for noisy loss curves)."""
    out, acc = [], 0.0
    for j, v in enumerate(values):
        acc += v
        if j >= window:
            acc -= values[j - window]
        out.append(acc / min(j + 1, window))
    return out
