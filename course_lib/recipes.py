"""Recipes: the course's recommended, benchmarked models, trained in one call.

Each recipe trains on the embedded data by default, under a wall-time budget,
and is measured against a classic baseline by a script in ``benchmarks/``:
``train_mnist_gan`` (chapter 4, ``benchmarks/bench_gan.py``) and
``train_mnist_vae`` (chapter 7, ``benchmarks/bench_vae.py``).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import torch
from torch import nn

from . import gan as GAN
from . import vae as V
from .data import load_mnist
from .train import fit
from .utils import load_checkpoint, save_checkpoint, seed_everything

# =========================================================================================
# GAN recipes (chapters 3-4) -- benchmarked by benchmarks/bench_gan.py
# =========================================================================================

MNIST_GAN_CONFIG: dict = {
    "arch": "dcgan",  # DCGenerator / DCDiscriminator (chapter 4)
    "channels": 24,
    "latent_dim": 100,
    "lr_g": 5e-4,
    "lr_d": 5e-4,
    "betas": (0.5, 0.999),
    "batch_size": 64,
    "r1_gamma": 0.0,
    "real_label": 1.0,
    "ema": 0.99,  # sample from an exponential moving average of G's weights
}
"""The recommended MNIST GAN (measured in ``benchmarks/bench_gan.py``)."""

MNIST_CGAN_CONFIG: dict = {**MNIST_GAN_CONFIG, "r1_gamma": 1.0}
"""The recommended class-conditional MNIST GAN (chapter 4): the recipe plus the R1 penalty
(Mescheder et al., 2018) on the discriminator. Without it the conditional model's FID
oscillated over a full-length run and classes turned into one another; with it the FID fell
steadily (``benchmarks/bench_cgan.py`` prints both runs). Unconditionally R1 slowed the first
minute of training down (``benchmarks/bench_gan.py --extra r1``), so the unconditional recipe leaves it off."""

CLASSIC_MLP_GAN_CONFIG: dict = {
    "arch": "mlp",  # the classic 100-256-512-784 MLPs (chapter 3)
    "latent_dim": 100,
    "lr_g": 2e-3,
    "lr_d": 2e-3,
    "betas": (0.5, 0.999),
    "batch_size": 32,
    "r1_gamma": 0.0,
    "real_label": 1.0,
    "ema": 0.0,
}
"""The classic MLP GAN, trained correctly with chapter 3's settings: the benchmark's baseline."""

_TRAINER_KEYS = ("lr_g", "lr_d", "betas", "r1_gamma", "real_label", "ema")


def _config(config: dict | None, n_classes: int) -> dict:
    """The recipe's settings (:data:`MNIST_CGAN_CONFIG` when conditional) updated by ``config``."""
    return {**(MNIST_CGAN_CONFIG if n_classes else MNIST_GAN_CONFIG), **(config or {})}


def mnist_gan_models(config: dict | None = None, n_classes: int = 0) -> tuple[GAN.Generator, torch.nn.Module]:
    """Untrained generator and discriminator of a GAN config (default :data:`MNIST_GAN_CONFIG`)."""
    cfg = _config(config, n_classes)
    if cfg["arch"] == "dcgan":
        return (GAN.DCGenerator(cfg["latent_dim"], cfg["channels"], n_classes),
                GAN.DCDiscriminator(cfg["channels"], n_classes))
    if cfg["arch"] == "mlp":
        return GAN.MLPGenerator(cfg["latent_dim"], n_classes=n_classes), GAN.MLPDiscriminator(n_classes=n_classes)
    raise ValueError(f"arch={cfg['arch']!r}: use 'dcgan' or 'mlp'")


def mnist_gan_trainer(
    config: dict | None = None, n_classes: int = 0, seed: int = 0, device: torch.device | str | None = None
) -> GAN.GANTrainer:
    """A :class:`course_lib.gan.GANTrainer` for the recipe's models and optimiser settings (chapter 4).

    Chapter 4 uses it to train, watch snapshots and condition on the digit class
    (``n_classes=10``, then :data:`MNIST_CGAN_CONFIG` is the default) with exactly the
    settings of :func:`train_mnist_gan`.
    """
    cfg = _config(config, n_classes)
    seed_everything(seed)
    G, D = mnist_gan_models(cfg, n_classes)
    if device is not None:
        G, D = G.to(device), D.to(device)
    kwargs = {k: (tuple(cfg[k]) if k == "betas" else cfg[k]) for k in _TRAINER_KEYS}
    return GAN.GANTrainer(G, D, seed=seed, **kwargs)


