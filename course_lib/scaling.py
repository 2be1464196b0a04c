"""Scaling up (chapter 13): processes, data parallelism and mixed precision.

A :class:`World` says which of ``size`` processes this one is. Under ``torchrun`` (one process
per GPU, or several on a CPU) :func:`init_world` joins them with ``torch.distributed``: the gloo
backend on a CPU, NCCL on CUDA, chosen from the hardware, never hard-coded. The course's
training loop (:class:`course_lib.train.Run`) takes the world and splits every *global* batch
between the processes; PyTorch's ``DistributedDataParallel`` averages the gradients
(Li et al., 2020). With the helpers below (every per-example random draw made at the size of
the global batch, then each process taking its rows) the same command computes the same
updates for any number of processes: chapter 13 derives why and measures it.
"""

from __future__ import annotations

import copy
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from .utils import bf16_is_fast


@dataclass(frozen=True)
class World:
    """This process's place among ``size`` processes: ``rank`` in 0..size-1 (rank 0 alone logs and
    writes files), ``local_rank`` on its machine (which GPU it drives) and its ``device``."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


SINGLE = World()
"""One process on the CPU: what every chapter but 13 trains in."""


def backend(device: str | torch.device) -> str:
    """The ``torch.distributed`` backend for ``device``: NCCL for CUDA, gloo for everything else
    (NCCL needs CUDA; hard-coding it is why many tutorials do not run on a CPU)."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def init_world(device: str | None = None) -> World:
    """Join the processes started by ``torchrun`` (its ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``
    variables), or return :data:`SINGLE`-like settings for a plain ``python`` run.

    ``device`` defaults to ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU.
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
    if torch.device(device).type == "cuda":
        torch.cuda.set_device(torch.device(device))
    if size > 1 and not dist.is_initialized():
        dist.init_process_group(backend(device))
    return World(rank, size, local, str(device))


def close_world(world: World) -> None:
    """Leave the process group (a no-op for one process)."""
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def shard(t: torch.Tensor, world: World) -> torch.Tensor:
    """This process's rows of a global batch: rows ``rank, rank + size, ...``.

    The same rows ``torch.utils.data.DistributedSampler`` gives it: its local batch ``k`` is
    rows ``rank::size`` of the global batch ``k`` of one process."""
    return t if world.size == 1 else t[world.rank :: world.size]


def global_randn(shape: Sequence[int], world: World, generator: torch.Generator, **kwargs: Any) -> torch.Tensor:
    """``torch.randn(shape)`` drawn for the *global* batch, of which this process keeps its rows.

    ``shape[0]`` is the local batch size. Every process's generator is in the same state, so
    each example gets the noise it would get in a one-process run (at ``size`` times the cost
    of drawing, which is nothing next to a forward pass)."""
    full = torch.randn((shape[0] * world.size, *shape[1:]), generator=generator)
    return shard(full, world).to(**kwargs) if kwargs else shard(full, world)


def global_transform(
    transform: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, world: World
) -> torch.Tensor:
    """Apply a per-example random ``transform`` (e.g. :func:`course_lib.data.random_shift`) as the
    one-process run would to this process's rows: the transform draws for the whole global
    batch (the other processes' rows are zeros here), and the process keeps its own rows."""
    if world.size == 1:
        return transform(x)
    full = x.new_zeros((len(x) * world.size, *x.shape[1:]))
    full[world.rank :: world.size] = x
    return shard(transform(full), world)


class Objective(nn.Module):
    """A loss as a module's ``forward``, so that ``DistributedDataParallel`` can wrap it.

    DDP hooks the gradients of the parameters a *forward call of the wrapper* used; a VAE's
    loss calls its encoder and decoder through ``vae.loss``, not ``vae.forward``. The wrapped
    ``module`` is registered, so its parameters are this module's."""

    def __init__(self, module: nn.Module, loss: Callable[..., Any]):
        super().__init__()
        self.module, self._loss = module, loss

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self._loss(*args, **kwargs)


def data_parallel(module: nn.Module, loss: Callable[..., Any], world: World) -> Callable[..., Any]:
    """``loss`` computed so that ``backward`` averages the gradients over the processes.

    One process: ``loss`` itself. Several: :class:`Objective` wrapped in PyTorch's
    ``DistributedDataParallel``, which all-reduces (sums, then divides by ``size``) every
    gradient during ``backward`` (chapter 13 derives why the average of the processes'
    mean-loss gradients is the gradient of the global batch's mean loss)."""
    if world.size == 1:
        return loss
    ids = [torch.device(world.device).index] if torch.device(world.device).type == "cuda" else None
    return nn.parallel.DistributedDataParallel(Objective(module, loss), device_ids=ids)


def average_gradients(params, world_size: int, all_reduce: Callable[..., Any] = dist.all_reduce) -> None:
    r"""Data parallelism by hand (chapter 13): replace each gradient by its mean over the
    ``world_size`` processes, :math:`g \leftarrow \frac1W\sum_r g_r`, with a summing ``all_reduce``
    (in place, as ``torch.distributed.all_reduce``'s default ``op=SUM``). Parameters without a
    gradient are skipped. ``DistributedDataParallel`` computes the same average, in buckets that
    it all-reduces while ``backward`` is still running."""
    for p in params:
        if p.grad is not None:
            all_reduce(p.grad)  # the sum over the processes, in place
            p.grad.div_(world_size)


def scaled_step(loss: torch.Tensor, opt: torch.optim.Optimizer, scale: float) -> float:
    """One optimiser step with float16 loss scaling by hand (Micikevicius et al., 2018; chapter 13):
    backpropagate ``scale · loss`` (small gradients then survive float16), divide the gradients by
    ``scale``, and step; if any gradient is inf or NaN (the scale was too large) skip the step and
    halve the scale. Returns the scale for the next step. ``torch.amp.GradScaler`` does this, and
    also doubles the scale again after 2,000 steps without overflow."""
    opt.zero_grad(set_to_none=True)
    (loss * scale).backward()
    grads = [p.grad for group in opt.param_groups for p in group["params"] if p.grad is not None]
    if not all(torch.isfinite(g).all() for g in grads):
        return scale / 2
    for g in grads:
        g.div_(scale)
    opt.step()
    return scale


def mean_over_ranks(values: dict[str, float], world: World) -> dict[str, float]:
    """The mean of each logged number over the processes (one all-reduce), so rank 0 logs the
    global batch's values, the ones a one-process run logs."""
    if world.size == 1 or not values:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64)
    dist.all_reduce(t)
    return {k: float(v) / world.size for k, v in zip(values, t)}


