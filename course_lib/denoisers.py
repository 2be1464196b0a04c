"""Learned restorers of chapter 11, and the training of the course's denoiser.

* :func:`dae`: a denoising autoencoder (Vincent et al., 2008): encode to a narrow code, decode.
* :class:`DnCNN`: a plain deep CNN that predicts the noise (residual learning; Zhang et al.,
  2017, "Beyond a Gaussian denoiser").
* :class:`Denoiser`: the course's denoiser, ``D(y, σ) = y - UNet([y, σ])``: a small DRUNet
  (Zhang et al., 2021) that takes the noise level as a second input channel, so one network
  denoises at any σ -- which plug-and-play restoration needs (:mod:`course_lib.restoration`).
* :class:`ESPCN`: super-resolution by a sub-pixel convolution (Shi et al., 2016).

:func:`train_denoiser` trains any of the denoisers on random patches of the embedded photos
(:func:`course_lib.data.load_photos`), on the shared loop (:class:`course_lib.train.Run`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import UNet
from .config import make_config
from .optim import cosine_lr, optimizer_step
from .train import Run, validate_budget
from .utils import bf16_is_fast, seed_everything


def _check_image(y: torch.Tensor, channels: int = 1) -> None:
    if y.ndim != 4 or y.shape[1] != channels:
        raise ValueError(f"expected images (B, {channels}, H, W), got shape {tuple(y.shape)}")


def residual_loss(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """DnCNN's residual-learning loss (Zhang et al., 2017; chapter 11, exercise 2): ``net``
    predicts the noise of ``y = x + n``, and the loss is mean((net(y) - (y - x))²). It equals the
    squared error of the denoised image y - net(y), which is how :func:`train_denoiser` writes it
    for every architecture here."""
    return (net(y) - (y - x)).square().mean()


class Denoiser(nn.Module):
    """The course's Gaussian denoiser (chapter 11): ``D(y, σ) = y - UNet([y, σ·1])``.

    ``y`` is a noisy (B, 1, H, W) image in [0, 1] units (any H, W); ``sigma`` the noise
    standard deviation in the same units, a float or a (B,) tensor, by default the one the
    module was made for (``self.sigma``). Returns the denoised image, not the residual. The
    network predicts the noise (residual learning, Zhang et al., 2017) from the image and a
    constant noise-level map (Zhang et al., 2018, FFDNet; 2021, DRUNet).
    """

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128), blocks: int = 2, sigma: float | None = None):
        super().__init__()
        self.net = UNet(2, 1, channels, blocks)
        self.sigma = sigma

    def forward(self, y: torch.Tensor, sigma: float | torch.Tensor | None = None) -> torch.Tensor:
        _check_image(y)
        sigma = self.sigma if sigma is None else sigma
        if sigma is None:
            raise ValueError("give the noise level: forward(y, sigma), or build Denoiser(sigma=...)")
        level = torch.as_tensor(sigma, dtype=y.dtype, device=y.device).reshape(-1, 1, 1, 1)
        if level.shape[0] not in (1, y.shape[0]):
            raise ValueError(f"sigma has {level.shape[0]} values for {y.shape[0]} images")
        level = level.expand(y.shape[0], 1, *y.shape[-2:])  # (B, 1, H, W)
        return y - self.net(torch.cat([y, level], 1))


class DnCNN(nn.Module):
    """DnCNN (Zhang et al., 2017): ``depth`` 3x3 convolutions, batch norm in the middle ones,
    predicting the noise; ``forward`` returns ``y - net(y)``, the denoised image."""

    def __init__(self, depth: int = 17, channels: int = 64):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
                       nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(channels, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, y: torch.Tensor, sigma: float | torch.Tensor | None = None) -> torch.Tensor:
        _check_image(y)
        return y - self.net(y)


class DAE(nn.Module):
    """A denoising autoencoder (Vincent et al., 2008): strided convolutions down to a
    ``code``-channel map at a quarter of the size, transposed convolutions back; it predicts
    the clean image directly (no skip), so everything passes through the bottleneck."""

    def __init__(self, channels: int = 32, code: int = 16):
        super().__init__()
        c = channels
        self.encode = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 4, stride=2, padding=1), nn.ReLU(inplace=True),  # (B, c, H/2, W/2)
            nn.Conv2d(c, code, 4, stride=2, padding=1), nn.ReLU(inplace=True),  # (B, code, H/4, W/4)
        )
        self.decode = nn.Sequential(
            nn.ConvTranspose2d(code, c, 4, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(c, c, 4, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c, 1, 3, padding=1),
        )

    def forward(self, y: torch.Tensor, sigma: float | torch.Tensor | None = None) -> torch.Tensor:
        _check_image(y)
        h, w = y.shape[-2:]
        pad = ((-h) % 4, (-w) % 4)
        z = F.pad(y, (0, pad[1], 0, pad[0]), mode="replicate") if any(pad) else y
        return self.decode(self.encode(z))[..., :h, :w]


class ESPCN(nn.Module):
    """ESPCN (Shi et al., 2016): convolutions at the low resolution, then ``factor**2`` channels
    rearranged into a ``factor`` times larger image (``pixel_shuffle``). Learns the residual
    over bicubic upsampling, which makes the short training of chapter 11 converge faster."""

    def __init__(self, factor: int = 4, channels: int = 64):
        super().__init__()
        self.factor = factor
        self.net = nn.Sequential(
            nn.Conv2d(1, channels, 5, padding=2), nn.Tanh(),
            nn.Conv2d(channels, channels // 2, 3, padding=1), nn.Tanh(),
            nn.Conv2d(channels // 2, factor**2, 3, padding=1),
        )

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        _check_image(y)
        up = F.interpolate(y, scale_factor=self.factor, mode="bicubic", align_corners=False)
        return up + F.pixel_shuffle(self.net(y), self.factor)  # (B, 1, fH, fW)


ARCHS = ("unet", "dncnn", "dae")

CHAPTER_RUNS: dict[str, dict] = {
    # chapter 11's equal-time comparison: changes to the recipe's config (recipes.DENOISER_CONFIG)
    "dae": {"arch": "dae", "channels": (32,)},
    "dncnn": {"arch": "dncnn", "channels": (48,), "blocks": 12},  # 12 x 48: fair steps on a CPU
    "recipe": {},
}


@dataclass(frozen=True)
class DenoiserConfig:
    """Settings of :func:`train_denoiser` (chapter 11); :data:`course_lib.recipes.DENOISER_CONFIG`
    is the recipe."""

    arch: str = "unet"  # "unet": Denoiser; "dncnn": DnCNN; "dae": DAE
    channels: tuple[int, ...] = (32, 64, 128)  # unet: one width per level; dncnn/dae: the first
    blocks: int = 2  # unet: residual blocks per level; dncnn: depth
    patch: int = 64
    batch_size: int = 32
    lr: float = 1e-3
    lr_warmup: float = 0.02  # fraction of the budget; then cosine decay to zero
    sigma_max: float = 0.0  # > 0: train on sigma ~ U(0, sigma_max) (one net for every level)
    loss: str = "l2"  # "l2": the MMSE denoiser (Tweedie); "l1"
    bf16: str | bool = "auto"  # bfloat16 autocast where the CPU has native support


def denoiser_config(config: DenoiserConfig | dict | None = None, base: DenoiserConfig | None = None) -> DenoiserConfig:
    """``base`` (default :class:`DenoiserConfig`'s defaults) with ``config``'s changes, checked."""
    if isinstance(config, DenoiserConfig):
        cfg = config
    else:
        cfg = make_config(DenoiserConfig, base or DenoiserConfig(), **dict(config or {}))
    if cfg.arch not in ARCHS:
        raise ValueError(f"arch={cfg.arch!r}: choose one of {ARCHS}")
    if cfg.loss not in ("l1", "l2"):
        raise ValueError(f"loss={cfg.loss!r}: choose 'l1' or 'l2'")
    if cfg.patch < 8 or cfg.batch_size < 1 or not cfg.lr > 0 or cfg.sigma_max < 0:
        raise ValueError(f"patch={cfg.patch}, batch_size={cfg.batch_size}, lr={cfg.lr}, "
                         f"sigma_max={cfg.sigma_max}: patch >= 8, batch_size >= 1, lr > 0, sigma_max >= 0")
    return cfg


def build_denoiser(config: DenoiserConfig | dict | None = None) -> nn.Module:
    """The network of a :class:`DenoiserConfig`."""
    cfg = denoiser_config(config)
    if cfg.arch == "unet":
        return Denoiser(cfg.channels, cfg.blocks)
    if cfg.arch == "dncnn":
        return DnCNN(cfg.blocks, cfg.channels[0])
    return DAE(cfg.channels[0])


def random_patches(images: list[torch.Tensor], n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` random ``size`` x ``size`` crops (n, 1, size, size) of the (1, H, W) ``images``: the
    image uniformly (so a large dark micrograph does not outweigh a small photo), the position
    uniformly, then one of the 8 flips and quarter turns."""
    small = [tuple(im.shape) for im in images if min(im.shape[-2:]) < size]
    if small:
        raise ValueError(f"patch size {size} is larger than images of shapes {small}")
    out = torch.empty(n, 1, size, size)
    which = torch.randint(len(images), (n,), generator=generator)
    for i, k in enumerate(which.tolist()):
        im = images[k]
        top = int(torch.randint(im.shape[-2] - size + 1, (1,), generator=generator))
        left = int(torch.randint(im.shape[-1] - size + 1, (1,), generator=generator))
        out[i] = im[:, top : top + size, left : left + size]
    turns = int(torch.randint(4, (1,), generator=generator))
    out = torch.rot90(out, turns, (-2, -1))
    return out.flip(-1) if torch.rand((), generator=generator) < 0.5 else out


def _train(
    model: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Generator], torch.Tensor], cfg: DenoiserConfig,
    run_config: dict, seconds: float | None, seed: int, steps: int | None, images: list[torch.Tensor] | None,
    checkpoint: str | os.PathLike | None, shipped: str | None, desc: str,
) -> Run:
    """The loop of every restorer here: ``loss_fn(patches, generator)`` on fresh random patches
    of the training photos at each step, Adam with :func:`course_lib.optim.cosine_lr`, bf16 autocast where fast."""
    from .data import load_photos

    validate_budget(steps=steps, seconds=seconds)
    seed_everything(seed)
    images = list(load_photos("train").values()) if images is None else list(images)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(seed)
    run = Run({"model": model}, {"opt": opt}, generators={"patches": gen}, config=run_config, seed=seed,
              path=checkpoint, save_every=30.0, shipped=shipped)
    run.resume()
    use_bf16 = bf16_is_fast("cpu") if cfg.bf16 == "auto" else bool(cfg.bf16)

    def step(batch):
        lr = cosine_lr(run.step / steps if steps is not None else run.elapsed / seconds, cfg.lr, cfg.lr_warmup)
        for group in opt.param_groups:
            group["lr"] = lr
        x = random_patches(images, cfg.batch_size, cfg.patch, gen)  # (B, 1, P, P)
        with torch.autocast("cpu", dtype=torch.bfloat16) if use_bf16 else nullcontext():
            loss = loss_fn(x, gen)
        optimizer_step(loss, opt)
        return {"loss": float(loss.detach()), "lr": lr}

    # the data are drawn by the step; fit's own minibatches only count steps
    try:
        run.fit(step, torch.zeros(1), batch_size=1, steps=steps, seconds=seconds, desc=desc)
    finally:
        model.eval()
    model.history, model.run = run.history, run
    return run