def train_mnist_gan(
    seconds: float,
    seed: int = 0,
    *,
    images: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    n_classes: int = 0,
    config: dict | None = None,
    checkpoint: str | os.PathLike | None = None,
    max_steps: int | None = None,
    sample_every: int = 0,
    device: torch.device | str | None = None,
    desc: str = "mnist gan",
) -> GAN.Generator:
    """Train the course's recommended MNIST GAN for ``seconds`` of wall time; return its generator.

    The recipe (:data:`MNIST_GAN_CONFIG`): a DCGAN-style convolutional generator
    and discriminator (chapter 4), the non-saturating loss with the alternating
    step of chapter 3, Adam (lr 5e-4, betas 0.5/0.999), batches of 64, and
    samples from an exponential moving average of the generator's weights.
    With ``n_classes > 0`` the defaults are :data:`MNIST_CGAN_CONFIG` (adds R1).
    Pass ``config=CLASSIC_MLP_GAN_CONFIG`` for the classic baseline.
    Trains on the embedded 4,000 MNIST digits unless ``images`` (and, for
    ``n_classes > 0``, ``labels``) are given.

    ``max_steps`` caps the number of updates too (fast mode uses it, so a tiny
    run does the same work on a busy machine as on an idle one).
    ``checkpoint``: a path. A finished run there with the same budget, seed and
    config is loaded instead of trained; an unfinished one resumes for the time
    (and steps) it has left. The checkpoint is written every ~30 s of training.
    The generator comes back in eval mode, with the training ``history`` and
    ``snapshots`` attached as attributes. Benchmarked in ``benchmarks/bench_gan.py``.
    """
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    cfg = _config(config, n_classes)
    if images is None:
        train = load_mnist("train")
        images = train.data
        labels = train.targets if n_classes else None
    trainer = mnist_gan_trainer(cfg, n_classes, seed, device)
    meta = {"seconds": float(seconds), "max_steps": max_steps, "seed": seed, "n_classes": n_classes,
            "config": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}}
    path = Path(checkpoint) if checkpoint is not None else None
    done = False
    if path is not None and path.is_file():
        state = load_checkpoint(path)
        if state.get("meta") == meta:
            trainer.load(path)
            done = bool(state.get("done"))

    def save(finished: bool) -> None:
        if path is not None:
            save_checkpoint(path, {**trainer.state_dict(), "meta": meta, "done": finished})

    chunk = 30.0 if path is not None else float(seconds)
    while not done:
        elapsed = trainer.history["time"][-1] if trainer.history.get("time") else 0.0
        left_s = seconds - elapsed
        left_steps = None if max_steps is None else max_steps - trainer.steps_done
        if left_s <= 0 or (left_steps is not None and left_steps <= 0):
            done = True
            break
        steps_before = trainer.steps_done
        trainer.train(images, labels, batch_size=cfg["batch_size"], seconds=min(chunk, left_s),
                      steps=left_steps, sample_every=sample_every, desc=desc)
        save(False)
        if trainer.steps_done == steps_before:
            # The budget check comes before a step and the recorded time after it, so the time
            # left can be too short for one more step: stop instead of asking again forever.
            break
    save(True)
    G = trainer.generator.eval()
    G.history, G.snapshots = trainer.history, trainer.snapshots
    return G


# =========================================================================================
# VAE recipes (chapters 7-8) -- benchmarked by benchmarks/bench_vae.py
# =========================================================================================

MNIST_VAE_CONFIG: dict = {
    "z_dim": 32,
    "channels": (16, 32),
    "hidden": 256,
    "n_res": 0,
    "act": "silu",
    "lr": 4e-3,  # peak learning rate of the cosine schedule
    "warmup": 0.03,  # fraction of the budget spent ramping the learning rate up
    "batch_size": 128,
    "max_shift": 1,  # data augmentation: random whole-pixel shifts
    "bf16": "auto",  # mixed precision where the hardware has bf16 units (V.bf16_is_fast); True / False
}
_ACTS = {"relu": nn.ReLU, "elu": nn.ELU, "silu": nn.SiLU, "leaky_relu": nn.LeakyReLU}


def mnist_vae(config: dict | None = None) -> V.VAE:
    """The architecture of :func:`train_mnist_vae`, untrained (``config`` overrides :data:`MNIST_VAE_CONFIG`)."""
    cfg = {**MNIST_VAE_CONFIG, **(config or {})}
    return V.conv_vae(
        z_dim=cfg["z_dim"], channels=tuple(cfg["channels"]), hidden=cfg["hidden"],
        n_res=cfg["n_res"], act=_ACTS[cfg["act"]],
    )


def _cosine_lr(frac: float, peak: float, warmup: float) -> float:
    """Linear warm-up over ``warmup`` of the budget, then cosine decay to 0 (Loshchilov & Hutter, 2017)."""
    if frac < warmup:
        return peak * (frac + 1e-3) / warmup
    return 0.5 * peak * (1 + math.cos(math.pi * min(1.0, (frac - warmup) / (1 - warmup))))


