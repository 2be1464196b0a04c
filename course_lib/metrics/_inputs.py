"""Input checks shared by the metrics of chapter 9: features (n, d) as float64 NumPy arrays."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor | Sequence[Any]


def _as_float64(x: ArrayLike, name: str) -> np.ndarray:
    """``x`` as a finite float64 array (torch tensors are detached and moved to the CPU)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be numbers (a NumPy array or torch tensor); {err}") from err
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise ValueError(
            f"{name} contains {bad} NaN/inf value(s); metrics need finite numbers. Check the model "
            "that produced them (a diverged generator gives NaN images)."
        )
    return arr


def _features(x: ArrayLike, name: str, extractor: Any = None, batch_size: int = 500,
             min_n: int = 1) -> np.ndarray:
    """Features (n, d) as float64: ``x`` itself, or ``extract(extractor, x)`` if an extractor is given.

    At least ``min_n`` samples and one feature dimension: an empty array would reach NumPy's
    reductions and give a zero-size error or NaN instead of a message. Images given with an
    extractor are checked by :func:`course_lib.features.extract` (floats in [0, 1]).
    """
    if extractor is not None:
        from ..features import extract

        x = extract(extractor, torch.as_tensor(x), batch_size=batch_size)
    arr = _as_float64(x, name)
    if arr.ndim != 2:
        hint = " (images? pass extractor=, e.g. load_mnist_classifier())" if arr.ndim == 4 else ""
        raise ValueError(f"{name} must be features of shape (n, d); got shape {arr.shape}{hint}")
    if len(arr) < min_n:
        raise ValueError(f"{name} has {len(arr)} sample(s); this metric needs at least {min_n}.")
    if arr.shape[1] == 0:
        raise ValueError(
            f"{name} has 0 feature dimensions (shape {arr.shape}): there is nothing to compare. "
            "Check the extractor's output or how the features were sliced."
        )
    return arr


def _same_dim(a: np.ndarray, b: np.ndarray, names: str) -> None:
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"{names} have different feature dimensions ({a.shape[-1]} vs {b.shape[-1]}); "
            "extract both with the same network."
        )
