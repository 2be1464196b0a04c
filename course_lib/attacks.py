"""Adversarial examples: FGSM, PGD and robust accuracy (chapter 10).

Conventions, each for a reason the chapter gives:

* the model takes images in [0, 1] and returns logits; any normalisation lives *inside* the
  model, so the attack's ε-ball and the clamp to [0, 1] are in pixel units (an attack on the
  normalised input measures ε in the wrong units and can leave the valid image range);
* every adversarial image is clamped to [0, 1];
* attacks run with the model in eval mode and leave its mode and its parameters' gradients as
  they found them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .validate import check_images

Attack = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy (B,): the loss the attacks raise unless told otherwise."""
    return F.cross_entropy(logits, y, reduction="none")


def _loss_grad(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: Loss = cross_entropy
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample ``loss(model(x), y)`` (B,) and its gradient with respect to ``x`` (not the weights)."""
    x = x.detach().requires_grad_(True)
    value = loss(model(x), y)  # (B,)
    (grad,) = torch.autograd.grad(value.sum(), x)
    return value.detach(), grad


def _check(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, labels: bool = True) -> None:
    check_images(x, "x")
    if labels and (y.shape != (len(x),) or y.dtype != torch.long):
        raise ValueError(f"y must be (B,) int64 labels for x of {len(x)} images; got {tuple(y.shape)} {y.dtype}")
    if not labels and len(y) != len(x):
        raise ValueError(f"y must have one target per image: {len(y)} targets for {len(x)} images")
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps}")


class _EvalMode:
    def __init__(self, model: nn.Module):
        self.model, self.was = model, model.training

    def __enter__(self):
        self.model.eval()

    def __exit__(self, *exc):
        self.model.train(self.was)


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    r"""The fast gradient sign method (Goodfellow et al., 2015, eq. 3; chapter 10).

    .. math:: x' = \operatorname{clip}_{[0,1]}\big(x + \epsilon\,\operatorname{sign}\nabla_x
              \mathcal L(f(x), y)\big)

    the maximiser of the loss's linearisation over the :math:`\ell_\infty` ball of radius ε.
    """
    _check(model, x, y, eps)
    with _EvalMode(model):
        _, grad = _loss_grad(model, x, y)
    return (x + eps * grad.sign()).clamp(0, 1).detach()


def _project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Project perturbations ``delta (B, ...)`` onto the ε-ball of ``norm``, one per sample."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    n = delta.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (delta.ndim - 1))  # (B, 1, ...)
    return delta * (eps / n).clamp(max=1.0)


def pgd(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, alpha: float, steps: int, *,
    random_start: bool = True, restarts: int = 1, norm: str = "linf", targeted: bool = False,
    generator: torch.Generator | None = None, loss: Loss | None = None, init: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Projected gradient descent on the loss (Madry et al., 2018, eq. 2; chapter 10).

    .. math:: x^{t+1} = \Pi_{x + S}\big(x^t + \alpha\, s(\nabla_x \mathcal L(f(x^t), y))\big)

    with :math:`S` the ε-ball of ``norm`` and :math:`s` the sign (``"linf"``) or the
    per-sample unit vector (``"l2"``): steepest ascent for that norm; every iterate is clamped
    to [0, 1]. ``random_start`` draws :math:`x^0` uniformly in the ℓ∞ ball (or in the ℓ2 ball);
    with ``restarts > 1`` each sample keeps a restart that fools the model if any does (a wrong
    class; with ``targeted=True``, the target), and among those the highest loss, as Madry et
    al. count an image as broken when any restart breaks it. ``targeted=True``: ``y`` are the
    targets, and the loss is *descended*.

    ``loss(model(x), y)`` (per sample, (B,)) replaces the cross-entropy to attack anything
    else: TRADES's KL term (:func:`course_lib.robust.trades_loss`), or the distance of a VAE
    encoder's mean to a target code (chapter 10); ``y`` is then any per-sample target.
    ``init`` (B, ...) is the starting point instead of ``x`` or a random start (projected
    onto the ball and the image range first); it makes every restart the same, so it takes
    ``restarts=1``.
    """
    _check(model, x, y, eps, labels=loss is None)
    if init is not None and restarts != 1:
        raise ValueError("init= fixes the starting point: every restart would be the same; use restarts=1")
    classify = loss is None  # "fooled" is defined for the cross-entropy on labels only
    loss = cross_entropy if loss is None else loss
    if norm not in ("linf", "l2"):
        raise ValueError(f"norm={norm!r}: use 'linf' or 'l2'")
    if steps < 0 or restarts < 1 or not alpha >= 0:
        raise ValueError(f"need steps >= 0, restarts >= 1, alpha >= 0; got {steps}, {restarts}, {alpha}")
    sign = -1.0 if targeted else 1.0
    best = x.clone()
    best_loss = torch.full((len(x),), -torch.inf, device=x.device, dtype=x.dtype)
    best_fooled = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    with _EvalMode(model):
        for _ in range(restarts):
            delta = torch.zeros_like(x)
            if random_start:
                if norm == "linf":
                    delta = (torch.rand(x.shape, generator=generator) * 2 - 1).to(x) * eps
                else:
                    d = torch.randn(x.shape, generator=generator).to(x)
                    r = torch.rand(len(x), generator=generator).to(x) ** (1 / x[0].numel())
                    delta = d / d.flatten(1).norm(dim=1).view(-1, *[1] * (x.ndim - 1)) * (eps * r).view(
                        -1, *[1] * (x.ndim - 1))
            if init is not None:
                delta = _project(init.detach().to(x) - x, eps, norm)
            adv = (x + delta).clamp(0, 1)
            for _ in range(steps):
                _, grad = _loss_grad(model, adv, y, loss)
                if norm == "linf":
                    step = grad.sign()
                else:
                    step = grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (x.ndim - 1))
                adv = (x + _project(adv + sign * alpha * step - x, eps, norm)).clamp(0, 1).detach()
            with torch.no_grad():
                out = model(adv)
                value = (sign * loss(out, y)).to(best_loss.dtype)  # (B,)
                fooled = ((out.argmax(1) == y) if targeted else (out.argmax(1) != y)) if classify else best_fooled
            better = (fooled & ~best_fooled) | ((fooled == best_fooled) & (value > best_loss))
            best[better], best_loss[better], best_fooled[better] = adv[better], value[better], fooled[better]
    return best.detach()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` on images ``x`` in [0, 1] with labels ``y`` (eval mode)."""
    with _EvalMode(model):
        right = sum(int((model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
                    for i in range(0, len(x), batch_size))
    return right / len(x)


def robust_accuracy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: Attack, batch_size: int = 500,
) -> float:
    """Accuracy on ``attack(model, x, y)`` (chapter 10): the fraction of images still classified
    right after the attack. ``attack`` is e.g. ``functools.partial(pgd, eps=0.3, alpha=0.01,
    steps=40)``."""
    advs = [attack(model, x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return accuracy(model, torch.cat(advs), y, batch_size)


def accuracy_curve(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: Callable[..., torch.Tensor],
    eps_values: list[float], batch_size: int = 500, **kwargs,
) -> list[float]:
    """Robust accuracy at each ε of ``eps_values``: ``attack(model, x, y, eps=ε, **kwargs)``
    (for PGD pass ``alpha`` and ``steps``, or a function of ε as ``alpha=lambda eps: eps / 4``)."""
    out = []
    for eps in eps_values:
        kw = {k: (v(eps) if callable(v) else v) for k, v in kwargs.items()}
        out.append(robust_accuracy(model, x, y, functools.partial(attack, eps=eps, **kw), batch_size))
    return out


def autoattack(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, norm: str = "linf",
    version: str = "standard", seed: int = 0, batch_size: int = 500,
) -> torch.Tensor:
    """AutoAttack (Croce & Hein, 2020) as ``torchattacks`` implements it (chapter 10).

    The ``"standard"`` version runs APGD-CE, APGD-T (9 target classes), FAB-T and Square (5,000
    queries) one after the other, each on the images the previous ones left classified right:
    the parameter-free ensemble that robustness claims are measured with. ``torchattacks`` is
    a dependency of the course's development install (``make venv``); it is the reference the
    course's own attacks are tested against.
    """
    _check(model, x, y, eps)
    try:
        import torchattacks
    except ImportError as err:  # pragma: no cover - make venv installs it
        raise ImportError(
            "AutoAttack comes from torchattacks: pip install --no-deps 'torchattacks==3.5.1' "
            "(its metadata pins an old requests that the course does not need)"
        ) from err
    norms = {"linf": "Linf", "l2": "L2"}
    if norm not in norms:
        raise ValueError(f"norm={norm!r}: use 'linf' or 'l2'")
    # torchattacks reseeds torch's global generator: fork it, so the caller's stream goes on untouched
    with _EvalMode(model), torch.random.fork_rng(devices=[]):
        attack = torchattacks.AutoAttack(model, norm=norms[norm], eps=eps, version=version,
                                         n_classes=_n_classes(model, x), seed=seed)
        advs = [attack(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return torch.cat(advs).clamp(0, 1).detach()


@torch.no_grad()
def _n_classes(model: nn.Module, x: torch.Tensor) -> int:
    return int(model(x[:1]).shape[1])