def train_denoiser(
    seconds: float | None = None, sigma: float = 25 / 255, seed: int = 0, *, steps: int | None = None,
    config: DenoiserConfig | dict | None = None, images: list[torch.Tensor] | None = None,
    checkpoint: str | os.PathLike | None = None, shipped: str | None = None, desc: str = "denoiser",
) -> nn.Module:
    """Train a denoiser for Gaussian noise of standard deviation ``sigma`` (chapter 11).

    Each step draws ``batch_size`` patches of the training photos (:func:`random_patches`),
    adds N(0, σ²) noise (σ = ``sigma``, or σ ~ U(0, ``sigma_max``) per patch when
    ``config.sigma_max`` > 0), and minimises the squared error of the denoised patch (``"l2"``:
    the network approaches the MMSE denoiser E[x | y]) with Adam, a linear warm-up and a cosine
    decay of the learning rate to zero over the budget. Noisy inputs are not clipped to [0, 1]:
    the noise model is y = x + n. Returns the network in eval mode, with ``.history`` and
    ``.run``; a :class:`Denoiser` comes back with ``.sigma`` set to ``sigma``.
    """
    if not 0 < sigma < 1:
        raise ValueError(f"sigma={sigma}: give the noise standard deviation in [0, 1] units (25/255, not 25)")
    cfg = denoiser_config(config)
    model = build_denoiser(cfg)

    def loss_fn(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n = x.shape[0]
        s = torch.rand(n, generator=gen) * cfg.sigma_max if cfg.sigma_max > 0 else torch.full((n,), sigma)
        y = x + s.view(-1, 1, 1, 1) * torch.randn(x.shape, generator=gen)
        err = model(y, s).float() - x
        return err.square().mean() if cfg.loss == "l2" else err.abs().mean()

    _train(model, loss_fn, cfg, {**dataclasses.asdict(cfg), "sigma": sigma}, seconds, seed, steps, images,
           checkpoint, shipped, desc)
    if isinstance(model, Denoiser):
        model.sigma = sigma
    return model


class Inpainter(nn.Module):
    """Inpainting by a U-Net (chapter 11): ``forward(y, mask)`` keeps the observed pixels
    (``mask`` = 1) and fills the others with ``UNet([m·y, m])``: the network sees which pixels
    are missing, and an unobserved value in ``y`` never reaches it."""

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128), blocks: int = 2):
        super().__init__()
        self.net = UNet(2, 1, channels, blocks)

    def forward(self, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        _check_image(y)
        mask = mask.to(y).expand_as(y)
        return mask * y + (1 - mask) * self.net(torch.cat([mask * y, mask], 1))


def train_inpainter(
    seconds: float | None = None, keep: tuple[float, float] = (0.1, 0.5), seed: int = 0, *,
    steps: int | None = None, config: DenoiserConfig | dict | None = None,
    checkpoint: str | os.PathLike | None = None, shipped: str | None = None, desc: str = "inpainter",
) -> Inpainter:
    """Train an :class:`Inpainter` on the training photos with random masks keeping each pixel
    with a probability drawn from U(``keep``) per patch; squared error on the missing pixels."""
    cfg = denoiser_config(config)
    model = Inpainter(cfg.channels, cfg.blocks)

    def loss_fn(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        p = keep[0] + (keep[1] - keep[0]) * torch.rand(x.shape[0], 1, 1, 1, generator=gen)
        m = (torch.rand(x.shape, generator=gen) < p).float()
        err = (model(m * x, m).float() - x) * (1 - m)
        return err.square().sum() / (1 - m).sum().clamp_min(1)

    _train(model, loss_fn, cfg, {**dataclasses.asdict(cfg), "keep": list(keep), "task": "inpaint"}, seconds, seed,
           steps, None, checkpoint, shipped, desc)
    return model


def train_espcn(
    seconds: float | None = None, factor: int = 4, seed: int = 0, *, steps: int | None = None,
    config: DenoiserConfig | dict | None = None, checkpoint: str | os.PathLike | None = None,
    shipped: str | None = None, desc: str = "espcn",
) -> ESPCN:
    """Train an :class:`ESPCN` to undo area downsampling by ``factor`` (``restoration.Downsample``)
    on the training photos; squared error of the high-resolution patch."""
    cfg = denoiser_config(config)
    model = ESPCN(factor)

    def loss_fn(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return (model(F.avg_pool2d(x, factor)).float() - x).square().mean()

    _train(model, loss_fn, cfg, {**dataclasses.asdict(cfg), "factor": factor, "task": "sr"}, seconds, seed, steps,
           None, checkpoint, shipped, desc)
    return model
