"""Chapter 12: measured attributes and latent directions."""

import math

import pytest
import torch

from course_lib import editing as E


def _bar(width: int, shear: float = 0.0) -> torch.Tensor:
    """A vertical bar `width` pixels wide, sheared by `shear` columns per row (up = right)."""
    img = torch.zeros(1, 1, 28, 28)
    for r in range(4, 24):
        c0 = 12 + round(shear * (23 - r))
        img[0, 0, r, c0:c0 + width] = 1
    return img


def test_thickness_is_the_stroke_width():
    t = E.thickness(torch.cat([_bar(2), _bar(4)]))
    assert 1.6 < t[0] < 2.4 and 3.2 < t[1] < 4.8, t
    with pytest.raises(ValueError, match="no ink"):
        E.thickness(torch.zeros(1, 1, 28, 28))


def test_slant_is_the_shear_and_points_right():
    s = E.slant(torch.cat([_bar(3, 0.0), _bar(3, 0.3), _bar(3, -0.3)]))
    assert abs(s[0]) < 0.02
    assert math.isclose(float(s[1]), 0.3, abs_tol=0.05) and math.isclose(float(s[2]), -0.3, abs_tol=0.05)


def test_attribute_direction_recovers_a_planted_direction():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(500, 8, generator=g)
    w = torch.tensor([0.0, 3.0, 0.0, -4.0, 0, 0, 0, 0])
    v = z @ w + 2.0 + 0.1 * torch.randn(500, generator=g)
    d = E.attribute_direction(z, v)
    assert torch.allclose(d, w / w.norm(), atol=0.02)
    edited = E.edit_codes(z[:3], d, torch.tensor([-1.0, 0.0, 2.0]))
    assert edited.shape == (3, 3, 8) and torch.equal(edited[1], z[:3])
    assert torch.allclose((edited[2] - z[:3]) @ d, torch.full((3,), 2.0), atol=1e-5)
    with pytest.raises(ValueError, match="codes must be"):
        E.attribute_direction(z, v[:10])
