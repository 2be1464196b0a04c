"""The MNIST GAN recipes (chapters 3-4), re-exported by :mod:`course_lib.recipes`: their
settings (:class:`GANConfig`; :data:`MNIST_GAN_CONFIG`, :data:`DCGAN_CONFIG`,
:data:`MNIST_CGAN_CONFIG`, :data:`CLASSIC_MLP_GAN_CONFIG`), the models and trainer they build,
and :func:`train_mnist_gan`. Benchmarked by ``benchmarks/bench_gan.py``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch

from . import gan as GAN
from .config import make_config
from .data import load_mnist
from .gan_clusters import CLUSTERINGS, ClusterConditioned, cluster_labels
from .scaling import precision
from .train import validate_budget
from .utils import seed_everything


@dataclass(frozen=True)
class GANConfig:
    """The settings of an MNIST GAN recipe (chapters 3-4): the defaults are chapter 4's DCGAN
    (:data:`DCGAN_CONFIG`); the recommended recipe is :data:`MNIST_GAN_CONFIG`."""

    arch: str = "dcgan"  # "dcgan": DCGenerator / DCDiscriminator (chapter 4); "mlp" (chapter 3)
    channels: int = 24
    latent_dim: int = 100
    lr_g: float = 5e-4
    lr_d: float = 5e-4
    betas: tuple[float, float] = (0.5, 0.999)
    batch_size: int = 64
    r1_gamma: float = 0.0
    r1_every: int = 1  # lazy R1: the penalty on every k-th step, k times as strong (GANTrainer)
    lecam: float = 0.0  # weight of the LeCam regulariser on D (gan.lecam_penalty); 0: none
    real_label: float = 1.0
    ema: float = 0.99  # sample from an exponential moving average of G's weights
    bf16: str | bool = "auto"  # mixed precision: scaling.precision ("auto": bf16 where it is fast)
    clusters: int = 0  # > 0: condition an unconditional GAN on clusters of the digits (gan_clusters)
    clustering: str = "spectral"  # how: gan_clusters.cluster_labels(method=)

    def __post_init__(self) -> None:
        # checked here, not when clusters are made: a typo must fail even where clusters=0
        if self.clustering not in CLUSTERINGS:
            raise ValueError(f"clustering={self.clustering!r}: choose one of {CLUSTERINGS}")


DCGAN_CONFIG = GANConfig()
"""Chapter 4's unconditional DCGAN: the networks and optimiser settings every MNIST GAN recipe
shares, without labels or clusters (the shipped ``ch04_dcgan``)."""

MNIST_GAN_CONFIG = GANConfig(clusters=50, r1_gamma=0.3, r1_every=4, latent_dim=16)
"""The recommended MNIST GAN (chapter 4, measured in ``benchmarks/bench_gan.py``): the DCGAN
conditioned on 50 spectral clusters of the training digits (:mod:`course_lib.gan_clusters`),
sampled with the clusters' shares, with the R1 penalty (gamma 0.3) that the conditional GAN
needs, applied lazily (every few steps, as strong as that many). The latent code has 16
numbers, not the DCGAN's 100: the cluster says which group of digits to draw, the code only
how this one varies within it, and the smaller first layer fits more steps in the budget
(``bench_gan.py --extra z100``). No labels are used. The LeCam regulariser (``lecam``) is off:
it did not pay (``bench_gan.py --extra lecam``)."""

MNIST_CGAN_CONFIG = GANConfig(r1_gamma=1.0)
"""The recommended class-conditional MNIST GAN (chapter 4): the recipe plus the R1 penalty
(Mescheder et al., 2018) on the discriminator. Without it the conditional model's FID
oscillated over a full-length run and classes turned into one another; with it the FID fell
steadily (``benchmarks/bench_cgan.py`` prints both runs). The unconditional recipe conditions on
clusters instead of labels, with gamma 0.3 (``benchmarks/bench_gan.py --extra no-r1 r1-1``)."""

CLASSIC_MLP_GAN_CONFIG = GANConfig(arch="mlp", lr_g=2e-3, lr_d=2e-3, batch_size=32, ema=0.0, bf16=False)
"""The classic MLP GAN, trained correctly with chapter 3's settings: the benchmark's baseline."""


def gan_config(config: GANConfig | dict | None = None, n_classes: int = 0) -> GANConfig:
    """The recipe's settings (:data:`MNIST_CGAN_CONFIG` when conditional) with ``config``'s changes.

    ``config`` is a :class:`GANConfig` (used as it is) or a dict of changes; an unknown key is
    an error listing the valid ones.
    """
    base = MNIST_CGAN_CONFIG if n_classes else MNIST_GAN_CONFIG
    return config if isinstance(config, GANConfig) else make_config(GANConfig, base, **dict(config or {}))


def _conditioning(cfg: GANConfig, n_classes: int) -> int:
    """The networks' number of classes: the labels' (``n_classes``) or the config's clusters."""
    if cfg.clusters < 0:
        raise ValueError(f"clusters={cfg.clusters}: choose 0 (none) or a positive number")
    if cfg.clusters and n_classes:
        raise ValueError(f"clusters={cfg.clusters} with n_classes={n_classes}: a GAN is conditioned on "
                         "labels or on clusters, not both (pass config={'clusters': 0} with labels)")
    return n_classes or cfg.clusters


