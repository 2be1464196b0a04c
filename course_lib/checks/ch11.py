"""Checks for the exercises of chapter 11 (image restoration): the PSNR, the residual-learning
loss of a denoiser, and the data step of half-quadratic splitting for inpainting.

Each check compares the learner's function with a reference computed in float64 on small
deterministic inputs (seeded generators, the global RNG untouched): batches whose images have
very different noise levels, so that averaging the PSNR over images differs from pooling their
errors; a small float64 CNN whose loss is compared in value and in gradient; masks whose
unobserved pixels hold values that are not observations. When the answer matches a classic
mistake, the message names it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import denoisers, restoration
from . import CheckFailed, call_answer, passed, reproduces, require

_RTOL = 1e-6  # float64 inputs: a correct answer agrees to rounding (an answer in float32 too)
_ATOL = 1e-6


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(gen: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
    """float64 images in [0, 1] of ``shape``."""
    return torch.rand(shape, generator=gen, dtype=torch.float64)


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_RTOL, abs_tol=1e-9)


def _first_mistake(got: float, ref: float, mistakes: list[tuple[float, str]]) -> None:
    """Raise the message of the first classic mistake whose value ``got`` equals."""
    for value, message in mistakes:
        if not _same(value, ref):  # a mistake that gives the right answer here cannot be told apart
            require(not _same(got, value), message)


# --- PSNR ------------------------------------------------------------------------------------


def _psnr_cases() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(x, x_hat): (B, 1, H, W) float64 in [0, 1], each image of a batch at its own noise level
    (from 0.005 to 0.3), so that the mean of the per-image PSNRs is far from the PSNR of the
    pooled error. The estimates are clipped to [0, 1], as any image is."""
    out = []
    for seed, (b, h, w), sigmas in (
        (0, (4, 8, 8), (0.01, 0.3, 0.03, 0.1)),
        (1, (3, 6, 10), (0.2, 0.005, 0.05)),
        (2, (2, 12, 12), (0.02, 0.15)),
    ):
        gen = _generator(1100 + seed)
        x = _images(gen, (b, 1, h, w))
        noise = torch.randn(x.shape, generator=gen, dtype=torch.float64)
        sigma = torch.tensor(sigmas, dtype=torch.float64).view(-1, 1, 1, 1)
        out.append((x, (x + sigma * noise).clamp(0, 1)))
    return out