def any_rank(flag: bool, world: World) -> bool:
    """True on every process if it is true on any (to stop all of them at the same step: a
    process that stops alone leaves the others waiting in an all-reduce)."""
    if world.size == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


# --- mixed precision ------------------------------------------------------------------------


@dataclass(frozen=True)
class Precision:
    """How a step runs its forward pass: ``dtype`` for ``torch.autocast`` (None: float32), and
    whether the loss needs a ``GradScaler`` (float16 gradients underflow; bfloat16 has float32's
    exponent range and does not)."""

    dtype: torch.dtype | None = None
    scaled: bool = False

    def autocast(self, device: str | torch.device):
        return torch.autocast(torch.device(device).type, dtype=self.dtype or torch.bfloat16,
                              enabled=self.dtype is not None)

    def scaler(self, device: str | torch.device) -> torch.amp.GradScaler | None:
        return torch.amp.GradScaler(torch.device(device).type) if self.scaled else None


def precision(amp: bool | str, device: str | torch.device = "cpu") -> Precision:
    """The mixed precision of ``--amp`` on ``device`` (chapter 13).

    ``amp=False``: float32. ``True``: float16 with loss scaling on CUDA (Micikevicius et al.,
    2018), bfloat16 on a CPU (whether or not it has bf16 units: asked for, it is used).
    ``"auto"``: bfloat16 where :func:`course_lib.utils.bf16_is_fast` (CPUs with AVX512-BF16 or
    AMX, GPUs with bf16 units), else float32."""
    device = torch.device(device)
    if amp == "auto":
        return Precision(torch.bfloat16) if bf16_is_fast(device) else Precision()
    if amp not in (True, False):
        raise ValueError(f"amp={amp!r}: use True, False or 'auto'")
    if not amp:
        return Precision()
    if device.type == "cuda":
        return Precision(torch.float16, scaled=True)
    return Precision(torch.bfloat16)


