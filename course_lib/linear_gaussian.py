r"""The exact evidence and posterior of the linear-Gaussian latent model (chapter 6).

Chapter 6 checks the ELBO against a model whose :math:`\log p(x)` and
:math:`p(z \mid x)` are known in closed form: probabilistic PCA (Tipping &
Bishop, 1999),

.. math:: z \sim \mathcal N(0, I_d), \qquad x \mid z \sim \mathcal N(Wz + b, \sigma^2 I_D),
          \qquad x \sim \mathcal N(b, WW^\top + \sigma^2 I_D).

:func:`linear_gaussian_vae` builds the same model as a :class:`course_lib.vae.VAE`
(linear decoder, Gaussian likelihood, :class:`AffineEncoder`), and
:func:`set_exact_posterior` sets its encoder to the exact posterior, where the
ELBO equals :math:`\log p(x)`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .vae import VAE


def linear_gaussian_log_evidence(
    x: torch.Tensor, W: torch.Tensor, b: torch.Tensor, logvar_x: float
) -> torch.Tensor:
    r"""Exact :math:`\log p(x)` of the linear-Gaussian model, per example ``(B,)`` (chapter 6).

    Model: :math:`z \sim \mathcal N(0, I_d)`, :math:`x \mid z \sim \mathcal N(Wz + b, \sigma^2 I_D)`
    with ``W (D, d)``, ``b (D,)``, :math:`\sigma^2 = e^{\text{logvar\_x}}`. Marginal:
    :math:`x \sim \mathcal N(b, WW^\top + \sigma^2 I)` (probabilistic PCA, Tipping & Bishop, 1999).
    """
    cov = W @ W.T + math.exp(logvar_x) * torch.eye(W.shape[0], dtype=W.dtype)  # (D, D)
    return torch.distributions.MultivariateNormal(b, covariance_matrix=cov).log_prob(x)


def linear_gaussian_posterior(
    x: torch.Tensor, W: torch.Tensor, b: torch.Tensor, logvar_x: float
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Exact posterior :math:`p(z \mid x) = \mathcal N(m(x), S)` of the linear-Gaussian model (chapter 6).

    .. math:: S = (I + W^\top W / \sigma^2)^{-1}, \qquad m(x) = S\, W^\top (x - b) / \sigma^2

    Returns ``m (B, d)`` and ``S (d, d)`` (the same for every x).
    """
    var = math.exp(logvar_x)
    d = W.shape[1]
    S = torch.linalg.inv(torch.eye(d, dtype=W.dtype) + W.T @ W / var)  # (d, d)
    m = (x - b) @ W @ S.T / var  # (B, d)
    return m, S


class AffineEncoder(nn.Module):
    """``q(z | x) = N(A x + c, diag(exp(logvar)))`` with a logvar shared by all x: ``(B, D) -> (B, d) x 2``.

    Rich enough to hold the exact posterior of a linear-Gaussian model whose
    ``W`` has orthogonal columns (then the posterior covariance is diagonal).
    """

    def __init__(self, x_dim: int, z_dim: int):
        super().__init__()
        self.z_dim = z_dim
        self.linear = nn.Linear(x_dim, z_dim)
        self.logvar = nn.Parameter(torch.zeros(z_dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu = self.linear(x)  # (B, d)
        return mu, self.logvar.expand_as(mu)


def linear_gaussian_vae(W: torch.Tensor, b: torch.Tensor, logvar_x: float) -> VAE:
    """A :class:`VAE` whose decoder is the linear-Gaussian model ``(W, b, logvar_x)``; the encoder is an
    :class:`AffineEncoder` (set its weights to the exact posterior with :func:`set_exact_posterior`)."""
    D, d = W.shape
    decoder = nn.Linear(d, D)
    with torch.no_grad():
        decoder.weight.copy_(W)
        decoder.bias.copy_(b)
    return VAE(AffineEncoder(D, d), decoder, likelihood="gaussian", decoder_logvar=logvar_x).to(W.dtype)


@torch.no_grad()
def set_exact_posterior(vae: VAE) -> None:
    """Make the :class:`AffineEncoder` of a :func:`linear_gaussian_vae` equal the exact posterior.

    Only possible when the posterior covariance is diagonal (``W`` with orthogonal
    columns); otherwise raises ``ValueError``, since a diagonal q cannot match it.
    """
    W, b = vae.decoder.weight, vae.decoder.bias
    var = float(vae.decoder_logvar.exp())
    S = torch.linalg.inv(torch.eye(W.shape[1], dtype=W.dtype) + W.T @ W / var)
    if not torch.allclose(S, torch.diag(torch.diagonal(S)), atol=1e-6):
        raise ValueError("the exact posterior is not diagonal (W's columns are not orthogonal).")
    A = S @ W.T / var  # (d, D): m(x) = A (x - b)
    vae.encoder.linear.weight.copy_(A)
    vae.encoder.linear.bias.copy_(-A @ b)
    vae.encoder.logvar.copy_(torch.log(torch.diagonal(S)))