def _psnr_reference(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB, (B,), for images in [0, 1]: 10 log10(1 / MSE_i)."""
    mse = (x - x_hat).square().mean(dim=(1, 2, 3))
    return 10 * torch.log10(1 / mse)


def _psnr_number(out: Any, name: str, per_image: torch.Tensor) -> float:
    """The answer as a float, after checking None, type and shape."""
    require(out is not None, f"{name} returned None: did you forget `return`?")
    if torch.is_tensor(out):
        arr = out.detach().double().cpu().numpy()
    else:
        try:
            arr = np.asarray(out, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise CheckFailed(f"{name} returned {type(out).__name__}, not a number: {err}") from err
    b = len(per_image)
    if arr.size == b and b > 1:
        values = torch.from_numpy(arr.reshape(-1).copy())
        close = torch.allclose(values, per_image, rtol=_RTOL, atol=1e-9)
        raise CheckFailed(
            f"{name} returns {b} values, one per image{' (the right ones)' if close else ''}: it must "
            "return one number, the mean over the images of their PSNRs, "
            "mean_i 10·log10(1 / MSE_i)."
        )
    require(arr.size == 1,
            f"{name} must return one number (a float or a 0-d tensor), the mean PSNR of the batch in "
            f"dB; got an array of shape {arr.shape}.")
    value = float(arr.reshape(()))
    require(math.isfinite(value), f"{name} returned {value}: with an error that is never zero, the "
            "PSNR is finite. Is the MSE a mean of squared differences?")
    return value


@reproduces(restoration.psnr)
def check_psnr(fn: Callable) -> None:
    r"""``fn(x, x_hat)`` must return the mean over images of
    :math:`\mathrm{PSNR}_i = 10 \log_{10}(1 / \mathrm{MSE}_i)` in dB, where
    :math:`\mathrm{MSE}_i` is the mean squared error of image :math:`i` of the (B, 1, H, W) batches
    in [0, 1] (a float, a numpy scalar or a 0-d tensor).

    Reference: :func:`course_lib.restoration.psnr` (scikit-image's ``peak_signal_noise_ratio`` per
    image, averaged), computed here by the formula in float64, on batches whose images have noise
    levels from 0.005 to 0.3 so that pooling matters, with estimates inside [0, 1]. Rejects: a data
    range of 255 (10·log10(255²/MSE), 48.13 dB too high); the squared errors pooled over the whole
    batch before the log; 20·log10(1/MSE); 10·log10(1/RMSE) (the square missing); the natural log
    instead of log10; the per-image values instead of their mean; the negative sign
    (10·log10(MSE)); the MSE computed as a sum instead of a mean; ``None``; the wrong shape;
    inputs changed in place.
    """
    name = "psnr"
    for x, x_hat in _psnr_cases():
        x_in, hat_in = x.clone(), x_hat.clone()
        out = call_answer(fn, x_in, hat_in)
        require(torch.equal(x_in, x) and torch.equal(hat_in, x_hat),
                f"{name} changes its inputs in place: compute the error in a new tensor, the caller "
                "still needs the images.")
        per_image = _psnr_reference(x, x_hat)
        got = _psnr_number(out, name, per_image)
        ref = float(per_image.mean())
        if _same(got, ref):
            continue
        se = (x - x_hat).square()
        pooled = float(10 * torch.log10(1 / se.mean()))
        pixels = x[0].numel()
        _first_mistake(got, ref, [
            (ref + 20 * math.log10(255), f"Your PSNR is {got - ref:.2f} dB too high: you used a data "
             "range of 255, 10·log10(255²/MSE), the peak of 8-bit images. These images are in "
             "[0, 1]: the peak is 1, and PSNR = 10·log10(1/MSE)."),
            (pooled, "You pooled the squared errors of the whole batch before the log (one MSE over "
             "all pixels of all images): PSNR is computed per image, 10·log10(1/MSE_i), and then "
             "averaged over the images. Pooling lets the noisiest image dominate."),
            (2 * ref, "You took 20·log10(1/MSE): the factor 20 goes with the RMSE, 20·log10(1/RMSE), "
             "and the factor 10 with the MSE, 10·log10(1/MSE). Your dB are doubled."),
            (ref / 2, "You took 10·log10(1/RMSE): the square is missing. PSNR is "
             "10·log10(peak²/MSE) = 20·log10(peak/RMSE); your dB are halved."),
            (ref * math.log(10), "You used the natural log: decibels use log10, "
             "PSNR = 10·log10(1/MSE) (torch.log10 or math.log10, not torch.log)."),
            (-ref, "Your PSNR has the negative sign, 10·log10(MSE): a smaller error must give a "
             "higher PSNR. PSNR = 10·log10(1/MSE) = -10·log10(MSE)."),
            (ref - 10 * math.log10(pixels), "Your MSE is a sum of squared errors instead of a mean: "
             "divide by the number of pixels (use .mean(), not .sum())."),
            (float(10 * torch.log10(1 / se.sum())), "Your MSE is a sum of squared errors instead of a "
             "mean, pooled over the whole batch: average them, per image, MSE_i = mean of image i's "
             "squared errors."),
        ])
        raise CheckFailed(
            f"{name} returns {got:.4f} dB; the mean over the {len(x)} images of 10·log10(1/MSE_i) is "
            f"{ref:.4f} dB (per image: {', '.join(f'{v:.2f}' for v in per_image.tolist())})."
        )
    passed("PSNR: the mean over images of 10·log10(1 / MSE_i), with MSE_i the mean squared error "
           "of image i")


# --- the residual-learning loss --------------------------------------------------------------


def _small_net(seed: int) -> nn.Module:
    """A float64 conv net (B, 1, H, W) -> (B, 1, H, W) with weights from a seeded generator."""
    gen = _generator(seed)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 1, 3, padding=1))
    net = net.double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.4)
    return net


def _loss_cases() -> list[tuple[nn.Module, torch.Tensor, torch.Tensor]]:
    """(net, x, y): clean float64 images in [0, 1] and y = x + σ n, not clipped."""
    out = []
    for seed, (b, h, w), sigma in ((0, (4, 6, 6), 0.1), (1, (3, 5, 7), 0.3), (2, (2, 8, 8), 0.05)):
        gen = _generator(1200 + seed)
        x = _images(gen, (b, 1, h, w))
        y = x + sigma * torch.randn(x.shape, generator=gen, dtype=torch.float64)
        out.append((_small_net(1210 + seed), x, y))
    return out


@reproduces(denoisers.residual_loss)
def check_residual_loss(fn: Callable) -> None:
    r"""``fn(net, x, y)`` must return the residual-learning loss of a denoiser that predicts the
    noise, :math:`\mathrm{mean}\big((\mathrm{net}(y) - (y - x))^2\big)`, a 0-d tensor in the graph,
    where ``x`` is the clean batch and ``y = x + noise`` the noisy one.

    Reference: DnCNN's loss (Zhang et al., 2017, "Beyond a Gaussian denoiser";
    :class:`course_lib.denoisers.DnCNN`), in value and in gradient with respect to the weights of
    small seeded float64 CNNs. The denoised image compared with ``x``,
    :math:`\mathrm{mean}((y - \mathrm{net}(y) - x)^2)`, is the same loss and is accepted. Rejects:
    predicting the image, :math:`\mathrm{mean}((\mathrm{net}(y) - x)^2)`; the residual's sign,
    :math:`x - y`; ``net(x)`` instead of ``net(y)``; a sum instead of a mean; the L1 loss; a
    detached result (``.item()``, ``.detach()``, ``torch.no_grad()``); an answer that calls
    ``backward()`` itself; a result that is not a scalar; ``None``; inputs changed in place.
    """
    name = "residual_loss"
    for net, x, y in _loss_cases():
        for p in net.parameters():  # an answer may call backward() and leave gradients behind
            p.grad = None
        params = list(net.parameters())
        x_in, y_in = x.clone(), y.clone()
        out = call_answer(fn, net, x_in, y_in)
        require(torch.equal(x_in, x) and torch.equal(y_in, y),
                f"{name} changes x or y in place: compute the residual in a new tensor (y - x).")
        require(out is not None, f"{name} returned None: did you forget `return`?")
        require(torch.is_tensor(out),
                f"{name} returned a {type(out).__name__}, not a tensor: .item() or float(...) takes "
                "the loss out of the graph, and the loss must stay in the graph (a 0-d tensor) so "
                "that loss.backward() can train the network.")
        if out.numel() != 1:
            hint = (" (the squared error of each pixel: take their mean)"
                    if tuple(out.shape) == tuple(x.shape) else "")
            raise CheckFailed(f"{name} must return a scalar, a 0-d tensor (the mean over all pixels of "
                              f"all images); got shape {tuple(out.shape)}{hint}.")
        require(out.requires_grad,
                f"{name} returns a tensor detached from the graph (.detach(), torch.no_grad(), or "
                "torch.tensor(...)): the loss must stay in the graph, or loss.backward() cannot "
                "reach the network's weights.")
        got = float(out.detach())
        require(math.isfinite(got), f"{name} returned {got}.")
        ref = (net(y) - (y - x)).square().mean()
        ref_value = float(ref.detach())
        with torch.no_grad():
            pred, pred_clean = net(y), net(x)
            noise = y - x
            _first_mistake(got, ref_value, [
                (float((pred - x).square().mean()), "Your loss compares net(y) with the clean image x: "
                 "in residual learning (DnCNN) the network predicts the noise, so its target is the "
                 "residual y - x (and the denoised image is y - net(y))."),
                (float((pred + noise).square().mean()), "Your residual has the wrong sign: y = x + "
                 "noise, so the noise the network predicts is y - x, not x - y."),
                (float((pred_clean - noise).square().mean()), "You fed the clean image x to the "
                 "network: it must predict the noise from the noisy y, net(y) (at test time there "
                 "is no clean x)."),
                (float((pred - noise).square().sum()), "Your loss is a sum of squared errors instead "
                 "of a mean: use .mean() (or F.mse_loss), so the loss does not scale with the batch "
                 "and image size."),
                (float((pred - noise).square().sum() / len(x)), "Your loss sums the squared errors "
                 "over each image's pixels: take the mean over the pixels too."),
                (float((pred - noise).abs().mean()), "You used the L1 loss (mean absolute error); "
                 "the exercise asks for the mean squared error, whose minimiser is the MMSE "
                 "denoiser."),
            ])
        require(_same(got, ref_value),
                f"{name} returns {got:.6g}; the reference mean((net(y) - (y - x))²) is "
                f"{ref_value:.6g}.")
        try:
            grads = torch.autograd.grad(out, params, allow_unused=True)
        except RuntimeError:
            raise CheckFailed(
                f"{name} seems to call backward() on the loss (its graph is already freed). "
                "Return the loss; the training loop calls backward()."
            ) from None
        want = torch.autograd.grad(ref, params)
        for g, w in zip(grads, want, strict=True):
            require(g is not None,
                    f"no gradient of {name} reaches the network's weights: the loss must stay in the "
                    "graph, computed from net(y) with tensor operations.")
            require(torch.allclose(g.double(), w, rtol=1e-5, atol=1e-9),
                    f"{name} has the right value but the wrong gradient with respect to the network's "
                    "weights: did you detach part of it?")
    passed("residual loss: mean((net(y) - (y - x))²), the network predicting the noise, in the graph")


# --- the data step of half-quadratic splitting for inpainting --------------------------------


def _mask_cases() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]]:
    """(y, mask, z, alpha): float64; ``mask`` is 0/1 (one per image, or one (1, 1, H, W) for the
    batch), and ``y`` holds values in [0.5, 1.5] where the mask is 0 (not observations)."""
    out = []
    for seed, (b, h, w), shared, alpha in (
        (0, (3, 5, 6), False, 0.3),
        (1, (2, 4, 4), True, 2.5),
        (2, (2, 6, 6), False, 0.05),
    ):
        gen = _generator(1300 + seed)
        x = _images(gen, (b, 1, h, w))
        mask = (torch.rand((1 if shared else b, 1, h, w), generator=gen) < 0.5).double()
        mask.view(-1)[:2] = torch.tensor([0.0, 1.0], dtype=torch.float64)  # both kinds of pixel
        observed = x + 0.05 * torch.randn(x.shape, generator=gen, dtype=torch.float64)
        junk = 0.5 + _images(gen, x.shape)
        y = torch.where(mask == 1, observed, junk)
        z = _images(gen, x.shape)
        out.append((y, mask, z, alpha))
    return out


@reproduces(restoration.Mask.solve)
def check_mask_data_step(fn: Callable) -> None:
    r"""``fn(y, mask, z, alpha)`` must return the data step of half-quadratic splitting for
    inpainting, :math:`\arg\min_x \|m \odot x - y\|^2 + \alpha \|x - z\|^2
    = (m\,y + \alpha\,z) / (m + \alpha)`, elementwise, of ``y``'s shape.

    Reference: :meth:`course_lib.restoration.Mask.solve` (plug-and-play HQS, Zhang et al., 2021),
    computed here in float64, with masks per image and one shared by the batch, ``y`` holding
    values that are not observations where the mask is 0, and α from 0.05 to 2.5. Rejects:
    ignoring the mask, :math:`(y + \alpha z)/(1 + \alpha)`; hard replacement,
    :math:`m y + (1 - m) z` (the α → 0 limit); dividing by :math:`1 + \alpha` instead of
    :math:`m + \alpha`; ``y`` instead of :math:`m y` in the numerator (the unobserved values leak
    in); α on the wrong term, :math:`(\alpha m y + z)/(\alpha m + 1)`; inputs changed in place;
    ``None``; the wrong shape.
    """
    name = "mask_data_step"
    for y, mask, z, alpha in _mask_cases():
        y_in, m_in, z_in = y.clone(), mask.clone(), z.clone()
        out = call_answer(fn, y_in, m_in, z_in, alpha)
        require(torch.equal(y_in, y) and torch.equal(m_in, mask) and torch.equal(z_in, z),
                f"{name} changes y, mask or z in place: build the result as a new tensor, the next "
                "iteration of HQS still needs y and the mask.")
        require(out is not None, f"{name} returned None: did you forget `return`?")
        require(torch.is_tensor(out), f"{name} must return a tensor; got {type(out).__name__}")
        require(tuple(out.shape) == tuple(y.shape),
                f"{name} has shape {tuple(out.shape)}; it must return the new x, of y's shape "
                f"{tuple(y.shape)}.")
        got = out.detach().double()
        require(bool(torch.isfinite(got).all()), f"{name} returned NaN or infinite values.")
        ref = (mask * y + alpha * z) / (mask + alpha)
        if torch.allclose(got, ref, rtol=0, atol=_ATOL):
            continue
        mistakes = [
            ((y + alpha * z) / (1 + alpha), "Your data step ignores the mask: (y + alpha z) / "
             "(1 + alpha) is the denoising step (A = I). With A = diag(m), only the observed pixels "
             "(m = 1) pull x towards y: (m y + alpha z) / (m + alpha)."),
            (mask * y + (1 - mask) * z, "You did a hard replacement, m y + (1 - m) z: that is the "
             "alpha → 0 limit. The data step blends y and z where a pixel is observed: "
             "(m y + alpha z) / (m + alpha)."),
            ((mask * y + alpha * z) / (1 + alpha), "Your denominator is (1 + alpha) instead of "
             "(m + alpha): the unobserved pixels (m = 0) must come out as z, not shrunk to "
             "alpha z / (1 + alpha)."),
            ((y + alpha * z) / (mask + alpha), "Your numerator uses y instead of m y: the values of "
             "y where the mask is 0 are not observations, and they leak into x. Multiply y by the "
             "mask: (m y + alpha z) / (m + alpha)."),
            ((alpha * mask * y + z) / (alpha * mask + 1), "You put alpha on the wrong term: the "
             "objective is ||m x - y||² + alpha ||x - z||², so alpha weighs z: "
             "(m y + alpha z) / (m + alpha)."),
        ]
        for value, message in mistakes:
            if not torch.allclose(value, ref, rtol=0, atol=_ATOL):
                require(not torch.allclose(got, value, rtol=0, atol=_ATOL), message)
        wrong = (got - ref).abs() > _ATOL
        hole = (mask == 0).expand_as(ref)
        raise CheckFailed(
            f"{name} does not match (m y + alpha z) / (m + alpha) on {int(wrong.sum())} of "
            f"{wrong.numel()} pixels ({int((wrong & hole).sum())} of them unobserved; alpha = "
            f"{alpha}; largest difference {float((got - ref).abs().max()):.4f})."
        )
    passed("inpainting data step: (m y + alpha z) / (m + alpha), the unobserved pixels set to z")
