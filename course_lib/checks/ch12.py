"""Checks for the exercises of chapter 12 (translation, style and editing): CycleGAN's
cycle-consistency loss and the Gram matrix of a feature map.

Each check compares the learner's function with a reference on small seeded float64 inputs
(the global RNG untouched): two small invertible-but-not-inverse networks for the cycle loss,
whose wrong pairings give different values; feature maps of several batch sizes, channel counts
and sizes for the Gram matrix. When the answer matches a classic mistake, the message names it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from .. import style, translation
from . import CheckFailed, call_answer, passed, reproduces, require


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


# --- the cycle-consistency loss ---------------------------------------------------------------


def _cycle_cases() -> list[tuple[nn.Module, nn.Module, torch.Tensor, torch.Tensor]]:
    """(G, F, x, y): two seeded float64 convolutional networks that are not each other's inverse,
    and batches
    x (the source domain) and y (the target domain) of different content."""
    out = []
    for seed, (b, h, w) in ((0, (3, 4, 5)), (1, (2, 6, 6))):
        gen = _generator(1200 + seed)
        nets = []
        for _ in range(2):
            net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 1, 1), nn.Sigmoid()).double()
            for p in net.parameters():
                p.data = torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.7
            nets.append(net)
        x = torch.rand((b, 1, h, w), generator=gen, dtype=torch.float64)
        y = torch.rand((b, 1, h, w), generator=gen, dtype=torch.float64) ** 2
        out.append((nets[0], nets[1], x, y))
    return out


@reproduces(translation.cycle_consistency_loss)
def check_cycle_consistency_loss(fn: Callable) -> None:
    r"""``fn(G, F, x, y)`` must return CycleGAN's cycle-consistency loss
    :math:`\mathrm{mean}|F(G(x)) - x| + \mathrm{mean}|G(F(y)) - y|` (Zhu et al., 2017, eq. 2) for
    ``G``: X → Y, ``F``: Y → X, a batch ``x`` from X and ``y`` from Y, as a 0-d tensor in the graph.

    Reference: :func:`course_lib.translation.cycle_consistency_loss`, in value and in gradient
    with respect to both networks' weights. Rejects: the wrong pair (``|G(x) − y|``,
    ``|F(y) − x|``: images of different domains are not paired), one direction only, the maps
    composed in the wrong order (``G(F(x))``), squared instead of absolute errors, a sum instead
    of a mean, a detached result, ``None``, inputs changed in place.
    """
    name = "cycle_consistency_loss"
    for G, F_, x, y in _cycle_cases():
        params = list(G.parameters()) + list(F_.parameters())
        for p in params:
            p.grad = None
        x_in, y_in = x.clone(), y.clone()
        out = call_answer(fn, G, F_, x_in, y_in)
        require(torch.equal(x_in, x) and torch.equal(y_in, y), f"{name} changes x or y in place.")
        require(out is not None, f"{name} returned None: did you forget `return`?")
        require(torch.is_tensor(out), f"{name} returned a {type(out).__name__}, not a tensor: keep the "
                "loss in the graph (no .item() or float(...)) so that backward() can train G and F.")
        require(out.numel() == 1, f"{name} must return a scalar (0-d tensor); got shape {tuple(out.shape)}.")
        require(out.requires_grad, f"{name} returns a tensor detached from the graph: the loss must "
                "reach G's and F's weights.")
        got = float(out.detach())
        ref = translation.cycle_consistency_loss(G, F_, x, y)
        ref_value = float(ref.detach())
        with torch.no_grad():
            gx, fy = G(x), F_(y)
            fgx, gfy = F_(gx), G(fy)
            mistakes = [
                ((gx - y).abs().mean() + (fy - x).abs().mean(), "Your loss compares G(x) with y and "
                 "F(y) with x: x and y are *unpaired* images of two domains. The cycle loss compares "
                 "each image with itself after a round trip: F(G(x)) with x, G(F(y)) with y."),
                ((fgx - x).abs().mean(), "Your loss has only the forward cycle F(G(x)) ≈ x: add the "
                 "backward cycle G(F(y)) ≈ y."),
                ((gfy - y).abs().mean(), "Your loss has only the backward cycle G(F(y)) ≈ y: add the "
                 "forward cycle F(G(x)) ≈ x."),
                ((G(F_(x)) - x).abs().mean() + (F_(G(y)) - y).abs().mean(), "You composed the maps in "
                 "the wrong order: x comes from X, so G (X → Y) must be applied first: F(G(x))."),
                ((fgx - x).square().mean() + (gfy - y).square().mean(), "You used squared errors: "
                 "CycleGAN's cycle loss is the L1 norm (mean absolute error)."),
                ((fgx - x).abs().sum() + (gfy - y).abs().sum(), "Your loss sums the absolute errors: "
                 "take the mean, so the loss does not grow with the batch and image size."),
            ]
        for value, message in mistakes:
            if not _same(float(value), ref_value):
                require(not _same(got, float(value)), message)
        require(_same(got, ref_value), f"{name} returns {got:.6g}; the reference "
                f"mean|F(G(x)) − x| + mean|G(F(y)) − y| is {ref_value:.6g}.")
        grads = torch.autograd.grad(out, params, allow_unused=True)
        want = torch.autograd.grad(ref, params)
        for g, w in zip(grads, want, strict=True):
            require(g is not None, f"no gradient of {name} reaches one of the networks: compute it "
                    "from G(...) and F(...) with tensor operations.")
            require(torch.allclose(g.double(), w, rtol=1e-5, atol=1e-9), f"{name} has the right value "
                    "but the wrong gradient: did you detach G(x) or F(y)? Both maps learn from both "
                    "cycles.")
    passed("cycle-consistency loss: mean|F(G(x)) − x| + mean|G(F(y)) − y|, in the graph")


# --- the Gram matrix -------------------------------------------------------------------------


def _gram_cases() -> list[torch.Tensor]:
    """Feature maps (B, N, H, W) in float64: batches of 1 and 3, H ≠ W, N ≠ H·W."""
    out = []
    for seed, shape in ((1, (3, 2, 6, 3)), (0, (1, 3, 4, 5)), (2, (2, 5, 3, 3))):
        out.append(torch.randn(shape, generator=_generator(1250 + seed), dtype=torch.float64).relu())
    return out


@reproduces(style.gram_matrix)
def check_gram_matrix(fn: Callable) -> None:
    r"""``fn(features)`` must return the Gram matrices of a batch of feature maps (B, N, H, W):
    :math:`G_{bij} = \frac{1}{M}\sum_k F_{bik} F_{bjk}` with M = H·W positions, shape (B, N, N).

    Reference: :func:`course_lib.style.gram_matrix` (Gatys et al., 2015). Rejects: no
    normalisation (the raw sum, which grows with the image's size), normalising by N·H·W or by
    N (the channel count), the positions' Gram FᵀF (M×M) instead of the channels', mixing the
    images of a batch, ``None``, a detached result, features changed in place.
    """
    name = "gram_matrix"
    for f in _gram_cases():
        b, n, h, w = f.shape
        m = h * w
        f_in = f.clone().requires_grad_(True)
        out = call_answer(fn, f_in)
        require(out is not None, f"{name} returned None: did you forget `return`?")
        require(torch.is_tensor(out), f"{name} must return a tensor, got {type(out).__name__}.")
        require(torch.equal(f_in.detach(), f), f"{name} changes the features in place.")
        flat = f.reshape(b, n, m)
        raw = flat @ flat.transpose(1, 2)
        ref = raw / m
        if tuple(out.shape) == (b, m, m):
            raise CheckFailed(f"{name} returned (B, {m}, {m}) = (B, H·W, H·W): that is FᵀF, a Gram "
                              "matrix of the positions. Style is the correlation of the *channels*: "
                              "F Fᵀ, (B, N, N).")
        if tuple(out.shape) in ((n, n), (1, n, n)) and b > 1:
            raise CheckFailed(f"{name} returned one ({n}, {n}) matrix for a batch of {b}: it mixes the "
                              "images of the batch. Reshape to (B, N, H·W) and multiply per image "
                              "(torch.bmm or @ on 3-d tensors).")
        require(tuple(out.shape) == (b, n, n), f"{name} must return shape (B, N, N) = {(b, n, n)}, "
                f"got {tuple(out.shape)}.")
        got = out.detach().double()
        for wrong, message in (
            (raw, "Your Gram matrix is not normalised: divide by the number of positions M = H·W, "
                  "or it grows with the image's size and the style loss weights layers by their size."),
            (raw / (n * m), "You divided by N·H·W (channels × positions), as some tutorials do; this "
                            "chapter's Gram divides by the positions M = H·W only (the style loss's "
                            "1/(4N²) takes care of the channels)."),
            (raw / n, "You divided by the number of channels N: divide by the number of positions "
                      "M = H·W."),
        ):
            require(not torch.allclose(got, wrong, rtol=1e-6, atol=1e-12), message)
        require(torch.allclose(got, ref, rtol=1e-6, atol=1e-12),
                f"{name} does not match F Fᵀ / (H·W): max difference {float((got - ref).abs().max()):.3g}.")
        require(out.requires_grad, f"{name} returns a tensor detached from the graph: style transfer "
                "differentiates the Gram matrix with respect to the image.")
    passed("Gram matrix: F Fᵀ / (H·W) per image, (B, N, N)")
