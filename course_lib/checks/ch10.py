"""Checks for the exercises of chapter 10 (adversarial examples): FGSM and one step of PGD.

Each check compares the learner's function with :mod:`course_lib.attacks` on small
deterministic float64 models (a linear classifier, and a small CNN whose first layer is
:class:`course_lib.robust.Normalize`, so that normalisation lives inside the model), on
images with pixels at 0 and 1 so that the clamp to [0, 1] matters, and names the classic
mistake when the answer matches one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .. import attacks
from ..robust import Normalize
from . import CheckFailed, call_answer, passed, reproduces, require

_MEAN, _STD = 0.1307, 0.3081  # MNIST's, as in course_lib.robust.Normalize
_ATOL = 1e-6  # float64 inputs: a correct answer agrees to rounding (an answer in float32 too)


# --- the test cases ------------------------------------------------------------------------


def _fill(model: nn.Module, seed: int, scale: float) -> nn.Module:
    """``model`` in float64 with weights drawn from a seeded generator (the global RNG untouched)."""
    gen = torch.Generator().manual_seed(seed)
    model = model.double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * scale)
    return model.eval()


def _linear(seed: int, side: int = 4, classes: int = 3) -> nn.Module:
    return _fill(nn.Sequential(nn.Flatten(), nn.Linear(side * side, classes)), seed, 0.6)


def _cnn(seed: int, side: int = 5, classes: int = 4) -> nn.Module:
    """Normalisation is the first layer: the model takes images in [0, 1]."""
    return _fill(nn.Sequential(Normalize(), nn.Conv2d(1, 3, 3, padding=1), nn.Tanh(), nn.Flatten(),
                               nn.Linear(3 * side * side, classes)), seed, 0.5)


def _images(seed: int, n: int, side: int) -> torch.Tensor:
    """(n, 1, side, side) float64 in [0, 1], about a sixth of the pixels exactly 0 and a sixth 1."""
    x = torch.rand((n, 1, side, side), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x[x < 0.15] = 0.0
    x[x > 0.85] = 1.0
    return x


def _labels(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Labels that differ from the model's predictions on every other image, so that an answer
    attacking the prediction instead of ``y`` gives another result."""
    with torch.no_grad():
        logits = model(x)
    pred = logits.argmax(1)
    y = pred.clone()
    k = logits.shape[1]
    y[::2] = (pred[::2] + 1 + torch.arange(len(y))[::2] // 2 % (k - 1)) % k  # never the prediction
    return y


def _cases() -> list[tuple[nn.Module, torch.Tensor, torch.Tensor, float]]:
    out = []
    for seed, make, side, eps in ((0, _linear, 4, 0.1), (1, _cnn, 5, 0.05), (2, _cnn, 5, 0.3), (3, _linear, 4, 0.25)):
        model = make(seed, side)
        x = _images(100 + seed, 8, side)
        out.append((model, x, _labels(model, x), eps))
    return out


# --- shared pieces -------------------------------------------------------------------------


def _zero_grads(model: nn.Module) -> None:
    """An answer may call ``loss.backward()`` and leave gradients in the weights: start clean."""
    for p in model.parameters():
        p.grad = None


def _grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor, transform=None) -> torch.Tensor:
    """d/dx of the summed cross-entropy of ``model(transform(x))`` (the input gradient only)."""
    x = x.detach().requires_grad_(True)
    inp = x if transform is None else transform(x)
    (g,) = torch.autograd.grad(F.cross_entropy(model(inp), y, reduction="sum"), x)
    return g


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return (x - _MEAN) / _STD