def mnist_gan_models(
    config: GANConfig | dict | None = None, n_classes: int = 0
) -> tuple[GAN.Generator, torch.nn.Module]:
    """Untrained generator and discriminator of a GAN config (default :data:`MNIST_GAN_CONFIG`),
    conditioned on ``n_classes`` labels or on the config's ``clusters``."""
    cfg = gan_config(config, n_classes)
    n_classes = _conditioning(cfg, n_classes)
    if cfg.arch == "dcgan":
        return (GAN.DCGenerator(cfg.latent_dim, cfg.channels, n_classes),
                GAN.DCDiscriminator(cfg.channels, n_classes))
    if cfg.arch == "mlp":
        return GAN.MLPGenerator(cfg.latent_dim, n_classes=n_classes), GAN.MLPDiscriminator(n_classes=n_classes)
    raise ValueError(f"arch={cfg.arch!r}: use 'dcgan' or 'mlp'")


def mnist_gan_trainer(
    config: GANConfig | dict | None = None, n_classes: int = 0, seed: int = 0,
    device: torch.device | str | None = None, checkpoint: str | os.PathLike | None = None,
    shipped: str | None = None,
) -> GAN.GANTrainer:
    """A :class:`course_lib.gan.GANTrainer` for the recipe's models and optimiser settings (chapter 4).

    Chapter 4 uses it to train, watch snapshots and condition on the digit class
    (``n_classes=10``, then :data:`MNIST_CGAN_CONFIG` is the default) with exactly the
    settings of :func:`train_mnist_gan`. The config, ``n_classes`` and ``seed`` are recorded
    in the checkpoint, so resuming another run's file is an error.
    """
    cfg = gan_config(config, n_classes)
    prec = precision(cfg.bf16, device or "cpu")
    seed_everything(seed)
    G, D = mnist_gan_models(cfg, n_classes)
    n_classes = _conditioning(cfg, n_classes)
    if device is not None:
        G, D = G.to(device), D.to(device)
    return GAN.GANTrainer(
        G, D, lr_g=cfg.lr_g, lr_d=cfg.lr_d, betas=tuple(cfg.betas), r1_gamma=cfg.r1_gamma,
        r1_every=cfg.r1_every, lecam=cfg.lecam, real_label=cfg.real_label, ema=cfg.ema, seed=seed,
        checkpoint=checkpoint, shipped=shipped,
        config={"arch": cfg.arch, "channels": cfg.channels, "latent_dim": cfg.latent_dim,
                "batch_size": cfg.batch_size, "n_classes": n_classes, "bf16": cfg.bf16,
                "clusters": cfg.clusters, "clustering": cfg.clustering, "r1_every": cfg.r1_every,
                "lecam": cfg.lecam},
        # float16 would need a loss scaler per optimiser; bfloat16 needs none, on CPU and CUDA
        autocast=torch.bfloat16 if prec.scaled else prec.dtype,
    )


