"""Checks for the exercises of chapter 7 (VAEs on MNIST): the ELBO loss, the IWAE estimate, the PixelCNN mask."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..distributions import gaussian_kl, log_bernoulli, log_mean_exp
from ..vae_nets import causal_mask
from . import call_answer, passed, reproduces, require


def vae_loss_inputs(seed: int = 0) -> tuple[torch.Tensor, ...]:
    """``(x, logits, mu, logvar)`` for grading a VAE loss: grey pixels in [0, 1], logits that include
    confident ones (|logit| from 30 to 100, where ``sigmoid`` rounds to 0 or 1 in float32), and
    ``logits``, ``mu``, ``logvar`` that require gradients. Shapes (6, 1, 28, 28) and (6, 5)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(6, 1, 28, 28, generator=g)  # grey pixels in [0, 1]
    logits = 2 * torch.randn(6, 1, 28, 28, generator=g)
    confident = torch.rand(6, 1, 28, 28, generator=g) < 0.1  # a trained decoder is sure of the background
    sign = torch.where(torch.rand(6, 1, 28, 28, generator=g) < 0.5, -1.0, 1.0)
    logits = torch.where(confident, sign * (30 + 70 * torch.rand(6, 1, 28, 28, generator=g)), logits)
    mu, logvar = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    return x, logits.requires_grad_(True), mu.requires_grad_(True), logvar.requires_grad_(True)


def require_loss_like(out: torch.Tensor, ref: torch.Tensor, inputs: dict[str, torch.Tensor]) -> None:
    """The learner's scalar loss must carry the reference's gradient w.r.t. every tensor in ``inputs``."""
    require(out.requires_grad, "the loss carries no gradient: did you call .item(), .detach() or "
            "torch.tensor(...) on it? Training needs the graph.")
    got = torch.autograd.grad(out, list(inputs.values()), retain_graph=True, allow_unused=True)
    want = torch.autograd.grad(ref, list(inputs.values()), retain_graph=True)
    for (name, _), a, r in zip(inputs.items(), got, want):
        require(a is not None and bool(torch.isfinite(a).all()) and torch.allclose(a, r, rtol=1e-4, atol=1e-6),
                f"the gradient with respect to {name} is wrong (detached, or computed through an unstable "
                f"sigmoid-then-log).")


@reproduces(gaussian_kl, log_bernoulli)
def check_negative_elbo(negative_elbo: Callable) -> None:
    r"""``negative_elbo(x, logits, mu, logvar)`` must return the batch mean of
    :math:`-\log p(x\mid z) + \mathrm{KL}(q\,\|\,p)`, each summed over pixels / latent dimensions,
    with the right gradients, also for confident logits."""
    x, logits, mu, logvar = vae_loss_inputs()
    out = call_answer(negative_elbo, x, logits, mu, logvar)
    require(isinstance(out, torch.Tensor), f"return a tensor, got {type(out).__name__}.")
    require(out.numel() == 1, f"return one number (the mean over the batch), got shape {tuple(out.shape)}.")
    out = out.reshape(())
    rec = -log_bernoulli(x, logits, dim=(1, 2, 3))  # (6,)
    kl = gaussian_kl(mu, logvar, dim=1)  # (6,)
    ref = (rec + kl).mean()
    with torch.no_grad():
        bce_mean = F.binary_cross_entropy_with_logits(logits, x)  # averaged over pixels AND images
        sigmoid_bce = F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="none").sum((1, 2, 3))
        wrong = {
            "the reconstruction term is averaged over pixels (F.binary_cross_entropy's default "
            "reduction='mean'): sum over the 784 pixels, or the KL dominates by a factor 784":
                bce_mean + kl.mean(),
            "the KL has the wrong sign: the loss is -log p(x|z) PLUS KL(q || p)": (rec - kl).mean(),
            "the KL is averaged over latent dimensions; sum it": (rec + kl / mu.shape[1]).mean(),
            "you returned the sum over the batch; the task asks for the mean per image": (rec + kl).sum(),
            "the KL is missing": rec.mean(),
            "binary_cross_entropy(sigmoid(logits), x) is unstable: for |logits| > 17 sigmoid rounds to "
            "0 or 1 and torch clamps log(0) to -100; use F.binary_cross_entropy_with_logits":
                (sigmoid_bce + kl).mean(),
        }
        for message, value in wrong.items():
            require(not torch.allclose(out, value, rtol=1e-4), message + ".")
        require(bool(torch.isfinite(out)), "the loss is not finite: compute it from the logits "
                "(F.binary_cross_entropy_with_logits), never log(sigmoid(...)).")
        require(torch.allclose(out, ref, rtol=1e-4), f"expected {ref.item():.3f} nats, got {out.item():.3f}.")
    require_loss_like(out, ref, {"logits": logits, "mu": mu, "logvar": logvar})
    passed("the negative ELBO (summed over pixels, averaged over images) matches course_lib, gradients too.")


