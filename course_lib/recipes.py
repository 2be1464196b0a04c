"""Recipes: the course's recommended, benchmarked models, trained in one call.

Each recipe's settings are a frozen dataclass (:class:`GANConfig`, :class:`VAEConfig`):
``dataclasses.replace`` (or a dict of changes) makes a variant, and an unknown setting is
an error naming the valid ones. Each trains on the embedded data by default, on
:class:`course_lib.train.Run` (exact resume from a checkpoint), and is measured against a
classic baseline by a script in ``benchmarks/``: ``train_mnist_gan`` (chapter 4,
``benchmarks/bench_gan.py``), ``train_mnist_vae`` (chapter 7, ``benchmarks/bench_vae.py``) and
``train_toy_gan`` (chapter 5, ``benchmarks/bench_toy_gan.py``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass

import torch
from torch import nn

from . import denoisers as D
from . import diffusion_train as DT
from . import robust as R
from . import translation as TR
from . import vae as V
from .config import make_config
from .data import digits_as_mnist, load_mnist, random_shift

# the GAN recipes live in gan_recipe (chapters 3-4); recipes is their public home
from .gan_recipe import (  # noqa: F401, E402
    CLASSIC_MLP_GAN_CONFIG,
    DCGAN_CONFIG,
    MNIST_CGAN_CONFIG,
    MNIST_GAN_CONFIG,
    GANConfig,
    gan_config,
    mnist_gan_models,
    mnist_gan_trainer,
    train_mnist_gan,
)
from .scaling import SINGLE, World, precision
from .self_ensemble import SharpenedEnsemble
from .tracking import TensorBoard, active
from .train import Run, validate_budget
from .utils import seed_everything

# =========================================================================================
# VAE recipes (chapters 7-8) -- benchmarked by benchmarks/bench_vae.py
# =========================================================================================


@dataclass(frozen=True)
class VAEConfig:
    """The settings of the MNIST VAE recipe (chapter 7); the defaults are :data:`MNIST_VAE_CONFIG`."""

    z_dim: int = 32
    channels: tuple[int, int] = (16, 32)
    hidden: int = 256
    n_res: int = 0
    act: str = "silu"
    lr: float = 4e-3  # peak learning rate of the cosine schedule
    warmup: float = 0.03  # fraction of the budget spent ramping the learning rate up
    batch_size: int = 128
    max_shift: int = 1  # data augmentation: random whole-pixel shifts
    bf16: str | bool = "auto"  # mixed precision: scaling.precision ("auto": bf16 where it is fast)
    decoder: str = "conv"  # "conv": z -> image in one call; "pixelcnn": also sees the pixels before each one
    free_bits: float = 0.0  # nats per latent dimension the encoder is not pushed below (VAE.loss)


MNIST_VAE_CONFIG = VAEConfig()
"""The recommended MNIST VAE whose decoder maps a code to an image in one call (measured in
``benchmarks/bench_vae.py``): the one chapters 10-14 attack, restore, edit and diffuse through."""

MNIST_PIXELVAE_CONFIG = VAEConfig(decoder="pixelcnn", free_bits=0.5)
"""The recommended MNIST VAE for likelihood (chapter 7, ``benchmarks/bench_vae.py``): the same
encoder and conv decoder, whose features a local masked-convolution stack
(:class:`course_lib.vae.PixelCNNDecoder`) reads with the pixels above and to the left of each
pixel, trained with free bits of 0.5 nats per latent dimension against posterior collapse
(without them the model drops its code, KL 0, for a better bound: the benchmark's ablation).
Its samples take ``H * W`` sequential decoder steps."""

_DECODERS = ("conv", "pixelcnn")

_ACTS = {"relu": nn.ReLU, "elu": nn.ELU, "silu": nn.SiLU, "leaky_relu": nn.LeakyReLU}


def vae_config(config: VAEConfig | dict | None = None) -> VAEConfig:
    """:data:`MNIST_VAE_CONFIG` with ``config``'s changes (a :class:`VAEConfig` is used as it is)."""
    return config if isinstance(config, VAEConfig) else make_config(VAEConfig, MNIST_VAE_CONFIG, **dict(config or {}))


def mnist_vae(config: VAEConfig | dict | None = None, shape: tuple[int, int, int] = (1, 28, 28)) -> V.VAE:
    """The architecture of :func:`train_mnist_vae`, untrained, for images of ``shape`` (C, H, W)."""
    cfg = vae_config(config)
    if cfg.act not in _ACTS:
        raise ValueError(f"act={cfg.act!r}: choose one of {sorted(_ACTS)}")
    if cfg.decoder not in _DECODERS:
        raise ValueError(f"decoder={cfg.decoder!r}: choose one of {list(_DECODERS)}")
    if not cfg.free_bits >= 0:
        raise ValueError(f"free_bits must be >= 0 nats, got {cfg.free_bits}")
    build = V.conv_vae if cfg.decoder == "conv" else V.pixel_vae
    return build(
        z_dim=cfg.z_dim, channels=tuple(cfg.channels), hidden=cfg.hidden, n_res=cfg.n_res, act=_ACTS[cfg.act],
        shape=tuple(shape),
    )


def _cosine_lr(frac: float, peak: float, warmup: float) -> float:
    """Linear warm-up over ``warmup`` of the budget, then cosine decay to 0 (Loshchilov & Hutter, 2017)."""
    if frac < warmup:
        return peak * (frac + 1e-3) / warmup
    return 0.5 * peak * (1 + math.cos(math.pi * min(1.0, (frac - warmup) / (1 - warmup))))


def train_mnist_vae(
    seconds: float | None = None,
    seed: int = 0,
    *,
    steps: int | None = None,
    images: torch.Tensor | None = None,
    checkpoint: str | os.PathLike | None = None,
    config: VAEConfig | dict | None = None,
    device: torch.device | str | None = None,
    shipped: str | None = None,
    desc: str = "mnist vae",
    world: World = SINGLE,
    tensorboard: str | os.PathLike | None = None,
) -> V.VAE:
    """Train the course's recommended MNIST VAE and return it (chapter 7).

    A convolutional VAE (:data:`MNIST_VAE_CONFIG`: two stride-2 conv layers of 16 and
    32 channels and a 256-unit layer on each side, SiLU activations, 32 latent
    dimensions), trained with Adam on the negative ELBO, a learning rate that warms up
    and then follows a cosine to zero over the budget, random one-pixel shifts of the
    training digits, and bfloat16 mixed precision where the hardware supports it
    (``config={"bf16": False}`` turns it off; ``True`` forces it, as float16 with loss scaling
    on CUDA: :func:`course_lib.scaling.precision`). Trains on the embedded 4,000 MNIST training
    images unless ``images`` ``(N, C, H, W)`` in [0, 1] are given (the same architecture then
    takes their shape: FashionMNIST, or CIFAR-10's (3, 32, 32) with the Bernoulli likelihood
    read as a cross-entropy on grey levels). ``config=MNIST_PIXELVAE_CONFIG`` trains chapter 7's
    likelihood recipe instead, a PixelVAE (one-channel images only; its samples take ``H * W``
    decoder steps).

    Budgets are for the whole run. With ``steps`` the schedule follows the step count, so
    two runs (and a run killed and resumed) give the same weights on CPU; ``seconds`` then
    only caps the time. With ``seconds`` alone the schedule follows the training time
    (what ``benchmarks/bench_vae.py`` compares at equal wall time), which no rerun repeats
    exactly. ``checkpoint``: a path the run is saved to every ~10 s and at the end; a run
    found there continues to the budget (a finished one is loaded without training); a
    file of another config or seed is an error, never overwritten. ``shipped`` names shipped
    weights (:mod:`course_lib.pretrained`) that are loaded, without training, when no checkpoint
    is found and the config and seed match. The returned VAE (in eval mode) carries the
    training history as ``vae.history``.

    Chapter 13: ``world`` (:func:`course_lib.scaling.init_world`) trains one share of every
    batch in each of several processes, with the same updates as one process; ``tensorboard``
    names a folder for TensorBoard logs (losses, the config, sample grids).
    """
    validate_budget(steps=steps, seconds=seconds)
    cfg = vae_config(config)
    seed_everything(seed)
    x = load_mnist("train").data if images is None else images
    if x.ndim != 4 or min(x.shape[2:]) < 4:
        raise ValueError(f"images must be (N, C, H, W) in [0, 1] with H, W >= 4 (MNIST: (N, 1, 28, 28)), "
                         f"got {tuple(x.shape)}")
    vae = mnist_vae(cfg, tuple(x.shape[1:]))
    if device is not None:
        vae = vae.to(device)
    opt = torch.optim.Adam(vae.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.Generator().manual_seed(seed + 1)  # the reparameterisation noise
    prec = precision(cfg.bf16, device or "cpu")
    scaler = prec.scaler(device or "cpu")
    run = Run({"model": vae}, {"opt": opt}, generators={"augment": gen, "noise": noise}, config=cfg,
              seed=seed, path=checkpoint, save_every=10.0, shipped=shipped, world=world,
              scalers={} if scaler is None else {"opt": scaler})
    run.resume()

    def frac() -> float:
        return run.step / steps if steps is not None else run.elapsed / seconds

    step = V.make_vae_step(
        vae, opt, augment=lambda b: random_shift(b, cfg.max_shift, gen),
        lr_at=lambda t: _cosine_lr(frac(), cfg.lr, cfg.warmup), autocast=prec.dtype,
        step_index=lambda: run.step, world=world, noise=noise, scaler=scaler, free_bits=cfg.free_bits,
    )
    board = _board(tensorboard, run)
    fixed = torch.Generator().manual_seed(seed)  # the same latents in every sample grid

    def samples(t: int, history) -> None:
        vae.eval()
        board.images(t + 1, "samples", vae.sample(64, generator=fixed.manual_seed(seed)).float())
        vae.train()

    vae.train()
    try:
        run.fit(step, x, cfg.batch_size, steps=steps, seconds=seconds, desc=desc, device=device,
                tensorboard=board, callback=None if board is None else samples, callback_every=500)
        if board is not None:
            samples(run.step - 1, run.history)
    finally:
        vae.eval()
        if board is not None and tensorboard is not None:
            board.close()
    vae.history = run.history
    return vae



def _board(folder: str | os.PathLike | None, run: Run) -> TensorBoard | None:
    """A TensorBoard writer for ``run`` in ``folder`` (else that of an enclosing
    :func:`course_lib.tracking.log_to` block), on rank 0 only (chapter 13)."""
    if not run.world.is_main:
        return None
    return active() if folder is None else TensorBoard(folder, {**run.config, "seed": run.seed})


# =========================================================================================
# The 2-D GAN recipe (chapter 5) -- benchmarked by benchmarks/bench_toy_gan.py
# =========================================================================================


def train_toy_gan(kind: str, seconds: float | None = None, seed: int = 0, method: str = "recipe", **kwargs):
    """Chapter 5's GANs on the ring or the grid: :func:`course_lib.toy_gan.train_toy_gan`,
    with the course's recipe by default; ``method`` names any of :data:`course_lib.toy_gan.METHODS`.
    Returns a :class:`course_lib.toy_gan.ToyGAN`, whose ``sample(n)`` is ``(n, 2)``."""
    from .toy_gan import train_toy_gan as train

    return train(kind, seconds, seed, method, **kwargs)


# =========================================================================================
# The robust MNIST classifier (chapter 10) -- benchmarked by benchmarks/bench_robust.py
# =========================================================================================




def train_robust_mnist(
    seconds: float | None = None, seed: int = 0, eps: float = 0.3, *, steps: int | None = None,
    config: R.RobustConfig | dict | None = None, checkpoint: str | os.PathLike | None = None, shipped: str | None = None,
    desc: str = "robust mnist",
) -> nn.Module:
    """The course's best robust MNIST classifier for a CPU budget (chapter 10).

    :data:`ROBUST_MNIST_CONFIG` trained by :func:`course_lib.robust.train_robust` against the
    ℓ∞ radius ``eps`` on the embedded 4,000 training digits, for ``seconds`` of training (or
    ``steps``). Returns the network in eval mode: logits (B, 10) of images (B, 1, 28, 28) in
    [0, 1], the standardisation inside. ``config`` (a dict of changes) makes a variant;
    ``checkpoint`` and ``shipped`` are those of :func:`course_lib.robust.train_robust`.
    """
    cfg = R.robust_config(config, base=ROBUST_MNIST_CONFIG)
    if eps != cfg.eps:
        cfg = dataclasses.replace(cfg, eps=eps)
    return R.train_robust(seconds, seed, steps=steps, config=cfg, checkpoint=checkpoint, shipped=shipped, desc=desc)


ROBUST_MNIST_CONFIG = R.RobustConfig(method="pgd", steps=5, channels=(16, 32), affine=True)
"""The settings of :func:`train_robust_mnist` (measured in ``benchmarks/bench_robust.py``):
plain PGD adversarial training with three changes, each measured at equal wall time on two
CPU cores (chapter 10): half the channels (16 and 32: about twice the optimiser steps in the
same time, and the network is still big enough), PGD-5 with step 2.5ε/5 instead of PGD-10
(again twice the steps; PGD-10 did worse at equal time), and random rotations, zooms and shifts
of the training digits (``features.random_affine``: robust accuracy generalises worse than clean
accuracy, and 4,000 digits are few)."""


# =========================================================================================
# The denoiser (chapter 11) -- benchmarked by benchmarks/bench_restoration.py
# =========================================================================================

DENOISER_CONFIG = D.DenoiserConfig()
"""The settings of :func:`train_denoiser` (measured in ``benchmarks/bench_restoration.py``): a
three-level U-Net of residual blocks (32, 64 and 128 channels, no normalisation) that predicts
the noise from the image and a noise-level map (a small DRUNet, Zhang et al., 2021), trained on
random 64x64 patches of the 16 training photos with their flips and quarter turns, 32 per step,
squared error, Adam at 1e-3 with a short warm-up and a cosine decay to zero over the budget
(the decay is what a short budget needs most), bfloat16 autocast where the CPU has bf16 units."""

SHIPPED_DENOISER_CONFIG = D.DenoiserConfig(channels=(32, 64, 128, 256), sigma_max=55 / 255)
"""The shipped denoiser (:func:`course_lib.restoration.pretrained_denoiser`): the recipe with a
fourth level (a receptive field larger than the 64x64 patches) and noise levels drawn from
U(0, 55/255) per patch, so one network serves plug-and-play restoration at every level; trained
for 55 minutes by ``tools/train_weights.py ch11_denoiser``."""

SHIPPED_DENOISER_SECONDS = 3300.0


def train_denoiser(
    seconds: float | None = None, sigma: float = 25 / 255, seed: int = 0, *, steps: int | None = None,
    config: D.DenoiserConfig | dict | None = None, checkpoint: str | os.PathLike | None = None,
    shipped: str | None = None, desc: str = "denoiser",
) -> nn.Module:
    """The course's best grey-level denoiser for a CPU budget (chapter 11).

    :data:`DENOISER_CONFIG` trained by :func:`course_lib.denoisers.train_denoiser` for Gaussian
    noise of standard deviation ``sigma`` ([0, 1] units) on patches of the embedded training
    photos, for ``seconds`` (or ``steps``). Returns a :class:`course_lib.denoisers.Denoiser` in
    eval mode: noisy (B, 1, H, W) in, the denoised image out, at any H, W. ``config`` (a dict
    of changes) makes a variant.
    """
    cfg = D.denoiser_config(config, base=DENOISER_CONFIG)
    return D.train_denoiser(seconds, sigma, seed, steps=steps, config=cfg, checkpoint=checkpoint,
                            shipped=shipped, desc=desc)


# =========================================================================================
# The translator (chapter 12) -- benchmarked by benchmarks/bench_translation.py
# =========================================================================================

DIGITS_TO_MNIST_CONFIG = TR.TranslatorConfig()
"""The settings of :func:`train_digits_to_mnist` (measured in ``benchmarks/bench_translation.py``):
a three-level U-Net (32, 64, 128 channels, one residual block per level) trained on synthetic
pairs, MNIST's training digits made into scikit-learn-style digits three times each, with pens
that give them the ink of scikit-learn's training digits
(:func:`course_lib.translation.ink_matched_pairs`), with the pixelwise cross-entropy on logits;
Adam at 2e-4 (betas 0.5, 0.999) with a cosine decay over the budget, 64 pairs per step,
bfloat16 autocast where the CPU has bf16 units. No discriminator: on this task the adversarial
terms of pix2pix and CycleGAN lowered how often an independent reader reads the right digit."""

DIGITS_TO_MNIST_CALIBRATION = 256
"""How many scikit-learn training digits (unlabelled) :func:`train_digits_to_mnist` sharpens
its outputs on: the entropy it matches is then a mean over 200,704 pixels
(``benchmarks/bench_translation.py --shipped`` prints the factor from these and from all 1,297)."""


def train_digits_to_mnist(
    seconds: float | None = None, seed: int = 0, *, steps: int | None = None,
    config: TR.TranslatorConfig | dict | None = None, checkpoint: str | os.PathLike | None = None,
    shipped: str | None = None, desc: str = "digits to mnist", radius: int = 1,
    calibration: int = DIGITS_TO_MNIST_CALIBRATION,
) -> nn.Module:
    """The course's best translator from scikit-learn's digits (:func:`course_lib.data.digits_as_mnist`)
    to MNIST's style (chapter 12): (B, 1, 28, 28) in [0, 1] to (B, 1, 28, 28) in [0, 1].

    :data:`DIGITS_TO_MNIST_CONFIG` trained by :func:`course_lib.translation.train_translator`
    (method ``"paired"``) for ``seconds`` (or ``steps``), then applied as a
    :class:`course_lib.self_ensemble.SharpenedEnsemble`: its logits averaged over the shifts of
    the input by up to ``radius`` pixels, and sharpened so that its outputs on the first
    ``calibration`` scikit-learn training digits have the mean per-pixel entropy of MNIST's
    training digits. ``radius=0, calibration=0`` give the network alone (sharpness 1). It never
    sees a label, nor any classifier. Returns the model in eval mode, with the network's
    ``.history`` and ``.run``.
    """
    if calibration < 0 or radius < 0:  # before training, not after
        raise ValueError(f"calibration={calibration} (0: no sharpening) and radius={radius} must be >= 0")
    cfg = TR.translator_config(config, base=DIGITS_TO_MNIST_CONFIG)
    net = TR.train_translator("paired", seconds, seed, steps=steps, config=cfg, checkpoint=checkpoint,
                              shipped=shipped, desc=desc)
    model = SharpenedEnsemble(net, radius)
    if calibration:
        model.calibrate(digits_as_mnist("train")[0][:calibration], load_mnist("train").data)
    model.history, model.run = net.history, net.run
    return model.eval()


# =========================================================================================
# Diffusion recipe (chapter 14) -- benchmarked by benchmarks/bench_diffusion.py
# =========================================================================================


def train_mnist_diffusion(
    seconds: float | None = None, seed: int = 0, *, steps: int | None = None,
    labels: torch.Tensor | None = None, n_classes: int = 0, config: DT.DiffusionConfig | dict | None = None,
    vae: V.VAE | None = None, checkpoint: str | os.PathLike | None = None, shipped: str | None = None,
    desc: str = "mnist diffusion",
) -> DT.LatentDiffusion:
    """The course's best unconditional MNIST diffusion-family model (chapter 14): latent flow
    matching on the embedded 4,000 training digits. ``sample(n, steps=10)`` returns
    ``(n, 1, 28, 28)`` in [0, 1]; the default is 10 Heun steps (20 network calls).

    Two stages (Rombach et al., 2022): chapter 7's VAE recipe (:func:`train_mnist_vae`) for
    ``config.vae_share`` of ``seconds`` (or ``steps`` steps), then flow matching
    (:data:`course_lib.diffusion_train.LATENT_CONFIG`) on the standardised posterior means of the
    digits and of ``config.shifts`` one-pixel-shifted copies, for the rest of the time (or ``steps``
    steps). With ``labels`` and ``n_classes``, the flow is class-conditional, for classifier-free
    guidance. A trained ``vae`` skips the first stage (the whole budget goes to the flow).
    ``checkpoint``: a path prefix; the stages are saved to ``<checkpoint>_vae.pt`` and
    ``<checkpoint>_flow.pt`` and continue from there. ``shipped`` names shipped weights:
    ``<shipped>_vae`` and ``<shipped>_flow``.
    Benchmarked against the GAN and VAE recipes in ``benchmarks/bench_diffusion.py``.
    """
    validate_budget(steps=steps, seconds=seconds)
    cfg = DT.diffusion_config(config, base=DT.LATENT_CONFIG)
    if not 0 < cfg.vae_share < 1:
        raise ValueError(f"vae_share={cfg.vae_share}: choose a share in (0, 1)")
    images = load_mnist("train").data
    vae_seconds = None if seconds is None or vae is not None else cfg.vae_share * seconds
    if vae is None:
        vae = train_mnist_vae(vae_seconds, seed, steps=steps, desc=f"{desc}: vae",
                              checkpoint=None if checkpoint is None else f"{checkpoint}_vae.pt",
                              shipped=None if shipped is None else f"{shipped}_vae")
    vae.eval()
    codes = DT.latent_codes(vae, images, cfg.shifts, seed)  # ((1 + shifts) N, z_dim)
    mean, std = codes.mean(0), codes.std(0)
    code_labels = None if labels is None else labels.repeat(1 + cfg.shifts)
    flow = DT.train_diffusion((codes - mean) / std, None if seconds is None else seconds - (vae_seconds or 0), seed,
                              steps=steps, labels=code_labels, n_classes=n_classes, config=cfg,
                              checkpoint=None if checkpoint is None else f"{checkpoint}_flow.pt",
                              shipped=None if shipped is None else f"{shipped}_flow", desc=f"{desc}: flow")
    model = DT.LatentDiffusion(vae, flow, mean, std)
    model.history = {"vae": getattr(vae, "history", {}), "flow": flow.history}
    return model