def _output(out, x: torch.Tensor, name: str, what: str) -> torch.Tensor:
    """The answer's tensor as float64, after checking None, type, shape and the graph."""
    require(out is not None, f"{name} returned None: did you forget `return`?")
    require(torch.is_tensor(out), f"{name} must return a tensor ({what}); got {type(out).__name__}")
    require(tuple(out.shape) == tuple(x.shape),
            f"{name} has shape {tuple(out.shape)}; it must return {what} of the input's shape "
            f"{tuple(x.shape)}, one adversarial image per input image.")
    require(not out.requires_grad,
            f"{name} returns a tensor that still requires grad (it is part of the autograd graph of "
            "the loss): return x_adv.detach(), or compute it under torch.no_grad(). An attached "
            "adversarial image keeps the whole graph alive and feeds gradients into the next step.")
    require(torch.isfinite(out).all(), f"{name} returned NaN or infinite values.")
    return out.detach().double()


def _close(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> bool:
    ok = (a - b).abs() <= _ATOL
    return bool(ok.all() if mask is None else ok[mask].all())


def _diagnose(name: str, got: torch.Tensor, ref: torch.Tensor, x: torch.Tensor, eps: float,
              mistakes: list[tuple[torch.Tensor, str]]) -> None:
    """Raise the message of the first classic mistake ``got`` equals, else a generic one."""
    for value, message in mistakes:
        if not _close(value, ref):  # a mistake that gives the right answer here cannot be told apart
            require(not _close(got, value), message)
    require(got.min() >= -_ATOL and got.max() <= 1 + _ATOL,
            f"{name} returns pixels outside [0, 1] (from {float(got.min()):.3f} to {float(got.max()):.3f}): "
            "an adversarial image must still be an image; clamp it with x_adv.clamp(0, 1).")
    dist = float((got - x).abs().max())
    require(dist <= eps + _ATOL,
            f"{name} moves a pixel by {dist:.4f}, more than eps = {eps}: the attack must stay in the "
            "ℓ∞ ball |x_adv - x| <= eps around the original image.")
    wrong = (got - ref).abs() > _ATOL
    raise CheckFailed(
        f"{name} does not match the reference on {int(wrong.sum())} of {wrong.numel()} pixels "
        f"(eps = {eps}; largest difference {float((got - ref).abs().max()):.4f})."
    )


# --- FGSM ----------------------------------------------------------------------------------


@reproduces(attacks.fgsm)
def check_fgsm(fn: Callable) -> None:
    r"""``fn(model, x, y, eps)`` must return :math:`\mathrm{clip}_{[0,1]}(x + \epsilon\,
    \mathrm{sign}\,\nabla_x \mathcal L(f(x), y))`, detached, of the shape of ``x``.

    Reference: :func:`course_lib.attacks.fgsm`, on a linear model and on a CNN whose first layer
    normalises, with images holding pixels at 0 and 1 and labels ``y`` that differ from the
    model's predictions on half the images. Rejects: no clamp to [0, 1]; the gradient's wrong
    sign (descending the loss); ε times the raw gradient instead of its sign; normalisation done
    outside the model (a step of ε in normalised units, ε·std in pixels; or normalised images fed
    to a model that normalises again; or the normalised image returned); attacking the model's
    prediction instead of the label ``y``; a result still attached to the graph; ``None``; the
    wrong shape; an answer that changes ``x`` in place.
    """
    name = "fgsm"
    for model, x, y, eps in _cases():
        _zero_grads(model)
        x_in = x.clone()
        out = call_answer(fn, model, x_in, y.clone(), eps)
        got = _output(out, x, name, "the adversarial images x_adv")
        require(torch.equal(x_in.detach(), x),
                f"{name} changes its input x in place: build x_adv as a new tensor (x + eps * ...), "
                "the caller still needs the clean images.")
        ref = attacks.fgsm(model, x, y, eps)
        g = _grad(model, x, y)
        decisive = g.abs() > 1e-10 * float(g.abs().max())  # where the gradient's sign is not rounding
        if _close(got, ref, decisive):
            continue
        with torch.no_grad():
            pred = model(x).argmax(1)
        g_pred = _grad(model, x, pred)
        g_twice = _grad(model, x, y, _normalise)
        mistakes = [
            (x + eps * g.sign(), "Your x_adv is not clamped to [0, 1]: x + eps * sign(grad) leaves the "
             "image range where a pixel is near 0 or 1. Return (x + eps * grad.sign()).clamp(0, 1)."),
            ((x - eps * g.sign()).clamp(0, 1), "Your answer descends the loss (x - eps * sign(grad)): it "
             "makes the model *more* confident in y. FGSM ascends: x + eps * sign(grad)."),
            ((x + eps * g).clamp(0, 1), "Your answer steps by eps times the raw gradient; FGSM steps by "
             "eps times its sign (the maximiser of the linearised loss over the ℓ∞ ball)."),
            ((x + eps * g / len(x)).clamp(0, 1), "Your answer steps by eps times the raw gradient (of the "
             "mean loss); FGSM steps by eps times its sign, grad.sign()."),
            ((x + eps * g_pred.sign()).clamp(0, 1), "Your answer attacks the model's predicted label "
             "(model(x).argmax(1)) instead of the true label y: where the prediction is already wrong "
             "it pushes towards the wrong class. Use the cross-entropy with y."),
            ((x + eps * _STD * g.sign()).clamp(0, 1), "Your perturbation is eps * 0.3081 per pixel: you "
             "normalised x outside the model, stepped by eps in normalised units and un-normalised. "
             "The model normalises itself; attack the [0, 1] image, so eps is in pixel units."),
            (x + eps * _STD * g.sign(), "Your perturbation is eps * 0.3081 per pixel and not clamped: you "
             "normalised x outside the model and stepped by eps in normalised units. The model "
             "normalises itself; attack the [0, 1] image and clamp it to [0, 1]."),
            ((x + eps * g_twice.sign()).clamp(0, 1), "Your gradient is taken at normalised images fed "
             "to a model that normalises again: the input is normalised twice. The model takes images "
             "in [0, 1]; do not normalise them yourself."),
            ((_normalise(x) + eps * g_twice.sign()).clamp(0, 1), "You return the *normalised* image "
             "(normalised outside a model that normalises again): the model takes images in [0, 1]; "
             "do not normalise them yourself."),
            (_normalise(x) + eps * g_twice.sign(), "You return the *normalised* image (normalised "
             "outside a model that normalises again): the model takes images in [0, 1]; do not "
             "normalise them yourself."),
        ]
        _diagnose(name, got, ref, x, eps, mistakes)
    passed("FGSM: x + eps * sign(grad of the loss at the label y), clamped to [0, 1], detached")


# --- one PGD step --------------------------------------------------------------------------


def _pgd_cases() -> list[tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor, float, float]]:
    """(model, x, x_adv, y, eps, alpha): x_adv in the ball and in [0, 1], many pixels on its edge."""
    out = []
    for seed, (model, x, y, eps) in enumerate(_cases()):
        gen = torch.Generator().manual_seed(200 + seed)
        u = torch.rand(x.shape, generator=gen, dtype=torch.float64)
        delta = torch.where(u < 0.35, -eps, torch.where(u < 0.7, eps, (u - 0.85) / 0.15 * eps))
        x_adv = (x + delta).clamp(0, 1)  # on the edge of the ball (or of [0, 1]) for 70% of pixels
        out.append((model, x, x_adv, y, eps, eps / 3 if seed % 2 else eps / 4))
    return out