def train_mnist_gan(
    seconds: float | None = None,
    seed: int = 0,
    *,
    steps: int | None = None,
    images: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    n_classes: int = 0,
    config: GANConfig | dict | None = None,
    checkpoint: str | os.PathLike | None = None,
    shipped: str | None = None,
    sample_every: int = 0,
    device: torch.device | str | None = None,
    desc: str = "mnist gan",
) -> GAN.Generator | ClusterConditioned:
    """Train the course's recommended MNIST GAN for ``steps`` and/or ``seconds``; return its generator.

    The recipe (:data:`MNIST_GAN_CONFIG`): a DCGAN-style convolutional generator
    and discriminator (chapter 4), the non-saturating loss with the alternating
    step of chapter 3, lazy R1 on the discriminator, Adam (lr 5e-4, betas 0.5/0.999),
    batches of 64, samples from an exponential moving average of the generator's weights, and
    bfloat16 autocast where the hardware has bf16 units (more steps in the same time).
    Unconditional by default: the generator is conditioned on 50 spectral clusters of
    ``images`` (:func:`course_lib.gan_clusters.cluster_labels`, seeded by ``seed``; kept in the
    run, so a resumed or shipped run samples with its own) and comes back as a
    :class:`course_lib.gan_clusters.ClusterConditioned`, whose ``sample(n)`` draws the clusters
    with their shares; ``config=DCGAN_CONFIG`` is chapter 4's plain DCGAN.
    With ``n_classes > 0`` the defaults are :data:`MNIST_CGAN_CONFIG` (labels, R1, no clusters).
    Pass ``config=CLASSIC_MLP_GAN_CONFIG`` for the classic baseline.
    Trains on the embedded 4,000 MNIST digits unless ``images`` (and, for
    ``n_classes > 0``, ``labels``) are given.

    Budgets are for the whole run: the first of ``steps`` (reproducible) and wall-time
    ``seconds`` to run out ends it. ``checkpoint``: a path the run is saved to every ~30 s and
    at the end; a run found there continues exactly to the budget (a finished one is loaded
    without training). A file of another config or seed is an error, never overwritten.
    ``shipped`` names shipped weights (:mod:`course_lib.pretrained`), loaded when they match.
    The generator comes back in eval mode, with the training ``history`` and ``snapshots``
    attached as attributes. Benchmarked in ``benchmarks/bench_gan.py``.
    """
    validate_budget(steps=steps, seconds=seconds)
    cfg = gan_config(config, n_classes)
    _conditioning(cfg, n_classes)
    if images is None:
        train = load_mnist("train")
        images = train.data
        labels = train.targets if n_classes else None
    if cfg.clusters and labels is not None:
        raise ValueError("labels given to a recipe that makes its own clusters: pass n_classes with them")
    trainer = mnist_gan_trainer(cfg, n_classes, seed, device, checkpoint, shipped)
    if checkpoint is not None or shipped is not None:
        trainer.run.resume()
    if cfg.clusters:  # the clusters are part of the run: a resumed or shipped one keeps its own
        extra = trainer.run.extra
        if "clusters" not in extra:
            t0 = time.perf_counter()
            extra["clusters"] = cluster_labels(images, cfg.clusters, seed, cfg.clustering).short()  # (N,)
            extra["cluster_seconds"] = time.perf_counter() - t0
        labels = extra["clusters"].long()
        if seconds is not None:  # the clustering is part of the wall-time budget
            seconds = max(seconds - extra["cluster_seconds"], 1e-3)
    trainer.fit(images, labels, batch_size=cfg.batch_size, steps=steps, seconds=seconds,
                sample_every=sample_every, desc=desc)
    G = trainer.generator.eval()
    if cfg.clusters:
        G = ClusterConditioned(G, torch.bincount(labels, minlength=cfg.clusters)).eval()
    G.history, G.snapshots = trainer.history, trainer.snapshots
    return G
