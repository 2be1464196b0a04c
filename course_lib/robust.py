"""Adversarial training, and a defence that only masks gradients (chapter 10).

Adversarial training solves Madry et al.'s saddle-point problem

.. math:: \\min_\\theta\\; \\mathbb E_{(x, y)}\\Big[\\max_{\\|\\delta\\|_\\infty \\le \\epsilon}
          \\mathcal L(f_\\theta(x + \\delta), y)\\Big]

by approximating the inner maximum with an attack on every minibatch. The three classic ways,
each a loss function of a minibatch here:

* :func:`pgd_loss`: the inner maximum by PGD with a random start (Madry et al., 2018);
* :func:`fgsm_rs_loss`: one FGSM step from a random start, α = 1.25ε (Wong et al., 2020), about
  ``steps`` times cheaper, and liable to *catastrophic overfitting*, which chapter 10 shows
  and which :class:`RobustConfig`'s ``monitor`` shows (``early_stop`` is Wong et al.'s remedy);
* :func:`trades_loss`: the clean cross-entropy plus β times the KL divergence between the
  predictions at x and at the worst x' for that KL (Zhang et al., 2019).

:func:`train_robust` trains any of them on the shared loop (:class:`course_lib.train.Run`:
exact resume, shipped weights). :class:`Quantize` is the chapter's gradient-masking
"defence", and its ``bpda`` switch the attack that sees through it (Athalye et al., 2018).
"""

from __future__ import annotations

import functools
import json
import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import attacks
from .config import make_config
from .optim import optimizer_step
from .train import Run, validate_budget
from .utils import bf16_is_fast, seed_everything

METHODS = ("natural", "pgd", "fgsm_rs", "trades")


# --- the models ----------------------------------------------------------------------------


class Normalize(nn.Module):
    """``(x - mean) / std`` as the model's first layer, so that the model takes [0, 1] images and
    every attack measures ε in pixel units (chapter 10: why normalisation lives in the model)."""

    def __init__(self, mean: float = 0.1307, std: float = 0.3081):
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def robust_cnn(channels: tuple[int, int] = (32, 64), hidden: int = 256) -> nn.Sequential:
    """The classifier of chapter 10: (B, 1, 28, 28) in [0, 1] -> logits (B, 10).

    Madry et al.'s MNIST network made smaller for a CPU (3x3 instead of 5x5 kernels, a hidden
    layer of 256 instead of 1,024 units): two conv + max-pool stages and an MLP head.
    """
    c1, c2 = channels
    return nn.Sequential(
        Normalize(),
        nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, c1, 14, 14)
        nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, c2, 7, 7)
        nn.Flatten(), nn.Linear(c2 * 49, hidden), nn.ReLU(),  # (B, hidden)
        nn.Linear(hidden, 10),  # (B, 10)
    )


def robust_mlp(hidden: int = 1024, depth: int = 2) -> nn.Sequential:
    """A fully connected classifier, (B, 1, 28, 28) in [0, 1] -> logits (B, 10): ``depth``
    hidden layers of ``hidden`` ReLU units, standardisation inside."""
    layers: list[nn.Module] = [Normalize(), nn.Flatten()]
    width = 784
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    return nn.Sequential(*layers, nn.Linear(width, 10))


def robust_model(cfg: RobustConfig) -> nn.Sequential:
    """The untrained network of a :class:`RobustConfig`."""
    if cfg.arch == "cnn":
        return robust_cnn(tuple(cfg.channels), cfg.hidden)
    if cfg.arch == "mlp":
        return robust_mlp(cfg.hidden, cfg.depth)
    raise ValueError(f"arch={cfg.arch!r}: use 'cnn' or 'mlp'")


class _RoundSTE(torch.autograd.Function):
    """Round in the forward pass; pass the gradient through unchanged (the BPDA of a rounding)."""

    @staticmethod
    def forward(ctx, x):  # noqa: D102
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        return grad


