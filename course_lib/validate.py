"""Input checks for images: the course's convention is float tensors (N, C, H, W) in [0, 1].

Every network that reads images in the course (the MNIST classifier, Inception-v3, the
metrics that take images with an extractor) was trained or calibrated on that range.
Images in 0..255 or in [-1, 1] run through such a network without any error and give
numbers that look plausible but are wrong (an FID of millions, or twice the true value),
so the entry points check the input first and say how to convert it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

RANGE_TOLERANCE = 1e-5  # rounding of interpolation or (x + 1) / 2 may overshoot [0, 1] by a few ulps


def _shape_hint(ndim: int) -> str:
    if ndim == 3:
        return " One image or a batch without a channel axis? Add it with x.unsqueeze(1) (grey) or x[None]."
    if ndim == 2:
        return " These look like flattened images or features (n, d): reshape images to (N, C, H, W)."
    return ""


def check_images(x: Any, name: str = "images", channels: int | Iterable[int] | None = None) -> torch.Tensor:
    """``x`` as a tensor after checking it is a batch of images (N, C, H, W) in [0, 1].

    Checks, in order: four dimensions, at least one image, ``channels`` (one count or several
    allowed ones), a floating dtype, finite values and the range [0, 1] (within
    :data:`RANGE_TOLERANCE`). A failed check raises :class:`ValueError` naming ``name``, what
    was found and the conversion that fixes it (``/ 255`` for 0..255, ``(x + 1) / 2`` for
    [-1, 1]). NumPy arrays are converted with ``torch.as_tensor``; a tensor is returned as
    given (same dtype, device and autograd graph), so checking costs no copy.
    """
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(np.asarray(x) if not isinstance(x, np.ndarray) else x)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"{name} must be a tensor or array of images (N, C, H, W); got {type(x).__name__} ({err})") from err
    if x.ndim != 4:
        raise ValueError(
            f"{name} must be images (N, C, H, W); got shape {tuple(x.shape)}.{_shape_hint(x.ndim)}"
        )
    if len(x) == 0:
        raise ValueError(f"{name}: no images (shape {tuple(x.shape)}); pass at least one image.")
    if channels is not None:
        allowed = (channels,) if isinstance(channels, int) else tuple(channels)
        if x.shape[1] not in allowed:
            want = " or ".join(str(c) for c in allowed)
            raise ValueError(
                f"{name} must have {want} channel(s) (N, {want}, H, W); got {x.shape[1]} in shape {tuple(x.shape)}. "
                "Channels come second: permute (N, H, W, C) images with x.permute(0, 3, 1, 2)."
            )
    return check_unit_range(x, name)


def check_unit_range(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """``x`` after checking it holds finite floats in [0, 1] (any shape): the data range of
    a Bernoulli likelihood on pixels, or of any image. Same errors as :func:`check_images`."""
    v = x.detach()
    if v.dtype == torch.bool:
        raise ValueError(f"{name} are bool; images must be floats in [0, 1]: convert with x.float().")
    if v.is_complex():
        raise ValueError(f"{name} are complex ({v.dtype}); images must be real floats in [0, 1].")
    if not v.is_floating_point():
        lo, hi = int(v.min()), int(v.max())
        found = "uint8 in 0..255" if v.dtype == torch.uint8 else f"{str(v.dtype).removeprefix('torch.')} in {lo}..{hi}"
        raise ValueError(
            f"{name}: got {found} (values {lo}..{hi}); images must be floats in [0, 1]: "
            "divide by 255, e.g. x.float() / 255."
        )
    finite = torch.isfinite(v)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise ValueError(
            f"{name} contain {bad} NaN/inf value(s); check the model that produced them "
            "(a diverged generator gives NaN images)."
        )
    lo, hi = float(v.min()), float(v.max())
    tol = RANGE_TOLERANCE
    if lo >= -tol and hi <= 1 + tol:
        return x
    found = f"got values in [{lo:.4g}, {hi:.4g}]"
    if -1 - tol <= lo < -tol and hi <= 1 + tol:
        fix = f"{found}, i.e. in [-1, 1] (a tanh output): map with (x + 1) / 2"
    elif lo >= -tol and 1 + tol < hi <= 255 + tol:
        fix = f"{found}, i.e. in 0..255: divide by 255"
    else:
        fix = (f"{found}: rescale them to [0, 1] (x.clamp(0, 1) if they overshoot a little, "
               "torch.sigmoid if they are logits)")
    raise ValueError(f"{name} must lie in [0, 1]; {fix}.")
