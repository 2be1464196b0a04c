"""Training diffusion and flow-matching models, and the trained model's sampling API (chapter 14).

:func:`train_diffusion` trains a :class:`DiffusionModel` on images ``(N, C, H, W)`` in [0, 1]
(scaled to [-1, 1], the range the noise is matched to) or on points ``(N, 2)`` (the 2-D
mixtures of chapter 5), with :class:`course_lib.train.Run`: budgets in steps or seconds,
checkpoints that resume exactly, shipped weights, a refusal of non-finite losses. The formulas
it uses are those of :mod:`course_lib.diffusion`; :func:`course_lib.recipes.train_mnist_diffusion`
is the course's recipe on the embedded digits.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from . import diffusion as D
from .blocks import TimeUNet, timestep_embedding
from .config import make_config
from .optim import EMA, cosine_lr, optimizer_step
from .scaling import precision
from .train import Run, validate_budget

BENCHMARK = Path(__file__).parent / "assets" / "bench" / "diffusion.json"  # bench_diffusion.py --save


def load_benchmark(path: str | Path = BENCHMARK) -> dict:
    """The table ``benchmarks/bench_diffusion.py --save`` kept: ``{"command", "floor", "rows":
    [{"budget", "model", "seed", "steps", "fid", "sample_seconds"}, ...]}`` (chapter 14 prints it)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `python benchmarks/bench_diffusion.py --save {path}`")
    return json.loads(path.read_text())


@dataclass(frozen=True)
class DiffusionConfig:
    """The settings of a diffusion or flow-matching run (frozen: variants by ``replace``)."""

    kind: str = "flow"  # "flow": flow matching on the straight path; "ddpm": noise prediction
    schedule: str = "cosine"  # DDPM's noise schedule ("linear" or "cosine")
    T: int = 1000  # DDPM's number of steps
    channels: tuple[int, ...] = (16, 32, 32)  # U-Net widths per level (images)
    blocks: int = 1  # residual blocks per level
    emb_dim: int = 128
    hidden: int = 256  # MLP width (points)
    depth: int = 4  # MLP hidden layers (points)
    lr: float = 2e-3  # peak of the cosine learning-rate schedule
    warmup: float = 0.02  # fraction of the budget the learning rate ramps up over
    batch_size: int = 128
    ema: float = 0.999  # the sampled model is an EMA of the weights
    p_uncond: float = 0.1  # with classes: the fraction of labels dropped (classifier-free guidance)
    sample_steps: int = 10  # default sampling steps (Heun: 2 network calls each; DDIM: 1)
    bf16: str | bool = "auto"  # mixed precision for training and sampling (scaling.precision)
    vae_share: float = 0.6  # latent models: the share of a time budget spent on the VAE
    shifts: int = 4  # latent models: shifted copies of each digit encoded (data augmentation)


DIFFUSION_CONFIG = DiffusionConfig()
"""Pixel-space models of 28x28 digits (a 16-32-32 :class:`course_lib.blocks.TimeUNet`) and points."""
LATENT_CONFIG = DiffusionConfig(hidden=512, depth=4, batch_size=256, lr=1e-3)
"""The course's recipe (:func:`course_lib.recipes.train_mnist_diffusion`): flow matching on
the codes of chapter 7's VAE, with a 4 x 512 MLP."""


def diffusion_config(
    config: DiffusionConfig | dict | None = None, base: DiffusionConfig = DIFFUSION_CONFIG,
) -> DiffusionConfig:
    """``base`` with ``config``'s changes (a :class:`DiffusionConfig` is used as it is)."""
    cfg = config if isinstance(config, DiffusionConfig) else make_config(DiffusionConfig, base, **dict(config or {}))
    if cfg.kind not in ("flow", "ddpm"):
        raise ValueError(f"kind={cfg.kind!r}: choose 'flow' or 'ddpm'")
    return cfg