class Quantize(nn.Module):
    """A gradient-masking "defence": quantise the input to ``levels`` grey levels, then classify.

    Rounding is flat almost everywhere, so the input gradient is zero: FGSM and PGD, which
    follow it, do not move, and the model *looks* robust. It is not: ``bpda=True`` replaces the
    rounding's derivative by the identity's in the backward pass (Backward Pass Differentiable
    Approximation, Athalye et al., 2018), and the same attacks then succeed. The forward pass is
    the same in both modes.
    """

    def __init__(self, model: nn.Module, levels: int = 2, bpda: bool = False):
        super().__init__()
        if levels < 2:
            raise ValueError(f"levels must be >= 2, got {levels}")
        self.model, self.levels, self.bpda = model, levels, bpda

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scaled = x * (self.levels - 1)
        q = _RoundSTE.apply(scaled) if self.bpda else torch.round(scaled)
        return self.model(q / (self.levels - 1))


# --- the training losses -------------------------------------------------------------------


def pgd_loss(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, alpha: float, steps: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Madry et al.'s adversarial loss: the cross-entropy at PGD's examples (random start).

    .. math:: \mathcal L(f_\theta(x^*), y), \quad x^* = \mathrm{PGD}_{\epsilon,\alpha}^{\,steps}(x)
    """
    adv = attacks.pgd(model, x, y, eps, alpha, steps, generator=generator)
    return F.cross_entropy(model(adv), y)


def fgsm_rs_examples(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, alpha: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""FGSM from a random start (Wong et al., 2020, algorithm 3):

    .. math:: \delta_0 \sim U[-\epsilon, \epsilon]^d,\quad
              \delta = \Pi_{\epsilon}\big(\delta_0 + \alpha\,\mathrm{sign}\nabla_x
              \mathcal L(f(x + \delta_0), y)\big)

    (and x + δ clamped to [0, 1]). Wong et al. take α = 1.25ε.
    """
    return attacks.pgd(model, x, y, eps, alpha, 1, random_start=True, generator=generator)


def trades_loss(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, alpha: float, steps: int,
    beta: float = 6.0, generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""TRADES (Zhang et al., 2019, eq. 5):

    .. math:: \mathcal L(f(x), y) + \beta\, \max_{\|x' - x\|_\infty \le \epsilon}
              \mathrm{KL}\big(p(\cdot \mid x) \,\|\, p(\cdot \mid x')\big)

    with the inner maximum by PGD on the KL from x + 0.001·N(0, I), as in the paper's code.
    """
    with torch.no_grad():
        p_clean = F.softmax(model(x), dim=1)  # the fixed target of the inner maximisation

    def kl(logits: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return F.kl_div(F.log_softmax(logits, dim=1), p, reduction="none").sum(1)  # (B,)

    noise = torch.randn(x.shape, generator=generator).to(x)
    adv = attacks.pgd(model, x, p_clean, eps, alpha, steps, random_start=False, loss=kl,
                      init=x + 0.001 * noise, generator=generator)
    logits = model(x)
    robust = F.kl_div(F.log_softmax(model(adv), dim=1), F.softmax(logits, dim=1), reduction="batchmean")
    return F.cross_entropy(logits, y) + beta * robust


# --- training ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RobustConfig:
    """The settings of an adversarially trained MNIST classifier (chapter 10)."""

    method: str = "pgd"  # one of METHODS
    eps: float = 0.3  # the l-inf radius trained against
    steps: int = 10  # attack steps per training batch (pgd, trades)
    alpha: float = 0.0  # attack step size; 0: 2.5 eps / steps (Madry et al.), 1.25 eps for fgsm_rs
    beta: float = 6.0  # TRADES's weight of the robust term
    eps_warmup: float = 0.2  # fraction of the budget over which eps ramps up from 0
    lr: float = 1e-3  # Adam's peak learning rate (linear warm-up, then linear decay to 0)
    lr_warmup: float = 0.05
    batch_size: int = 100
    arch: str = "cnn"  # "cnn": robust_cnn(channels, hidden); "mlp": robust_mlp(hidden, depth)
    channels: tuple[int, int] = (32, 64)
    hidden: int = 256
    depth: int = 2  # hidden layers of the MLP
    max_shift: int = 0  # data augmentation: random whole-pixel shifts
    affine: bool = False  # data augmentation: features.random_affine (rotation, zoom, shift)
    monitor: int = 0  # training digits held out to record PGD-10 accuracy on, 50 times a run
    early_stop: bool = False  # stop at the best monitored weights once that accuracy collapses
    bf16: str | bool = "auto"  # bfloat16 autocast for the attacks and training where it is fast


CHAPTER_RUNS: dict[str, dict] = {
    "natural": {"method": "natural"},
    "pgd": {"method": "pgd"},
    "fgsm_rs": {"method": "fgsm_rs", "monitor": 200},
    "pgd2": {"method": "pgd", "steps": 2, "monitor": 200},
    "trades": {"method": "trades"},
}
"""Chapter 10's comparison runs (changes to :class:`RobustConfig`'s defaults), by name; their
shipped weights are ``ch10_<name>``. The course's recipe is ``recipes.train_robust_mnist``."""


def robust_config(config: RobustConfig | dict | None = None, base: RobustConfig | None = None) -> RobustConfig:
    """``base`` (default :class:`RobustConfig`'s defaults) with ``config``'s changes."""
    if isinstance(config, RobustConfig):
        return config
    cfg = make_config(RobustConfig, base or RobustConfig(), **dict(config or {}))
    if cfg.method not in METHODS:
        raise ValueError(f"method={cfg.method!r}: choose one of {METHODS}")
    return cfg


def _alpha(cfg: RobustConfig, eps: float) -> float:
    if cfg.alpha:
        return cfg.alpha * eps / cfg.eps  # the step keeps its ratio to eps during the warm-up
    return 1.25 * eps if cfg.method == "fgsm_rs" else 2.5 * eps / max(cfg.steps, 1)


def _ramp(frac: float, warmup: float) -> float:
    return 1.0 if warmup <= 0 else min(1.0, frac / warmup)


def train_robust(
    seconds: float | None = None, seed: int = 0, *, steps: int | None = None,
    config: RobustConfig | dict | None = None, images: torch.Tensor | None = None,
    labels: torch.Tensor | None = None, checkpoint: str | os.PathLike | None = None,
    shipped: str | None = None, desc: str | None = None,
) -> nn.Sequential:
    """Train :func:`robust_cnn` with ``config.method`` and return it in eval mode (chapter 10).

    Adam with a linear warm-up and a linear decay of the learning rate to zero over the budget;
    ε ramps linearly from 0 to ``config.eps`` over ``eps_warmup`` of the budget (a large ε from
    the first step keeps the network from learning anything). Budgets are for the whole run:
    with ``steps`` the schedules follow the step count (a run killed and resumed ends with the
    same weights); with ``seconds`` alone they follow the training time.

    ``monitor=n`` holds ``n`` training digits out and records PGD-10 accuracy at ``eps`` on them
    50 times over the run (``history["monitor"]``, at the steps ``history["monitor_step"]``);
    the time it takes is not counted in the budget. With ``early_stop`` the run ends when that
    accuracy falls below half its best after 30 % of the budget, and the weights of the best
    check are put back: Wong et al.'s guard against catastrophic overfitting of ``fgsm_rs``.
    The model carries ``.history`` and ``.run``.
    """
    from .data import load_mnist, random_shift
    from .features import random_affine

    validate_budget(steps=steps, seconds=seconds)
    cfg = robust_config(config)
    if cfg.early_stop and not cfg.monitor:
        raise ValueError("early_stop needs monitor > 0: the held-out digits it watches")
    seed_everything(seed)
    if images is None:
        train = load_mnist("train")
        images, labels = train.data, train.targets
    if labels is None or len(labels) != len(images):
        raise ValueError("give labels (N,) with the images (N, 1, 28, 28)")
    held = None
    if cfg.monitor:  # digits kept out of training, to watch robust accuracy on
        if not 0 < cfg.monitor < len(images) // 2:
            raise ValueError(f"monitor={cfg.monitor} must be between 0 and half of the {len(images)} digits")
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed + 1))
        held = images[order[: cfg.monitor]], labels[order[: cfg.monitor]]
        images, labels = images[order[cfg.monitor :]], labels[order[cfg.monitor :]]
    model = robust_model(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    attack_gen = torch.Generator().manual_seed(seed)
    run = Run({"model": model}, {"opt": opt}, generators={"attack": attack_gen}, config=cfg, seed=seed,
              path=checkpoint, save_every=10.0, shipped=shipped)
    run.resume()
    use_bf16 = bf16_is_fast("cpu") if cfg.bf16 == "auto" else bool(cfg.bf16)

    def frac() -> float:
        return run.step / steps if steps is not None else run.elapsed / seconds

    def step(batch):
        x, y = batch  # (B, 1, 28, 28), (B,)
        t = frac()
        if cfg.max_shift:
            x = random_shift(x, cfg.max_shift, attack_gen)
        if cfg.affine:
            x = random_affine(x, attack_gen).clamp(0, 1)
        eps = cfg.eps * _ramp(t, cfg.eps_warmup)
        lr = cfg.lr * min(_ramp(t, cfg.lr_warmup), max(0.0, (1 - t) / (1 - cfg.lr_warmup)))
        for group in opt.param_groups:
            group["lr"] = lr
        with torch.autocast("cpu", dtype=torch.bfloat16) if use_bf16 else nullcontext():
            if cfg.method == "natural":
                loss = F.cross_entropy(model(x), y)
            elif cfg.method == "pgd":
                loss = pgd_loss(model, x, y, eps, _alpha(cfg, eps), cfg.steps, attack_gen)
            elif cfg.method == "fgsm_rs":
                adv = fgsm_rs_examples(model, x, y, eps, _alpha(cfg, eps), attack_gen)
                loss = F.cross_entropy(model(adv), y)
            else:
                loss = trades_loss(model, x, y, eps, _alpha(cfg, eps), cfg.steps, cfg.beta, attack_gen)
        optimizer_step(loss.float(), opt)
        return {"loss": float(loss.detach()), "eps": eps, "lr": lr}

    best: dict[str, torch.Tensor] = {}  # the best monitored weights (not checkpointed: a resumed
    # run starts looking for its best again)

    def watch(i: int, history) -> None:
        checks = run.extra.setdefault("monitor", {"step": [], "acc": []})
        if frac() < len(checks["acc"]) / 50:
            return
        acc = attacks.robust_accuracy(model, *held, functools.partial(
            attacks.pgd, eps=cfg.eps, alpha=cfg.eps / 4, steps=10, generator=torch.Generator().manual_seed(0)))
        checks["step"].append(run.step)
        checks["acc"].append(acc)
        if acc >= max(checks["acc"]) or not best:
            best.update({k: v.detach().clone() for k, v in model.state_dict().items()})
        if cfg.early_stop and frac() > 0.3 and acc < 0.5 * max(checks["acc"]):
            model.load_state_dict(best)
            run.extra["stopped_at"] = run.step
            run.stop()

    model.train()
    try:
        if not run.extra.get("stopped_at"):  # an early-stopped run is finished
            run.fit(step, (images, labels), cfg.batch_size, steps=steps, seconds=seconds,
                    desc=desc or f"robust {cfg.method}", callback=watch if held is not None else None,
                    callback_every=10)
    finally:
        model.eval()
    checks = run.extra.get("monitor", {"step": [], "acc": []})
    model.history = {**run.history, "monitor": list(checks["acc"]), "monitor_step": list(checks["step"])}
    model.run = run
    return model


BENCHMARK = Path(__file__).resolve().parent / "assets" / "bench" / "robust.json"
"""The results ``benchmarks/bench_robust.py --save`` writes, which chapter 10 prints."""


def benchmark_table(path: str | os.PathLike = BENCHMARK) -> str:
    """The saved benchmark as a Markdown table with its machine line ('' if nothing is saved)."""
    path = Path(path)
    if not path.is_file():
        return ""
    saved = json.loads(path.read_text())
    rows = ["| method | seconds | steps | clean | PGD-40 | AutoAttack |", "|---|---|---|---|---|---|"]
    for key, r in sorted(saved["runs"].items(), key=lambda kv: (float(kv[0].rsplit("/", 1)[1]), kv[0])):
        method, seconds = key.rsplit("/", 1)
        aa = f"{r['autoattack']:.1%}" if "autoattack" in r else "-"
        rows.append(f"| {method} | {seconds} | {r['steps']} | {r['clean']:.1%} | {r['pgd40']:.1%} | {aa} |")
    meta = saved.get("meta", {})
    return "\n".join(rows) + f"\n\n{meta.get('test digits', '?')} test digits, eps {meta.get('eps')}; {meta.get('machine', '')}"
