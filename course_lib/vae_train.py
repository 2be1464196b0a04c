"""Training and evaluating VAEs (chapters 7-8): KL warm-up, the training step and loop, test metrics in nats.

The loop is :func:`course_lib.train.fit`; the bounds are the methods of
:class:`course_lib.vae.VAE`. The public names are also importable from
:mod:`course_lib.vae`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .distributions import gaussian_kl
from .optim import optimizer_step
from .scaling import SINGLE, World, any_rank, data_parallel, global_randn, global_transform
from .train import History, Run
from .validate import check_images

if TYPE_CHECKING:  # only for type hints: vae.py imports this module
    from .vae import VAE

def kl_warmup(step: int, warmup_steps: int, start: float = 0.0) -> float:
    r"""KL warm-up (deterministic annealing) weight :math:`\beta_t = \min(1, s + (1-s)\,t/T)` (chapter 8).

    Bowman et al. (2016) and Sønderby et al. (2016): start the KL weight near 0
    so the decoder learns to use z before the KL pulls q(z | x) onto the prior.
    ``warmup_steps=0`` means no warm-up (always 1).
    """
    if warmup_steps < 0 or not 0.0 <= start <= 1.0:
        raise ValueError(f"need warmup_steps >= 0 and 0 <= start <= 1, got {warmup_steps}, {start}")
    if warmup_steps == 0:
        return 1.0
    return min(1.0, start + (1.0 - start) * step / warmup_steps)


def make_vae_step(
    vae: VAE,
    opt: torch.optim.Optimizer,
    beta: float | Callable[[int], float] = 1.0,
    clip: float | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    lr_at: Callable[[int], float] | None = None,
    free_bits: float = 0.0,
    autocast: torch.dtype | None = None,
    step_index: Callable[[], int] | None = None,
    world: World = SINGLE,
    noise: torch.Generator | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> Callable:
    """A ``step(batch)`` for :func:`course_lib.train.fit`: one Adam step on the negative beta-ELBO.

    ``batch`` is ``(x,)`` or ``(x, y)`` (labels are used only by a conditional VAE).
    ``beta`` may be a number or a schedule ``beta(step)`` such as
    ``lambda t: kl_warmup(t, 2000)``. ``clip`` clips the global gradient norm
    (its value before clipping is logged as ``grad_norm``). ``augment`` maps a
    batch of images to a transformed batch (e.g. :func:`course_lib.data.random_shift`).
    ``lr_at(step)`` sets the learning rate of every parameter group.
    ``free_bits`` is passed to :meth:`VAE.loss`. ``autocast=torch.bfloat16`` runs the
    forward pass in mixed precision (faster on CPUs and GPUs with bf16 units; the
    weights, the optimiser and :func:`evaluate` stay in float32).
    ``step_index()`` gives the run's step count for the schedules (e.g. ``lambda: run.step``
    of a :class:`course_lib.train.Run`, so a resumed run continues its schedules); without it
    the step counts its own calls. A non-finite loss or gradient raises before the optimiser
    steps (:func:`course_lib.optim.optimizer_step`).

    Chapter 13: ``noise`` is a generator for the reparameterisation noise (the run's, so its
    state is checkpointed); with a ``world`` of several processes the batch is this process's
    share of the global batch, the augmentation and the noise are drawn for the global batch
    (:func:`course_lib.scaling.global_transform`, :func:`~course_lib.scaling.global_randn`) and
    ``DistributedDataParallel`` averages the gradients, so every process count computes the
    same updates. ``scaler``: a ``GradScaler`` for float16 autocast.
    Logs ``loss`` (the minimised negative beta-ELBO), ``neg_elbo``, ``rec`` and ``kl``, in nats.
    """
    counter = {"t": 0}
    if world.distributed and noise is None:
        raise ValueError("several processes need a noise generator in the same state on each")
    loss_fn = data_parallel(vae, vae.loss, world)

    def step(batch):
        x = batch[0]
        y = batch[1] if vae.n_classes and len(batch) > 1 else None
        if augment is not None:
            x = global_transform(augment, x, world)
        eps = None if noise is None else global_randn((len(x), vae.z_dim), world, noise, device=x.device)
        t = step_index() if step_index is not None else counter["t"]
        b = beta(t) if callable(beta) else beta
        if lr_at is not None:
            for group in opt.param_groups:
                group["lr"] = lr_at(t)
        with torch.autocast(x.device.type, dtype=autocast or torch.bfloat16, enabled=autocast is not None):
            loss, terms = loss_fn(x, y, b, free_bits, eps=eps)
        if world.distributed and any_rank(not torch.isfinite(loss.detach()).all(), world):
            # every process stops here together; one stopping alone would leave the others
            # waiting in backward's all-reduce
            raise FloatingPointError("the loss became non-finite in one of the processes")
        norm = optimizer_step(loss, opt, clip=clip, scaler=scaler)
        logs = {} if clip is None else {"grad_norm": norm}
        counter["t"] += 1
        return {
            "loss": loss.item(),
            "neg_elbo": -terms.elbo.mean().item(),
            "rec": -terms.log_px_z.mean().item(),
            "kl": terms.kl.mean().item(),
            "beta": b,
            **logs,
        }

    return step


def train_vae(
    vae: VAE,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    lr: float = 1e-3,
    batch_size: int = 128,
    beta: float | Callable[[int], float] = 1.0,
    clip: float | None = None,
    free_bits: float = 0.0,
    optimizer: Callable[..., torch.optim.Optimizer] | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    seed: int = 0,
    checkpoint: str | os.PathLike | None = None,
    config: dict | None = None,
    shipped: str | None = None,
    epochs: float | None = None,
    steps: int | None = None,
    seconds: float | None = None,
    desc: str = "VAE",
    callback: Callable[[int, History], None] | None = None,
    callback_every: int = 0,
) -> History:
    """Train ``vae`` with Adam on images ``x (N, C, H, W)`` (labels ``y`` for a CVAE), on a
    :class:`course_lib.train.Run`. Returns the history (``loss``, ``neg_elbo``, ``rec``, ``kl``,
    ``beta`` per step).

    Budgets (``epochs``, ``steps``, ``seconds``) are for the run. ``optimizer(params, lr=lr)``
    builds the optimiser (default :class:`torch.optim.Adam`); ``augment`` transforms each batch
    of images (e.g. :func:`course_lib.data.random_shift`, or ``torch.bernoulli`` for dynamic binarisation).
    ``checkpoint``: load the checkpoint if present, else train (chapters 7-8). A run found
    there continues exactly to the budget, a finished one is loaded without training; the
    file records the settings (``lr``, ``batch_size``, ``clip``, ``free_bits``, a numeric
    ``beta``, ``seed`` and the budget-independent ``config`` you pass to describe the rest,
    e.g. an augmentation or a beta schedule), and a file of other settings is an error naming
    them, never retrained over. ``shipped`` names the run's shipped weights
    (:mod:`course_lib.pretrained`), loaded when there is no checkpoint and they match.
    """
    check_images(x, "x")
    opt = (optimizer or torch.optim.Adam)(vae.parameters(), lr=lr)
    settings = {"lr": lr, "batch_size": batch_size, "clip": clip, "free_bits": free_bits,
                "beta": None if callable(beta) else beta, **(config or {})}
    run = Run({"model": vae}, {"opt": opt}, config=settings, seed=seed, path=checkpoint, shipped=shipped)
    if run.resume() and checkpoint is not None and Path(checkpoint).is_file():
        print(f"loaded {checkpoint} at step {run.step} (delete it to train again)")
    step = make_vae_step(vae, opt, beta=beta, clip=clip, free_bits=free_bits, augment=augment,
                         step_index=lambda: run.step)
    vae.train()
    tensors = (x,) if y is None else (x, y)
    try:
        run.fit(step, tensors, batch_size, epochs=epochs, steps=steps, seconds=seconds, desc=desc,
                device=vae._device(), callback=callback, callback_every=callback_every)
    finally:
        vae.eval()
    return run.history


@torch.no_grad()
def evaluate(
    vae: VAE, x: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 500, seed: int = 0
) -> dict[str, float]:
    """Test metrics averaged over images, in nats: ``neg_elbo`` (one posterior sample), ``rec``, ``kl``.

    ``neg_elbo`` is the benchmark number of chapter 7: Bernoulli likelihood on
    [0, 1] pixels, one posterior sample, summed over pixels, averaged over images.
    """
    was_training = vae.training
    vae.eval()
    gen = torch.Generator().manual_seed(seed)
    dev = vae._device()
    tot = {"neg_elbo": 0.0, "rec": 0.0, "kl": 0.0}
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size].to(dev)
        yb = None if y is None else y[start : start + batch_size].to(dev)
        mu, logvar = vae.encode(xb, yb)
        eps = torch.randn(mu.shape, generator=gen).to(mu)
        z = mu + torch.exp(0.5 * logvar) * eps
        rec = vae.log_likelihood(xb, vae.decode(z, yb, xb))
        kl = gaussian_kl(mu, logvar, dim=1)
        tot["neg_elbo"] += float((kl - rec).sum())
        tot["rec"] += float(-rec.sum())
        tot["kl"] += float(kl.sum())
    vae.train(was_training)
    return {k: v / len(x) for k, v in tot.items()}


@torch.no_grad()
def iwae_nll(
    vae: VAE, x: torch.Tensor, k: int, y: torch.Tensor | None = None, batch_size: int = 100, seed: int = 0,
) -> float:
    """The IWAE estimate of the test negative log-likelihood, ``-mean(iwae_bound(x, k))``, in nats (chapter 7)."""
    gen = torch.Generator().manual_seed(seed)
    vae.eval()
    dev = vae._device()
    total = 0.0
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size].to(dev)
        yb = None if y is None else y[start : start + batch_size].to(dev)
        total += float(vae.iwae_bound(xb, k, yb, generator=gen).sum())
    return -total / len(x)


@torch.no_grad()
def active_units(vae: VAE, x: torch.Tensor, threshold: float = 0.01, batch_size: int = 500) -> int:
    r"""Number of latent units with :math:`\operatorname{Cov}_x(\mathbb E_q[z_u]) > 0.01` (Burda et al., 2016).

    An inactive unit carries no information about x: its posterior mean is the
    same for every image. Zero active units is posterior collapse (chapter 8).
    """
    mus = torch.cat([vae.encode(x[s : s + batch_size].to(vae._device()))[0] for s in range(0, len(x), batch_size)])
    return int((mus.var(0) > threshold).sum())
