"""The one training loop of the course: budgets, history, checkpoints, exact resume, EMA.

Defined in chapter 0 and used by every chapter that trains. A *step* function takes one
minibatch, updates whatever it owns and returns the numbers to record; the loop knows
nothing about models. :class:`Run` adds what it takes to stop a run at any moment and
continue it exactly (chapter 13): the weights and optimiser states, the EMA weights,
every random number generator, the data order and the position in it, the step and the
elapsed time, written atomically to one checkpoint. Given a :class:`course_lib.scaling.World`
of several processes (``torchrun``), each process takes its share of every global batch and only
rank 0 writes. :func:`fit` is the same loop for a quick experiment with nothing to save; both
can log to TensorBoard (:mod:`course_lib.tracking`).
"""

from __future__ import annotations

import copy
import math
import numbers
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DistributedSampler

from . import pretrained
from .config import config_dict, make_config  # noqa: F401 (make_config re-exported)
from .optim import EMA, cosine_lr, optimizer_step  # noqa: F401 (re-exported: the loop's helpers)
from .scaling import SINGLE, World, any_rank, mean_over_ranks
from .tracking import TensorBoard, active
from .utils import load_checkpoint, progress, rng_state, save_checkpoint, set_rng_state

History = dict[str, list[float]]
Batch = tuple[torch.Tensor, ...]
StepFn = Callable[[Batch], Mapping[str, float]]
FORMAT = "course_lib.run/2"
WEIGHTS_FORMAT = "course_lib.weights/1"  # a finished run without what only continuing needs
_OLD_FORMATS = ("course_lib.run/1",)  # a data order this version no longer reproduces


def _check_tensors(tensors: Sequence[torch.Tensor], batch_size: int, drop_last: bool = True) -> int:
    n = len(tensors[0])
    if any(len(t) != n for t in tensors):
        raise ValueError(f"tensors differ in length: {[len(t) for t in tensors]}")
    if batch_size < 1 or (drop_last and batch_size > n):
        raise ValueError(f"batch_size={batch_size} does not fit {n} samples")
    return n


