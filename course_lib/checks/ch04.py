"""Checks for the exercises of chapter 4 (DCGAN and conditional GAN): spherical interpolation."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..gan import interpolate_latents
from . import CheckFailed, call_answer, passed, reproduces, require


@reproduces(interpolate_latents)
def check_slerp(fn: Callable) -> None:
    r"""``fn(z0, z1, n)`` must return ``n`` codes ``(n, d)`` on the great circle from ``z0`` to ``z1``.

    Reference: :func:`course_lib.gan.interpolate_latents` (``spherical=True``),
    :math:`\frac{\sin((1-t)\Omega)}{\sin\Omega} z_0 + \frac{\sin(t\Omega)}{\sin\Omega} z_1`,
    :math:`\cos\Omega = \hat z_0 \cdot \hat z_1`, for ``t = linspace(0, 1, n)``.
    """
    name = "slerp"
    g = torch.Generator().manual_seed(4)
    for d, n in ((100, 7), (16, 2), (3, 11)):
        z0, z1 = torch.randn(d, generator=g), torch.randn(d, generator=g)
        got = call_answer(fn, z0.clone(), z1.clone(), n)
        require(got is not None, f"{name} returned None: did you forget `return`?")
        require(torch.is_tensor(got), f"{name} must return a tensor, got {type(got).__name__}")
        require(tuple(got.shape) == (n, d), f"{name}(z0, z1, n={n}) must have shape ({n}, {d}), got {tuple(got.shape)}")
        ref = interpolate_latents(z0, z1, n)
        if torch.allclose(got, ref, atol=1e-4):
            continue
        t = torch.linspace(0, 1, n)[:, None]
        require(bool(torch.isfinite(got).all()), f"{name} returned nan or inf: normalise z0 and z1 before "
                "arccos (cos Ω = z0·z1 / (|z0| |z1|) must lie in [-1, 1]).")
        omega = torch.arccos((z0 / z0.norm()) @ (z1 / z1.norm()))
        raw = torch.arccos((z0 @ z1).clamp(-1, 1))  # the angle without normalising
        line = (1 - t) * z0 + t * z1
        nlerp = line / line.norm(dim=1, keepdim=True) * ((1 - t) * z0.norm() + t * z1.norm())
        mistakes = [
            (nlerp, "That is the straight line rescaled to the interpolated norm (nlerp): the norms are "
             "right, but the codes do not follow the great circle at constant speed. Use the "
             "sin((1-t)Ω)/sin Ω and sin(tΩ)/sin Ω weights."),
            (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1, "You forgot to divide by sin Ω: "
             "the weights are sin((1-t)Ω)/sin Ω and sin(tΩ)/sin Ω."),
            ((torch.sin((1 - t) * raw) * z0 + torch.sin(t * raw) * z1) / torch.sin(raw), "Your angle is "
             "arccos(z0·z1): divide the dot product by |z0| |z1| first, cos Ω = z0·z1 / (|z0| |z1|)."),
            ((1 - t) * z0 + t * z1, "That is the straight line (lerp). Its middle codes have a smaller norm "
             "than typical Gaussian codes; use the spherical interpolation with sin((1-t)Ω)/sin Ω weights."),
            (interpolate_latents(z0 / z0.norm(), z1 / z1.norm(), n), "You interpolated the unit vectors: "
             "slerp keeps z0 and z1 themselves (not normalised) as the endpoints."),
            (interpolate_latents(z0, z1, n + 1)[:-1], "Your path stops before z1: t must run over "
             "linspace(0, 1, n), both ends included."),
        ]
        for value, message in mistakes:
            require(not (value.shape == got.shape and torch.allclose(got, value, atol=1e-4)), message)
        require(torch.allclose(got[0], z0, atol=1e-4) and torch.allclose(got[-1], z1, atol=1e-4),
                f"{name} must start at z0 and end at z1.")
        raise CheckFailed(f"{name} does not follow the great circle from z0 to z1 (compare with the formula).")
    passed("spherical interpolation between latent codes")