def train_mnist_vae(
    seconds: float,
    seed: int = 0,
    *,
    images: torch.Tensor | None = None,
    checkpoint: str | os.PathLike | None = None,
    config: dict | None = None,
    max_steps: int | None = None,
    device: torch.device | str | None = None,
    desc: str = "mnist vae",
) -> V.VAE:
    """Train the course's recommended MNIST VAE for ``seconds`` of wall time and return it (chapter 7).

    A convolutional VAE (:data:`MNIST_VAE_CONFIG`: two stride-2 conv layers of 16 and
    32 channels and a 256-unit layer on each side, SiLU activations, 32 latent
    dimensions), trained with Adam on the negative
    ELBO, a learning rate that warms up and then follows a cosine to zero over
    the *time* budget, random one-pixel shifts of the training digits, and bfloat16
    mixed precision where the hardware supports it (``config={"bf16": False}`` turns
    it off).
    Trains on the embedded 4,000 MNIST training images unless ``images``
    ``(N, 1, 28, 28)`` in [0, 1] are given.

    ``max_steps`` optionally caps the number of updates as well (the schedule then
    follows whichever budget runs out first): fast mode uses it so that a tiny
    run does the same work on a busy machine as on an idle one.

    ``checkpoint``: a path. If it holds a finished run with the same budget,
    seed and config, the model is loaded instead of trained; an unfinished run
    (interrupted) resumes for the time it has left. The checkpoint is written
    every ~10 s and at the end. The returned VAE (in eval mode) carries the
    training history as ``vae.history``. Benchmarked in ``benchmarks/bench_vae.py``.
    """
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    cfg = {**MNIST_VAE_CONFIG, **(config or {})}
    seed_everything(seed)
    x = load_mnist("train").data if images is None else images
    if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        raise ValueError(f"images must be (N, 1, 28, 28) in [0, 1], got {tuple(x.shape)}")
    vae = mnist_vae(cfg)
    if device is not None:
        vae = vae.to(device)
    opt = torch.optim.Adam(vae.parameters(), lr=cfg["lr"])
    meta = {"seconds": float(seconds), "max_steps": max_steps, "seed": seed, "config": {k: list(v) if isinstance(v, tuple) else v
                                                                 for k, v in cfg.items()}}
    history: dict = {}
    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and path.is_file():
        state = load_checkpoint(path)
        if state.get("meta") == meta:
            try:
                vae.load_state_dict(state["model"])
                opt.load_state_dict(state["optimizer"])
                history = state["history"]
            except (RuntimeError, ValueError, KeyError) as err:  # written by another version of the code
                print(f"{path.name} does not fit this model ({str(err).splitlines()[0]}); training again.")
                vae, history = mnist_vae(cfg).to(device or "cpu"), {}
                opt = torch.optim.Adam(vae.parameters(), lr=cfg["lr"])
                state = {}
            if state.get("done"):
                vae.eval()
                vae.history = history
                return vae
    elapsed0 = history["time"][-1] if history.get("time") else 0.0
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()

    steps0 = len(history.get("step", []))

    def lr_at(step: int) -> float:
        frac = (elapsed0 + time.perf_counter() - t0) / seconds
        if max_steps is not None:
            frac = max(frac, (steps0 + step) / max_steps)
        return _cosine_lr(frac, cfg["lr"], cfg["warmup"])

    use_bf16 = V.bf16_is_fast(device or "cpu") if cfg["bf16"] == "auto" else bool(cfg["bf16"])
    step = V.make_vae_step(
        vae, opt, augment=lambda b: V.random_shift(b, cfg["max_shift"], gen), lr_at=lr_at,
        autocast=torch.bfloat16 if use_bf16 else None,
    )

    def save(done: bool) -> None:
        if path is not None:
            save_checkpoint(path, {"meta": meta, "model": vae.state_dict(), "optimizer": opt.state_dict(),
                                   "history": history, "done": done})

    last_save = [time.perf_counter()]

    def maybe_save(_step: int, _hist: dict) -> None:
        if path is not None and time.perf_counter() - last_save[0] > 10:
            save(False)
            last_save[0] = time.perf_counter()

    vae.train()
    remaining = None if max_steps is None else max(0, max_steps - steps0)
    # a resumed run whose time or steps are already spent only saves (fit refuses a zero budget)
    if remaining != 0 and seconds - elapsed0 > 0:
        fit(step, x, cfg["batch_size"], seconds=seconds - elapsed0, steps=remaining, seed=seed + steps0,
            history=history, callback=maybe_save, callback_every=50, desc=desc, device=device)
    vae.eval()
    save(True)
    vae.history = history
    return vae