def validate_budget(
    steps: int | None = None, epochs: float | None = None, seconds: float | None = None
) -> None:
    """Check training budgets before a loop starts; raise :class:`ValueError` naming the bad one.

    At least one must be given. ``steps`` is a positive integer (``2.5`` or ``True`` are
    refused, not rounded); ``epochs`` and ``seconds`` are finite positive numbers. A NaN
    budget would otherwise never compare as spent (the loop runs forever), and zero or
    negative ones would silently run zero or one step.
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


_SAVE_EVERY: list[float] = []  # set by saving_every()


@contextmanager
def saving_every(seconds: float) -> Iterator[None]:
    """Inside the block every :class:`Run` with a path saves at least every ``seconds`` (the
    command line's ``--save-every``, for recipes that fix their own interval)."""
    if not seconds > 0:
        raise ValueError(f"save every {seconds} s: give a positive number of seconds")
    _SAVE_EVERY.append(seconds)
    try:
        yield
    finally:
        _SAVE_EVERY.pop()


@contextmanager
def _deferred_interrupt() -> Iterator[list[bool]]:
    """Hold Ctrl-C (SIGINT) until the block ends, so a step is never left half done.

    Yields a list whose element is set to True if an interrupt arrived; the caller then stops
    at the step boundary. Outside the main thread signals cannot be caught: nothing changes.
    """
    flag = [False]
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        flag[0] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


class Run:
    """One training run, which :meth:`fit` advances and :meth:`save` / :meth:`resume` checkpoint.

    ``modules`` and ``optimizers`` are named (their names are the checkpoint's keys); ``ema``
    names :class:`EMA` averages of some of the modules; ``generators`` names extra
    ``torch.Generator`` objects the step uses (e.g. for data augmentation); ``config`` (a
    frozen dataclass or dict) and ``seed`` identify the run: resuming a checkpoint of another
    config or seed is an error, never a silent retrain over the other run's file. ``extra`` is
    a dict for whatever else must survive a restart (e.g. a GAN's sample snapshots).
    ``shipped`` names the run's entry among the shipped weights (:mod:`course_lib.pretrained`):
    when there is no checkpoint at ``path``, :meth:`resume` loads them if they match.
    ``scalers`` names the ``GradScaler`` objects of float16 training (their scale is state too).

    The data order is ``torch.utils.data.DistributedSampler``'s (a permutation seeded by
    ``seed + epoch``, via ``set_epoch``). ``world`` (:class:`course_lib.scaling.World`) is this
    process's place in a multi-process run: the batch size of :meth:`fit` is the *global* batch,
    of which each process takes rows ``rank::size`` (the sampler's split), so the same run
    sees the same global batches for any number of processes; the checkpoint stores the
    position in the global order and reloads at any world size. Only rank 0 writes it.

    On CPU a run killed at any moment (even by ``SIGKILL``) and resumed from its last
    checkpoint ends with the same weights, bit for bit, as a run never interrupted:
    ``tests/test_train.py`` kills a child process to check this.
    """

    def __init__(
        self, modules: Mapping[str, nn.Module] = {}, optimizers: Mapping[str, torch.optim.Optimizer] = {},  # noqa: B006
        *, ema: Mapping[str, EMA] = {}, generators: Mapping[str, torch.Generator] = {},  # noqa: B006
        config: Any = None, seed: int = 0, path: str | Path | None = None, save_every: float = 30.0,
        history: History | None = None, shipped: str | None = None, world: World = SINGLE,
        scalers: Mapping[str, torch.amp.GradScaler] = {},  # noqa: B006
    ):
        self.modules, self.optimizers = dict(modules), dict(optimizers)
        self.ema, self.generators = dict(ema), dict(generators)
        self.scalers, self.world = dict(scalers), world
        self.config, self.seed = config_dict(config), seed
        self.path = None if path is None else Path(path)
        self.save_every = save_every
        self.shipped = shipped
        self.history: History = {} if history is None else history
        self.extra: dict[str, Any] = {}
        self.step = len(self.history.get("step", []))
        self.elapsed = self.history["time"][-1] if self.history.get("time") else 0.0
        self.done = False
        self._order: torch.Tensor | None = None  # this process's indices of the current epoch
        self._pos, self._epoch, self._n = 0, 0, None  # _pos: samples of the global order used
        self._good: dict | None = None  # the state to roll back to: the last save, or this fit's start
        self._good_saved, self._saved_step = False, -1
        self._stop = False

    # --- the data order ---------------------------------------------------------------------
    def _batch(self, tensors: Sequence[torch.Tensor], batch_size: int) -> tuple[int, Batch]:
        n, size = len(tensors[0]), self.world.size
        if self._n is not None and self._n != n:
            raise ValueError(f"this run was trained on {self._n} samples; got {n}. Use the same data to resume it.")
        if batch_size % size:
            raise ValueError(f"the global batch of {batch_size} does not split between {size} processes")
        if self._pos + batch_size > n:  # the rest of the epoch is less than a batch: drop it
            self._epoch, self._pos, self._order = self._epoch + 1, 0, None
        if self._order is None:
            sampler = DistributedSampler(range(n), num_replicas=size, rank=self.world.rank, seed=self.seed)
            sampler.set_epoch(self._epoch)  # forgetting it repeats epoch 0's order forever
            self._order, self._n = torch.tensor(list(sampler)), n
        start = self._pos // size  # this process's k-th batch is rows rank::size of global batch k
        idx = self._order[start : start + batch_size // size]
        self._pos += batch_size
        return self._epoch, tuple(t[idx] for t in tensors)

    # --- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: see the class docstring."""
        return {
            "format": FORMAT, "config": self.config, "seed": self.seed,
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "ema": {k: e.module.state_dict() for k, e in self.ema.items()},
            "scalers": {k: s.state_dict() for k, s in self.scalers.items()},
            "rng": rng_state(self.generators),
            "data": {"pos": self._pos, "epoch": self._epoch, "n": self._n},
            "step": self.step, "elapsed": self.elapsed, "done": self.done,
            "history": self.history, "extra": self.extra,
        }

    def check_state(self, state: Mapping[str, Any], where: str = "the checkpoint") -> None:
        """Raise an error naming what keeps ``state`` from continuing this run; copy nothing."""
        if state.get("format") in _OLD_FORMATS:
            raise RuntimeError(
                f"{where} was written by an older course_lib, whose data order this version does not "
                "reproduce; delete it (or pass another path) to train again."
            )
        if state.get("format") not in (FORMAT, WEIGHTS_FORMAT):
            raise RuntimeError(
                f"{where} is not a course_lib training run (format {state.get('format')!r}); "
                "delete it or pass another path."
            )
        saved = {**state.get("config", {}), "seed": state.get("seed")}
        mine = {**self.config, "seed": self.seed}
        differ = {k: (saved.get(k), mine.get(k)) for k in sorted(set(saved) | set(mine)) if saved.get(k) != mine.get(k)}
        if differ:
            listed = ", ".join(f"{k}: saved {a!r}, this run {b!r}" for k, (a, b) in differ.items())
            raise ValueError(
                f"{where} belongs to another run ({listed}). Pass another checkpoint path for this "
                "run, or build the run with the saved settings to continue it; the file is left as it is."
            )
        groups = [("modules", self.modules), ("optimizers", self.optimizers), ("ema", self.ema)]
        for group, objects in groups if state["format"] == FORMAT else groups[::2]:
            if set(state[group]) != set(objects):
                raise RuntimeError(f"{where} holds {group} {sorted(state[group])}, this run {sorted(objects)}")
        for group, objects in (("modules", self.modules), ("ema", {k: e.module for k, e in self.ema.items()})):
            for key, module in objects.items():
                problem = state_mismatch(module.state_dict(), state[group][key])
                if problem:
                    raise RuntimeError(
                        f"{where} was saved from another architecture ({key}: {problem}). Build the "
                        "same model (sizes, channels, n_classes) to resume it, or use another path."
                    )

    def load_state_dict(self, state: Mapping[str, Any], where: str = "the checkpoint") -> None:
        """Continue from ``state``; it is checked whole (:meth:`check_state`) before anything is copied."""
        self.check_state(state, where)
        for key, module in self.modules.items():
            module.load_state_dict(state["modules"][key])
        for key, ema in self.ema.items():
            ema.module.load_state_dict(state["ema"][key])
        if state["format"] == FORMAT:  # shipped weights continue with fresh optimisers
            for key, opt in self.optimizers.items():
                opt.load_state_dict(state["optimizers"][key])
            for key, scaler in self.scalers.items():
                if key in state.get("scalers", {}):
                    scaler.load_state_dict(state["scalers"][key])
            set_rng_state(state["rng"], self.generators)
            data = state["data"]
            self._order, self._pos, self._epoch, self._n = None, data["pos"], data["epoch"], data["n"]
        self.step, self.elapsed, self.done = state["step"], state["elapsed"], state["done"]
        self.history = {k: v.tolist() if isinstance(v, torch.Tensor) else list(v)  # tensors: shipped
                        for k, v in state["history"].items()}
        self.extra = dict(state["extra"])

    def save(self, path: str | Path | None = None) -> Path:
        """Write the run's state atomically (to ``path`` or the run's own path); in a multi-process
        run only rank 0 writes (the processes hold the same state)."""
        path = Path(path) if path is not None else self.path
        if path is None:
            raise ValueError("this run has no checkpoint path: pass one")
        state = self.state_dict()
        out = save_checkpoint(path, state) if self.world.is_main else path
        self._good, self._good_saved, self._saved_step = copy.deepcopy(state), True, self.step
        return out

    def resume(self, path: str | Path | None = None) -> bool:
        """Continue from the checkpoint at ``path`` (or the run's path) if it exists, else from
        the shipped weights named ``shipped`` if they match; return whether it did."""
        path = Path(path) if path is not None else self.path
        if path is not None and path.is_file():
            state = load_checkpoint(path)
        elif self.shipped is not None:
            state = pretrained.shipped(self.shipped, self.config, self.seed)
            if state is None:
                return False
            path = pretrained.WEIGHTS_DIR / f"{self.shipped}.pt"
        else:
            return False
        self.load_state_dict(state, where=str(path))
        self._saved_step = self.step if path == self.path else -1
        return True

    # --- the loop ---------------------------------------------------------------------------
    def fit(
        self, step: StepFn, tensors: Sequence[torch.Tensor] | torch.Tensor, batch_size: int = 128, *,
        epochs: float | None = None, steps: int | None = None, seconds: float | None = None,
        callback: Callable[[int, History], None] | None = None, callback_every: int = 0,
        desc: str = "train", device: torch.device | str | None = None,
        tensorboard: TensorBoard | str | Path | None = None,
    ) -> History:
        """Run ``step(batch)`` on shuffled minibatches until the run's first budget is spent.

        The budgets are for the whole run, not for this call: ``steps`` optimiser steps,
        ``epochs`` passes over the data (may be fractional) or ``seconds`` of training time,
        so calling :meth:`fit` again after an interruption and :meth:`resume` finishes the same
        run. The values ``step`` returns are appended to :attr:`history` with ``step``,
        ``epoch`` and ``time`` columns. With a path, the state is saved every ``save_every``
        seconds, at the end, and on Ctrl-C, which is held until the step in progress is
        finished (the checkpoint is always a step boundary). A non-finite loss or value raises
        :class:`FloatingPointError` naming the step; the modules and optimisers are rolled back
        to the last checkpoint (or to this call's start), so nothing diverged is kept.

        In a multi-process run the logged values are averaged over the processes (the global
        batch's values) and the processes agree when to stop. ``tensorboard`` (a folder or a
        :class:`course_lib.tracking.TensorBoard`) receives the logged values and the config
        (rank 0 only); a ``callback`` may add sample grids to it.
        """
        validate_budget(steps=steps, epochs=epochs, seconds=seconds)
        if isinstance(tensors, torch.Tensor):
            tensors = (tensors,)
        n = _check_tensors(tensors, batch_size)
        max_steps = math.inf if steps is None else steps
        if epochs is not None:
            max_steps = min(max_steps, max(1, int(epochs * (n // batch_size))))
        max_seconds = math.inf if seconds is None else seconds
        # the state to roll back to on divergence: this call's start, until a save in it
        self._good = copy.deepcopy(self.state_dict())
        self._good_saved = self.path is not None and self._saved_step == self.step
        total = None if math.isinf(max_steps) else int(max_steps)
        main = self.world.is_main
        bar = progress(total=total, initial=min(self.step, total or self.step), desc=desc, unit="step",
                       **({} if main else {"disable": True}))
        save_every = min([self.save_every, *_SAVE_EVERY])
        board = tensorboard if tensorboard is not None else (active() if main else None)
        if isinstance(board, (str, Path)):
            board = TensorBoard(board, {**self.config, "seed": self.seed}) if main else None
        elif board is not None:
            board.config({**self.config, "seed": self.seed}, tag="run")
        last_save = time.perf_counter()
        self.done = False
        try:
            with _deferred_interrupt() as interrupted:
                while (self.step < max_steps and not interrupted[0] and not self._stop
                       and not any_rank(self.elapsed >= max_seconds, self.world)):
                    t0 = time.perf_counter()
                    epoch, batch = self._batch(tensors, batch_size)
                    if device is not None:
                        batch = tuple(t.to(device, non_blocking=True) for t in batch)
                    try:
                        logs = mean_over_ranks({k: float(v) for k, v in step(batch).items()}, self.world)
                        bad = [k for k, v in logs.items() if not math.isfinite(v)]
                        if bad:
                            raise FloatingPointError(f"{bad[0]} became {logs[bad[0]]}")
                    except FloatingPointError as err:
                        message = self._diverged(err)
                        self._roll_back()
                        raise FloatingPointError(message) from err
                    for ema in self.ema.values():
                        ema.update(self.step)
                    self.elapsed += time.perf_counter() - t0
                    for key, value in logs.items():
                        self.history.setdefault(key, []).append(value)
                    self.history.setdefault("step", []).append(self.step)
                    self.history.setdefault("epoch", []).append(epoch)
                    self.history.setdefault("time", []).append(self.elapsed)
                    if board is not None:
                        board.scalars(self.step, logs)
                    self.step += 1
                    bar.update(1)
                    if self.step % 10 == 0:
                        bar.set_postfix({k: f"{v:.3g}" for k, v in logs.items()}, refresh=False)
                    if callback is not None and callback_every and self.step % callback_every == 0:
                        callback(self.step - 1, self.history)
                    if self.path is not None and time.perf_counter() - last_save > save_every:
                        self.save()
                        last_save = time.perf_counter()
            self.done = not interrupted[0]
            if self.path is not None:
                self.save()
            if self.done and self.shipped is not None:
                pretrained.record(self.shipped, self.state_dict())  # only under tools/train_weights.py
            if interrupted[0]:
                where = f"; saved to {self.path}" if self.path is not None else ""
                raise KeyboardInterrupt(f"stopped after step {self.step}{where}")
        finally:
            bar.close()
            if isinstance(tensorboard, (str, Path)) and board is not None:
                board.close()
            elif board is not None:
                board.flush()
        return self.history

    def stop(self) -> None:
        """End :meth:`fit` at the end of the current step, as if its budget were spent (early
        stopping from a ``callback``): the run is saved and counts as done."""
        self._stop = True

    def _roll_back(self) -> None:
        """Go back to the last good state whole (weights, optimisers, step, history, data
        position, random generators), so a later save writes a consistent step boundary."""
        self.load_state_dict(copy.deepcopy(self._good), where="the last good state")

    def _diverged(self, err: Exception) -> str:
        where = f"the last checkpoint, {self.path}" if self._good_saved else "the start of this call"
        return (
            f"{err} at step {self.step}: training diverged. The weights and optimiser states are "
            f"back at step {self._good['step']} ({where}). Lower the learning rate, check for "
            "log(0) (use losses on logits), or clip gradients."
        )


def state_mismatch(expected: Mapping[str, torch.Tensor], saved: Mapping[str, torch.Tensor]) -> str:
    """What keeps ``saved`` from loading into a module whose state is ``expected`` ('' if
    nothing): missing or unexpected entries, or tensors of another shape."""
    if set(saved) != set(expected):
        lost, extra = sorted(set(expected) - set(saved)), sorted(set(saved) - set(expected))
        return f"missing {lost[:3]}, unexpected {extra[:3]}"
    for k, v in expected.items():
        if tuple(saved[k].shape) != tuple(v.shape):
            return f"{k} has shape {tuple(saved[k].shape)}, expected {tuple(v.shape)}"
    return ""


def fit(
    step: StepFn,
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
    tensorboard: TensorBoard | str | Path | None = None,
) -> History:
    """:meth:`Run.fit` for a quick experiment: no checkpoint, and budgets counted from this call.

    Budgets: ``epochs`` (may be fractional), ``steps`` or wall-time ``seconds``; give at least
    one; :func:`validate_budget` refuses NaN, infinite, zero, negative and fractional-step
    budgets. ``step`` returns ``{name: float}``; the values are appended to ``history`` with
    ``"step"``, ``"epoch"`` and ``"time"`` columns. Pass an existing ``history`` to continue
    it. A NaN or inf value stops training with :class:`FloatingPointError` naming the step and
    the quantity. ``callback(step, history)`` runs every ``callback_every`` steps.
    ``tensorboard``: a folder (or :class:`course_lib.tracking.TensorBoard`) that receives every
    logged value against the step (chapter 13).
    """
    validate_budget(steps=steps, epochs=epochs, seconds=seconds)
    run = Run(seed=0 if seed is None else seed, history=history)
    if isinstance(tensors, torch.Tensor):
        tensors = (tensors,)
    if epochs is not None:
        n = _check_tensors(tensors, batch_size)
        by_epochs = max(1, int(epochs * (n // batch_size)))
        steps = by_epochs if steps is None else min(steps, by_epochs)
    return run.fit(
        step, tensors, batch_size, steps=None if steps is None else run.step + steps,
        seconds=None if seconds is None else run.elapsed + seconds, callback=callback,
        callback_every=callback_every, desc=desc, device=device, tensorboard=tensorboard,
    )


def smooth(values: Sequence[float], window: int = 50) -> list[float]:
    """Running mean over the last ``window`` values (for noisy loss curves)."""
    out, acc = [], 0.0
    for j, v in enumerate(values):
        acc += v
        if j >= window:
            acc -= values[j - window]
        out.append(acc / min(j + 1, window))
    return out