@reproduces(log_mean_exp)
def check_iwae_estimate(iwae_estimate: Callable) -> None:
    r"""``iwae_estimate(log_w)`` with ``log_w`` of shape ``(k, B)`` must return
    :math:`\log\frac1k\sum_i e^{\log w_i}` per column, ``(B,)``, without overflow or underflow."""
    g = torch.Generator().manual_seed(0)
    # log-weights of poorly modelled images sit far below -745, where exp underflows even in float64
    log_w = torch.randn(50, 4, generator=g) * 3 - torch.tensor([800.0, 870.0, 930.0, 1000.0])
    out = call_answer(iwae_estimate, log_w)
    require(isinstance(out, torch.Tensor), f"return a tensor, got {type(out).__name__}.")
    require(out.shape == (4,), f"expected one value per example, shape (4,), got {tuple(out.shape)}.")
    require(bool(torch.isfinite(out).all()), "the result is not finite: exp(-800) underflows to 0, even in "
            "float64. Subtract the maximum before exponentiating (torch.logsumexp does).")
    out = out.double()
    lw = log_w.double()
    ref = log_mean_exp(lw, dim=0)
    require(not torch.allclose(out, lw.mean(0), atol=1e-3),
            "you averaged the log-weights: that is the ELBO (k = 1 bound), not the IWAE bound.")
    require(not torch.allclose(out, torch.logsumexp(lw, 0), atol=1e-3),
            f"logsumexp is log of the SUM; subtract log k = {math.log(50):.3f} to get the mean.")
    require(not torch.allclose(out, lw.max(0).values, atol=1e-3), "the maximum log-weight is not the estimate.")
    require(torch.allclose(out, ref, atol=1e-3), "the estimate differs from log mean exp over the k samples.")
    require(bool((out >= lw.mean(0) - 1e-3).all()), "the IWAE estimate must be >= the mean log-weight (Jensen).")
    passed("log-mean-exp over k importance weights, computed stably.")


@reproduces(causal_mask)
def check_causal_mask(pixelcnn_mask: Callable) -> None:
    r"""``pixelcnn_mask(kernel, mask_type)`` must return the ``(kernel, kernel)`` 0/1 mask of a
    PixelCNN convolution: rows above the centre, the centre row left of the centre, and the centre
    itself for type ``"B"`` only (:func:`course_lib.vae.causal_mask`)."""
    for kernel in (3, 5, 7):
        for kind in ("A", "B"):
            out = call_answer(pixelcnn_mask, kernel, kind)
            require(isinstance(out, torch.Tensor), f"return a tensor, got {type(out).__name__}.")
            require(out.shape == (kernel, kernel),
                    f"a {kernel}x{kernel} kernel needs a ({kernel}, {kernel}) mask, got {tuple(out.shape)}.")
            out = out.float()
            require(bool(((out == 0) | (out == 1)).all()), "the mask holds 0s and 1s only.")
            ref = causal_mask(kernel, kind)
            c = kernel // 2
            other = causal_mask(kernel, "B" if kind == "A" else "A")
            require(not torch.equal(out, ref.T),
                    "you masked columns, not rows: raster order reads each row left to right, top to bottom.")
            require(not torch.equal(out, other),
                    "types A and B are swapped: type A (the first layer) hides the centre pixel, the one "
                    "it predicts; type B (the layers after it) lets the centre through." if kind == "A" else
                    "type B lets the centre through: after the first layer, the centre holds features of "
                    "the pixels before it, not the pixel itself.")
            require(not bool(out[c + 1:].any()),
                    "the rows below the centre come later in raster order: zero them, or each pixel "
                    "is predicted from pixels not yet generated.")
            require(not bool(out[c, c + 1:].any()),
                    "the pixels right of the centre in its row come after it: zero them.")
            require(bool(out[:c].all()), "keep every row above the centre: those pixels come before it.")
            require(bool(out[c, :c].all()),
                    "keep the pixels left of the centre in its row: they come before it, and are the "
                    "nearest neighbours the decoder can see.")
            require(torch.equal(out, ref), f"the type-{kind} mask for kernel {kernel} differs from the reference.")
    passed("the PixelCNN masks of types A and B for kernels 3, 5 and 7.")