def _project_clamp(x: torch.Tensor, z: torch.Tensor, eps: float) -> torch.Tensor:
    return (x + (z - x).clamp(-eps, eps)).clamp(0, 1)


@reproduces(attacks.pgd, attacks.fgsm)
def check_pgd_step(fn: Callable) -> None:
    r"""``fn(model, x, x_adv, y, eps, alpha)`` must return one step of ℓ∞ PGD from ``x_adv``:
    :math:`\mathrm{clip}_{[0,1]}\big(x + \mathrm{clip}_{[-\epsilon,\epsilon]}(x_{adv} + \alpha\,
    \mathrm{sign}\,\nabla \mathcal L(f(x_{adv}), y) - x)\big)`, detached.

    Reference: ``course_lib.attacks.pgd(model, x, y, eps, alpha, 1, random_start=False,
    init=x_adv)``, from starting points with most pixels on the edge of the ε-ball so that the
    projection matters, and pixels at 0 and 1 so that the clamp matters. Clamping to [0, 1]
    before the projection gives the same result (both are boxes that contain ``x``) and is
    accepted. Rejects: descending the loss; projecting onto the ℓ2 ball (rescaling δ to norm ε);
    projecting around ``x_adv`` or not projecting; projecting δ onto [0, ε]; clamping ``x_adv``
    itself to [-ε, ε] (forgetting to subtract ``x``); no clamp to [0, 1]; the gradient at ``x``
    instead of ``x_adv``; the step taken from ``x``; a step of ε instead of α; a result still
    attached to the graph; ``None``; the wrong shape; inputs changed in place.
    """
    name = "pgd_step"
    for model, x, x_adv, y, eps, alpha in _pgd_cases():
        _zero_grads(model)
        x_in, adv_in = x.clone(), x_adv.clone()
        out = call_answer(fn, model, x_in, adv_in, y.clone(), eps, alpha)
        got = _output(out, x, name, "the new x_adv")
        require(torch.equal(x_in.detach(), x) and torch.equal(adv_in.detach(), x_adv),
                f"{name} changes x or x_adv in place: return the new x_adv as a new tensor.")
        ref = attacks.pgd(model, x, y, eps, alpha, 1, random_start=False, init=x_adv)
        g = _grad(model, x_adv, y)
        decisive = g.abs() > 1e-10 * float(g.abs().max())
        if _close(got, ref, decisive):
            continue
        s = g.sign()
        z = x_adv + alpha * s
        d = z - x
        l2 = d * (eps / d.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp(max=1.0).view(-1, 1, 1, 1)
        mistakes = [
            (_project_clamp(x, x_adv - alpha * s, eps), "Your step descends the loss (x_adv - alpha * "
             "sign(grad)): PGD ascends it, x_adv + alpha * sign(grad)."),
            ((x + l2).clamp(0, 1), "You projected onto the ℓ2 ball (rescaling δ to norm eps); the ℓ∞ "
             "ball is a box: clamp each pixel of δ = x_adv - x to [-eps, eps]."),
            (z.clamp(0, 1), "You did not project back onto the ε-ball around the original x (projecting "
             "around x_adv is no projection at all): every step adds alpha, and the attack leaves "
             "the ball. Clamp δ = x_adv - x to [-eps, eps] with x the *original* image."),
            ((x + d.clamp(0, eps)).clamp(0, 1), "You projected δ onto [0, eps]: the ℓ∞ ball is "
             "[-eps, eps] in each pixel, the perturbation may darken pixels too (one-sided clamp)."),
            (z.clamp(-eps, eps).clamp(0, 1), "You clamped x_adv itself to [-eps, eps]: the projection "
             "clamps the perturbation δ = x_adv - x, then adds it back: x + (x_adv - x).clamp(-eps, eps)."),
            (x + d.clamp(-eps, eps), "Your new x_adv is not clamped to [0, 1]: after the projection, "
             "clamp it to the image range, (x + δ).clamp(0, 1)."),
            (_project_clamp(x, x_adv + alpha * _grad(model, x, y).sign(), eps), "You took the gradient "
             "at x; each PGD step takes it at the current x_adv, where the loss is now."),
            (_project_clamp(x, x + alpha * s, eps), "You stepped from x instead of from x_adv: PGD "
             "moves on from the current iterate, x_adv + alpha * sign(grad)."),
            (_project_clamp(x, x_adv + eps * s, eps), "Your step is eps instead of alpha: each PGD "
             "step moves by alpha (smaller than eps), and the projection keeps the sum within eps."),
        ]
        _diagnose(name, got, ref, x, eps, mistakes)
    passed("one PGD step: ascend alpha * sign(grad) at x_adv, project onto the ε-ball around x, "
           "clamp to [0, 1], detached")