class PointNet(nn.Module):
    """An MLP ``net(x (B, d), t (B,), labels (B,) | None)`` for points and latent codes: the
    time's sinusoidal features (plus, with ``n_classes``, a learned label embedding; label
    ``n_classes`` is "no class") are concatenated to the input (chapter 14)."""

    def __init__(self, dim: int = 2, hidden: int = 256, depth: int = 4, emb_dim: int = 64, n_classes: int = 0):
        super().__init__()
        layers: list[nn.Module] = []
        d = dim + emb_dim
        for _ in range(depth):
            layers += [nn.Linear(d, hidden), nn.SiLU()]
            d = hidden
        self.net, self.emb_dim, self.n_classes = nn.Sequential(*layers, nn.Linear(d, dim)), emb_dim, n_classes
        self.label = nn.Embedding(n_classes + 1, emb_dim) if n_classes else None

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        e = timestep_embedding(t, self.emb_dim)  # (B, emb_dim)
        if self.label is not None:
            if labels is None:
                labels = torch.full((len(x),), self.n_classes, dtype=torch.long, device=x.device)
            e = e + self.label(labels)
        elif labels is not None:
            raise ValueError("labels given to a PointNet built with n_classes=0")
        return self.net(torch.cat([x, e], dim=1))


class DiffusionModel(nn.Module):
    """A trained diffusion or flow-matching model: ``sample(n)`` draws ``(n, *shape)``.

    Images come back in [0, 1] (the network works in [-1, 1]); points in their own units.
    ``net`` is the (EMA) network, ``config`` its :class:`DiffusionConfig`.
    """

    def __init__(self, net: nn.Module, config: DiffusionConfig, shape: tuple[int, ...], n_classes: int = 0):
        super().__init__()
        self.net, self.config, self.shape, self.n_classes = net, config, tuple(shape), n_classes
        self.images = len(self.shape) == 3
        self.clip = 1.0 if self.images else None  # DDPM's x0 prediction clipped to [-1, 1] for images
        self.schedule = D.schedule(config.schedule, config.T) if config.kind == "ddpm" else None
        self.history: dict = {}

    def sample(self, n: int, steps: int | None = None, generator: torch.Generator | None = None,
               labels: torch.Tensor | None = None, guidance: float = 0.0, sampler: str | None = None,
               batch: int = 500) -> torch.Tensor:
        """``n`` samples in ``steps`` steps (default ``config.sample_steps``). Flow: ``sampler``
        ``"heun"`` (default, 2 network calls a step) or ``"euler"``; DDPM: ``"ddim"`` (default,
        η = 0) or ``"ddpm"`` (ancestral on the respaced chain). ``labels (n,)`` and ``guidance``
        w: classifier-free guidance for a class-conditional model."""
        steps = steps or self.config.sample_steps
        if labels is not None and self.n_classes == 0:
            raise ValueError("labels given to an unconditional model")
        net = D.guided(self.net, self.n_classes, guidance) if labels is not None else self.net
        device = next(self.net.parameters()).device
        prec = precision(self.config.bf16, device)
        out = []
        was = self.net.training
        self.net.eval()
        for i in range(0, n, batch):
            m = min(batch, n - i)
            lab = None if labels is None else labels[i : i + m].to(device)
            with torch.no_grad(), torch.autocast(device.type, dtype=prec.dtype or torch.bfloat16,
                                                 enabled=prec.dtype is not None):
                if self.config.kind == "flow":
                    x0 = torch.randn((m, *self.shape), generator=generator).to(device)
                    fn = {"heun": D.heun_sample, "euler": D.euler_sample}[sampler or "heun"]
                    x = fn(net, x0, steps, lab)
                elif (sampler or "ddim") == "ddim":
                    x = D.ddim_sample(net, (m, *self.shape), self.schedule, steps, 0.0, generator, lab, device,
                                      clip=self.clip)
                elif sampler == "ddpm":
                    x = D.ddpm_sample(net, (m, *self.shape), D.respace(self.schedule, steps), generator, lab,
                                      device=device, clip=self.clip)
                else:
                    raise ValueError(f"sampler={sampler!r}: choose 'ddim' or 'ddpm' for a DDPM")
            out.append(x.float())
        self.net.train(was)
        x = torch.cat(out)
        return ((x + 1) / 2).clamp(0, 1) if self.images else x

    @torch.no_grad()
    def inpaint(self, y: torch.Tensor, mask: torch.Tensor, steps: int = 50, resample: int = 5,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Fill the pixels of images ``y`` in [0, 1] where ``mask`` is 0 with RePaint
        (:func:`course_lib.diffusion.repaint`) on the chain respaced to ``steps``; a DDPM only."""
        if self.schedule is None:
            raise ValueError("RePaint needs a DDPM (config kind='ddpm')")
        out = D.repaint(self.net, self.from_data(y), mask, D.respace(self.schedule, steps), resample, generator,
                        clip=self.clip)
        return self.to_data(out).clamp(0, 1) if self.images else out

    @torch.no_grad()
    def edit(self, guide: torch.Tensor, strength: float, steps: int = 20,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """SDEdit (:func:`course_lib.diffusion.sdedit`) of ``guide`` in data units; a DDPM only."""
        if self.schedule is None:
            raise ValueError("SDEdit here needs a DDPM (config kind='ddpm')")
        out = D.sdedit(self.net, self.from_data(guide), strength, self.schedule, steps, generator, clip=self.clip)
        return self.to_data(out).clamp(0, 1) if self.images else out

    def to_data(self, x: torch.Tensor) -> torch.Tensor:
        """Model units -> data units ([-1, 1] -> [0, 1] for images)."""
        return (x + 1) / 2 if self.images else x

    def from_data(self, x: torch.Tensor) -> torch.Tensor:
        """Data units -> the network's units."""
        return 2 * x - 1 if self.images else x


def build_model(config: DiffusionConfig, shape: tuple[int, ...], n_classes: int = 0) -> DiffusionModel:
    """The untrained :class:`DiffusionModel` of ``config`` for data of ``shape``: a
    :class:`course_lib.blocks.TimeUNet` for images ``(C, H, W)``, a :class:`PointNet` for points."""
    if len(shape) == 3:
        net: nn.Module = TimeUNet(shape[0], shape[0], config.channels, config.blocks, config.emb_dim, n_classes)
    elif len(shape) == 1:
        net = PointNet(shape[0], config.hidden, config.depth, n_classes=n_classes)
    else:
        raise ValueError(f"data of shape {shape}: give images (C, H, W) or points (d,)")
    return DiffusionModel(net, config, shape, n_classes)


def train_diffusion(
    data: torch.Tensor, seconds: float | None = None, seed: int = 0, *, steps: int | None = None,
    labels: torch.Tensor | None = None, n_classes: int = 0, config: DiffusionConfig | dict | None = None,
    checkpoint: str | os.PathLike | None = None, shipped: str | None = None, device=None,
    desc: str = "diffusion",
) -> DiffusionModel:
    """Train a flow-matching (``config.kind="flow"``) or DDPM (``"ddpm"``) model on ``data``:
    images ``(N, C, H, W)`` in [0, 1] or points ``(N, d)`` (chapter 14).

    Adam with a warm-up and a cosine decay over the budget (``steps``, reproducible, or
    ``seconds``), batches of ``config.batch_size``, the loss :func:`course_lib.diffusion.fm_loss`
    or :func:`course_lib.diffusion.eps_loss`, bf16 autocast where it is fast, and an EMA of the
    weights, which is the network returned (in a :class:`DiffusionModel`, with ``.history``).
    With ``labels`` and ``n_classes``, a class-conditional model; a fraction ``p_uncond`` of the
    labels is replaced by the "no class" label so the same network serves classifier-free
    guidance. ``checkpoint`` and ``shipped`` as in :class:`course_lib.train.Run`.
    """
    validate_budget(steps=steps, seconds=seconds)
    cfg = diffusion_config(config)
    if data.ndim == 4 and (data.min() < 0 or data.max() > 1):
        raise ValueError(f"images must be in [0, 1], got [{float(data.min()):.3g}, {float(data.max()):.3g}]")
    if (labels is None) != (n_classes == 0):
        raise ValueError("give labels and n_classes together (or neither)")
    torch.manual_seed(seed)
    model = build_model(cfg, tuple(data.shape[1:]), n_classes)
    net = model.net if device is None else model.net.to(device)
    x = model.from_data(data)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    ema = EMA(net, cfg.ema)
    gen = torch.Generator().manual_seed(seed)
    prec = precision(cfg.bf16, device or "cpu")
    run = Run({"net": net}, {"opt": opt}, ema={"net": ema}, generators={"noise": gen},
              config={**cfg.__dict__, "shape": list(data.shape[1:]), "n_classes": n_classes}, seed=seed,
              path=checkpoint, shipped=shipped, save_every=30.0)
    run.resume()
    sched = model.schedule

    def step(batch):
        frac = max(run.step / steps if steps else 0.0, run.elapsed / seconds if seconds else 0.0)
        for group in opt.param_groups:
            group["lr"] = cosine_lr(frac, cfg.lr, cfg.warmup)
        x1 = batch[0]
        lab = None
        if n_classes:
            drop = torch.rand(len(x1), generator=gen) < cfg.p_uncond
            lab = torch.where(drop, torch.full_like(batch[1], n_classes), batch[1]).to(x1.device)
        with torch.autocast(x1.device.type, dtype=prec.dtype or torch.bfloat16, enabled=prec.dtype is not None):
            if cfg.kind == "flow":
                loss = D.fm_loss(net, x1, gen, lab)
            else:
                loss = D.eps_loss(net, x1, sched, gen, lab)
        optimizer_step(loss.float(), opt)
        ema.update(run.step)
        return {"loss": loss.item()}

    tensors = (x,) if labels is None else (x, labels)
    net.train()
    run.fit(step, tensors, cfg.batch_size, steps=steps, seconds=seconds, desc=desc, device=device)
    trained = DiffusionModel(ema.module, cfg, model.shape, n_classes)
    trained.history, trained.run = run.history, run
    return trained.eval()


class LatentDiffusion(nn.Module):
    """A flow (or DDPM) on the codes of a VAE (Rombach et al., 2022, "latent diffusion", with
    chapter 7's VAE as the autoencoder): ``sample(n)`` draws codes with ``flow``, undoes the
    codes' standardisation and decodes them to ``(n, C, H, W)`` images in [0, 1]."""

    def __init__(self, vae: nn.Module, flow: DiffusionModel, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.vae, self.flow = vae.eval(), flow.eval()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.history: dict = {}

    @torch.no_grad()
    def sample(self, n: int, steps: int | None = None, generator: torch.Generator | None = None,
               labels: torch.Tensor | None = None, guidance: float = 0.0, sampler: str | None = None) -> torch.Tensor:
        z = self.flow.sample(n, steps, generator, labels, guidance, sampler)  # (n, z_dim), standardised
        return self.vae.decode_mean(z * self.std + self.mean)


@torch.no_grad()
def latent_codes(vae: nn.Module, images: torch.Tensor, shifts: int = 4, seed: int = 0) -> torch.Tensor:
    """The posterior means of ``images`` and of ``shifts`` copies shifted by up to one pixel
    (:func:`course_lib.data.random_shift`): ``((1 + shifts) N, z_dim)``."""
    from .data import random_shift

    gen = torch.Generator().manual_seed(seed)
    copies = [images] + [random_shift(images, 1, gen) for _ in range(shifts)]
    return torch.cat([torch.cat([vae.encode(c[i : i + 1000])[0] for i in range(0, len(c), 1000)]) for c in copies])
