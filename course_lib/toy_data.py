"""The 2-D toy mixtures of the PacGAN paper (Lin et al., 2018): 8 modes on a ring, 25 on a grid
(chapters 1 and 5). Re-exported by :mod:`course_lib.data`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch


class ToyMixture(NamedTuple):
    """Samples ``(n, 2)``, mode centres ``(K, 2)`` and the component std of a 2-D mixture."""

    samples: torch.Tensor
    centres: torch.Tensor
    std: float


TOY_DEFAULTS = {"ring": 0.01, "grid": 0.05}


def toy_centres(name: str) -> torch.Tensor:
    """Mode centres of the PacGAN toy mixtures.

    * ``ring``: 8 modes at angles 2*pi*k/8, k = 0..7, on the unit circle. (The
      common ``linspace(0, 2*pi, 8)`` repeats the first point and gives 7 modes.)
    * ``grid``: 25 modes on {-4, -2, 0, 2, 4}^2.
    """
    if name == "ring":
        angles = 2 * math.pi * torch.arange(8, dtype=torch.float64) / 8
        return torch.stack([angles.cos(), angles.sin()], dim=1).float()
    if name == "grid":
        axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
        gx, gy = torch.meshgrid(axis, axis, indexing="ij")
        return torch.stack([gx.flatten(), gy.flatten()], dim=1)
    raise ValueError(f"Unknown toy mixture {name!r}; choose 'ring' or 'grid'.")


def toy_mixture(name: str, n: int, seed: int | None = None, std: float | None = None) -> ToyMixture:
    """Draw ``n`` points from an equal-weight Gaussian mixture on the ring or the grid.

    Defaults follow PacGAN (Lin et al., 2018) so results compare with its tables:
    ring = 8 modes, std 0.01; grid = 25 modes, std 0.05.
    """
    centres = toy_centres(name)
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    std = TOY_DEFAULTS[name] if std is None else float(std)
    if not std > 0:
        raise ValueError(f"std must be positive, got {std}")
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    idx = torch.randint(len(centres), (n,), generator=gen)
    noise = torch.randn(n, 2, generator=gen)
    return ToyMixture(centres[idx] + std * noise, centres, std)