def cpu_flags() -> dict[str, bool]:
    """Which of the instruction sets that decide bfloat16 speed this CPU has (Linux only; empty
    elsewhere): without AVX512-BF16 or AMX, bf16 is emulated and slower than float32."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return {}
    return {name: name in flags for name in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")}


def describe_machine() -> str:
    """One line for a timing table: CPU, threads, bf16 units, GPU if any."""
    flags = [k for k, v in cpu_flags().items() if v]
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return (f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
            f"flags {' '.join(flags) or 'unknown'}, {gpu}, torch {torch.__version__}")


# --- launching, killing and breaking runs (chapter 13's experiments) --------------------------


def command(args: Sequence[str], procs: int = 1) -> list[str]:
    """The argv of ``python -m course_lib.run ARGS`` in ``procs`` processes: plain Python for one,
    ``torchrun --standalone --nproc_per_node=procs`` (as ``python -m torch.distributed.run``,
    which needs no ``torchrun`` on the PATH) for several. ``--standalone`` picks a free port."""
    run = ["-m", "course_lib.run", *map(str, args)]
    if procs == 1:
        return [sys.executable, *run]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}", *run]


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux: the 4th field of /proc/N/stat)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            pass
    return out


def _gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "zombie" in status.split("State:")[1].split("\n")[0].lower()


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL a run started with ``start_new_session=True`` and every worker it started, as a
    machine that loses power would: no handler runs, nothing is saved. ``torchrun`` starts each
    worker in a session of its own, so killing the launcher alone leaves them training."""
    workers = children(proc.pid)
    for pid in [proc.pid, *workers]:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(30)
    deadline = time.time() + 30
    while not all(_gone(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.05)


def kill_after_checkpoint(argv: Sequence[str], checkpoint: str | os.PathLike, delay: float = 0.0,
                          env: Mapping[str, str] | None = None, timeout: float = 300) -> int:
    """Start ``argv``, wait until it has written ``checkpoint``, wait ``delay`` seconds more, then
    :func:`kill_tree` it. Returns its exit status (negative: killed by that signal; 0: it
    finished first)."""
    checkpoint = Path(checkpoint)
    proc = subprocess.Popen(list(argv), env=None if env is None else dict(env), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(delay)
    kill_tree(proc)
    return proc.returncode


PIECES = ("optimizers", "rng", "data")
"""What :func:`without` can leave out of a checkpoint."""


def without(state: Mapping, piece: str, seed: int = 0) -> dict:
    """A copy of a :class:`course_lib.train.Run` checkpoint that has lost ``piece``, as a snapshot
    of the usual tutorial loses it (chapter 13):

    * ``"optimizers"``: a fresh optimiser (Adam's moment estimates and step count start again);
    * ``"rng"``: the random generators seeded again as at the start (the augmentation and the
      noise repeat the first steps' draws);
    * ``"data"``: the position in the epoch (the epoch starts over: some batches are seen twice
      and others not at all)."""
    out = copy.deepcopy(dict(state))
    if piece == "optimizers":
        for opt in out["optimizers"].values():
            opt["state"] = {}
    elif piece == "rng":
        gens = out["rng"]["generators"]
        for i, key in enumerate(gens):  # the recipes seed their generators seed, seed + 1, ...
            gens[key] = torch.Generator().manual_seed(seed + i).get_state()
        out["rng"]["torch"] = torch.Generator().manual_seed(seed).get_state()
    elif piece == "data":
        out["data"] = {**out["data"], "pos": 0}
    else:
        raise ValueError(f"piece={piece!r}: choose one of {PIECES}")
    return out
