r"""Variational autoencoders: encoders, decoders, the ELBO, the IWAE bound, beta-VAE, CVAE, KL warm-up.

Derived in chapter 6 (the ELBO and the reparameterisation trick), trained in
chapter 7 (MNIST, the IWAE estimate of the NLL) and varied in chapter 8
(beta-VAE, conditional VAE, posterior collapse, residual blocks, clipping).

The model follows Kingma & Welling (2014), *Auto-Encoding Variational Bayes*:

* prior :math:`p(z) = \mathcal N(0, I)`;
* encoder :math:`q_\phi(z \mid x) = \mathcal N(\mu_\phi(x), \operatorname{diag}\sigma^2_\phi(x))`,
  returned as ``(mu, logvar)``;
* decoder :math:`p_\theta(x \mid z)`: Bernoulli with logits ``decode(z)`` (the
  default, for pixels in [0, 1]) or a Gaussian with mean ``decode(z)`` and a
  shared log-variance.

Log-densities and the Gaussian KL come from :mod:`course_lib.distributions`;
the training loop is :func:`course_lib.train.fit`. Every per-image quantity is
a *sum* over pixels and latent dimensions, in nats (never a mean over pixels:
dividing the reconstruction term by 784 and not the KL is a classic bug).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .distributions import (
    gaussian_kl,
    log_bernoulli,
    log_mean_exp,
    log_normal_diag,
    log_standard_normal,
    sample_normal_diag,
)
from .train import History, fit
from .utils import load_checkpoint, save_checkpoint

Shape = tuple[int, int, int]
Act = Callable[[], nn.Module]

# --- building blocks ---------------------------------------------------------------------


def _check_images(x: torch.Tensor, shape: Sequence[int], who: str) -> None:
    if x.ndim < 2 or tuple(x.shape[1:]) != tuple(shape):
        raise ValueError(
            f"{who} expects inputs of shape (B, {', '.join(map(str, shape))}), got {tuple(x.shape)}."
        )


def _with_cond(h: torch.Tensor, c: torch.Tensor | None, cond_dim: int, who: str) -> torch.Tensor:
    """Concatenate a condition vector ``c (B, cond_dim)`` to features ``h (B, F)``."""
    if cond_dim == 0:
        if c is not None:
            raise ValueError(f"{who} was built with cond_dim=0 but received a condition.")
        return h
    if c is None or c.shape != (h.shape[0], cond_dim):
        got = None if c is None else tuple(c.shape)
        raise ValueError(f"{who} needs a condition of shape ({h.shape[0]}, {cond_dim}), got {got}.")
    return torch.cat([h, c.to(h.dtype)], dim=1)


class ResidualLinear(nn.Module):
    r"""A pre-activation residual layer :math:`h + W\,\mathrm{act}(h) + b` (He et al., 2016; chapter 8)."""

    def __init__(self, width: int, act: Act = nn.ReLU):
        super().__init__()
        self.f = nn.Sequential(act(), nn.Linear(width, width))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.f(h)


def mlp_body(in_dim: int, hidden: Sequence[int], act: Act = nn.ReLU, residual: bool = False) -> nn.Sequential:
    """Hidden layers ``in_dim -> hidden[0] -> ... -> hidden[-1]``, each followed by ``act``.

    With ``residual=True``, every layer whose input and output widths agree is a
    :class:`ResidualLinear` (skip connection) instead: deep stacks then keep their
    gradient scale (measured in chapter 8).
    """
    layers: list[nn.Module] = []
    width = in_dim
    for i, h in enumerate(hidden):
        if residual and h == width and i > 0:
            layers.append(ResidualLinear(h, act))
        else:
            if residual and layers:
                layers.append(act())
            layers.append(nn.Linear(width, h))
        if not residual:
            layers.append(act())
        width = h
    if residual and hidden:
        layers.append(act())
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """x ``(B, *in_shape)`` [+ condition ``(B, cond_dim)``] -> ``(mu, logvar)``, each ``(B, z_dim)``.

    The classic encoder of Kingma & Welling (2014) is ``MLPEncoder((1, 28, 28), 20, (400,))``.
    """

    def __init__(
        self,
        in_shape: Sequence[int] = (1, 28, 28),
        z_dim: int = 20,
        hidden: Sequence[int] = (400,),
        cond_dim: int = 0,
        act: Act = nn.ReLU,
        residual: bool = False,
    ):
        super().__init__()
        self.in_shape, self.z_dim, self.cond_dim = tuple(in_shape), z_dim, cond_dim
        self.body = mlp_body(math.prod(in_shape) + cond_dim, hidden, act, residual)
        self.head = nn.Linear(hidden[-1] if hidden else math.prod(in_shape) + cond_dim, 2 * z_dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        _check_images(x, self.in_shape, "MLPEncoder")
        h = _with_cond(x.flatten(1), c, self.cond_dim, "MLPEncoder")  # (B, D + cond_dim)
        mu, logvar = self.head(self.body(h)).chunk(2, dim=1)  # (B, z_dim) each
        return mu, logvar


class MLPDecoder(nn.Module):
    """z ``(B, z_dim)`` [+ condition] -> output ``(B, *out_shape)`` (Bernoulli logits or Gaussian means)."""

    def __init__(
        self,
        out_shape: Sequence[int] = (1, 28, 28),
        z_dim: int = 20,
        hidden: Sequence[int] = (400,),
        cond_dim: int = 0,
        act: Act = nn.ReLU,
        residual: bool = False,
    ):
        super().__init__()
        self.out_shape, self.z_dim, self.cond_dim = tuple(out_shape), z_dim, cond_dim
        self.body = mlp_body(z_dim + cond_dim, hidden, act, residual)
        self.head = nn.Linear(hidden[-1] if hidden else z_dim + cond_dim, math.prod(out_shape))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        h = _with_cond(z, c, self.cond_dim, "MLPDecoder")  # (B, z_dim + cond_dim)
        return self.head(self.body(h)).view(-1, *self.out_shape)  # (B, C, H, W)


class ResBlock(nn.Module):
    """A pre-activation residual block :math:`h + f(h)` (He et al., 2016), used in chapter 8.

    ``f`` is act-conv3x3-act-conv1x1. The skip path carries gradients straight
    through, which is why deep stacks of these train where plain stacks stall.
    """

    def __init__(self, channels: int, act: Act = nn.ReLU, hidden: int | None = None):
        super().__init__()
        hidden = hidden or channels
        self.f = nn.Sequential(
            act(), nn.Conv2d(channels, hidden, 3, padding=1), act(), nn.Conv2d(hidden, channels, 1)
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.f(h)


def _down(size: int) -> int:
    return (size + 2 - 4) // 2 + 1  # Conv2d(kernel 4, stride 2, padding 1)


class ConvEncoder(nn.Module):
    """Images ``(B, C, H, W)`` -> ``(mu, logvar)``: two stride-2 convs, residual blocks, a linear head.

    Shapes for MNIST with ``channels=(32, 64)``: (B, 1, 28, 28) -> (B, 32, 14, 14)
    -> (B, 64, 7, 7) -> ``n_res`` residual blocks -> flatten -> (B, 2 z_dim).
    Works for any H, W >= 4 (28 for MNIST, 25 for the LFW faces, 32 for CIFAR-10).
    """

    def __init__(
        self,
        in_shape: Shape = (1, 28, 28),
        z_dim: int = 20,
        channels: tuple[int, int] = (32, 64),
        hidden: int = 256,
        n_res: int = 0,
        cond_dim: int = 0,
        act: Act = nn.ReLU,
    ):
        super().__init__()
        c, h, w = in_shape
        self.in_shape, self.z_dim, self.cond_dim = tuple(in_shape), z_dim, cond_dim
        c1, c2 = channels
        self.conv = nn.Sequential(
            nn.Conv2d(c, c1, 4, 2, 1), act(), nn.Conv2d(c1, c2, 4, 2, 1),
            *[ResBlock(c2, act) for _ in range(n_res)], act(),
        )
        flat = c2 * _down(_down(h)) * _down(_down(w))
        self.fc = nn.Sequential(nn.Linear(flat + cond_dim, hidden), act(), nn.Linear(hidden, 2 * z_dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        _check_images(x, self.in_shape, "ConvEncoder")
        h = self.conv(x).flatten(1)  # (B, c2 * H/4 * W/4)
        mu, logvar = self.fc(_with_cond(h, c, self.cond_dim, "ConvEncoder")).chunk(2, dim=1)
        return mu, logvar


class ConvDecoder(nn.Module):
    """z ``(B, z_dim)`` -> ``(B, C, H, W)`` logits: a linear layer, residual blocks, two stride-2 transposed convs.

    The mirror image of :class:`ConvEncoder`; ``output_padding`` restores odd sizes
    (25 -> 12 -> 6 going down, 6 -> 12 -> 25 coming back up).
    """

    def __init__(
        self,
        out_shape: Shape = (1, 28, 28),
        z_dim: int = 20,
        channels: tuple[int, int] = (32, 64),
        hidden: int = 256,
        n_res: int = 0,
        cond_dim: int = 0,
        act: Act = nn.ReLU,
    ):
        super().__init__()
        c, h, w = out_shape
        self.out_shape, self.z_dim, self.cond_dim = tuple(out_shape), z_dim, cond_dim
        c1, c2 = channels
        (h1, w1), (h2, w2) = (_down(h), _down(w)), (_down(_down(h)), _down(_down(w)))
        self.start = (c2, h2, w2)
        self.fc = nn.Sequential(nn.Linear(z_dim + cond_dim, hidden), act(), nn.Linear(hidden, c2 * h2 * w2))
        self.deconv = nn.Sequential(
            *[ResBlock(c2, act) for _ in range(n_res)], act(),
            nn.ConvTranspose2d(c2, c1, 4, 2, 1, output_padding=(h1 - 2 * h2, w1 - 2 * w2)), act(),
            nn.ConvTranspose2d(c1, c, 4, 2, 1, output_padding=(h - 2 * h1, w - 2 * w1)),
        )

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        h = self.fc(_with_cond(z, c, self.cond_dim, "ConvDecoder")).view(-1, *self.start)  # (B, c2, H/4, W/4)
        return self.deconv(h)  # (B, C, H, W)


class RowGRUDecoder(nn.Module):
    r"""An autoregressive "strong" decoder: a GRU over image rows, conditioned on z (chapter 8).

    .. math:: p(x \mid z) = \prod_{i=1}^{H} p(x_{i,:} \mid x_{<i,:}, z)

    Row ``i`` is predicted from the rows above it (teacher forcing during
    training) and from ``z``, which sets the GRU's initial state. Such a decoder
    can model digits well *without* z, which invites posterior collapse
    (Bowman et al., 2016). ``forward(z, x)`` returns logits ``(B, 1, H, W)``;
    ``forward(z)`` generates row by row, feeding back each row's mean.
    """

    autoregressive = True

    def __init__(self, out_shape: Shape = (1, 28, 28), z_dim: int = 16, hidden: int = 256):
        super().__init__()
        c, h, w = out_shape
        if c != 1:
            raise ValueError("RowGRUDecoder models one-channel images")
        self.out_shape, self.z_dim = tuple(out_shape), z_dim
        self.init = nn.Linear(z_dim, hidden)
        self.gru = nn.GRU(w + z_dim, hidden, batch_first=True)
        self.out = nn.Linear(hidden, w)

    def forward(self, z: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        _, h, w = self.out_shape
        h0 = torch.tanh(self.init(z))[None]  # (1, B, hidden)
        if x is not None:  # teacher forcing: row i sees rows < i
            rows = x.view(len(z), h, w)
            prev = torch.cat([torch.zeros_like(rows[:, :1]), rows[:, :-1]], dim=1)  # (B, H, W)
            inp = torch.cat([prev, z[:, None].expand(-1, h, -1)], dim=2)  # (B, H, W + z_dim)
            out, _ = self.gru(inp, h0)  # (B, H, hidden)
            return self.out(out).view(len(z), 1, h, w)
        state, row, logits = h0, torch.zeros(len(z), 1, w, device=z.device), []
        for _ in range(h):  # generation: feed back each row's mean
            out, state = self.gru(torch.cat([row, z[:, None]], dim=2), state)
            logits.append(self.out(out))  # (B, 1, W)
            row = torch.sigmoid(logits[-1])
        return torch.cat(logits, dim=1).view(len(z), 1, h, w)


# --- the VAE ---------------------------------------------------------------------------


class ELBO(NamedTuple):
    """Per-example terms, each ``(B,)`` in nats: ``elbo = log_px_z - kl`` (with beta = 1)."""

    elbo: torch.Tensor
    log_px_z: torch.Tensor  # E_q log p(x | z), one-sample estimate: the "reconstruction" term
    kl: torch.Tensor  # KL(q(z | x) || p(z)), closed form


class VAE(nn.Module):
    r"""A VAE with a standard normal prior and a diagonal Gaussian encoder (chapters 6-8).

    * ``encode(x) -> (mu, logvar)`` of :math:`q(z \mid x)`, each ``(B, z_dim)``;
    * ``decode(z)`` -> Bernoulli logits ``(B, C, H, W)`` (``likelihood="bernoulli"``)
      or Gaussian means (``likelihood="gaussian"``, log-variance ``decoder_logvar``);
    * ``elbo(x)``, ``iwae_bound(x, k)``, ``sample(n)``, ``reconstruct(x)``.

    With ``num_classes > 0`` it is a conditional VAE (Sohn et al., 2015): the
    encoder and decoder also see the one-hot label ``y``, and ``sample(n, y)``
    draws digits of the requested classes.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        likelihood: str = "bernoulli",
        decoder_logvar: float | None = None,
        num_classes: int = 0,
    ):
        super().__init__()
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}")
        if likelihood == "bernoulli" and decoder_logvar is not None:
            raise ValueError("decoder_logvar is only for likelihood='gaussian'.")
        self.encoder, self.decoder = encoder, decoder
        self.likelihood, self.num_classes = likelihood, num_classes
        self.z_dim = encoder.z_dim
        if likelihood == "gaussian":  # log sigma^2 of p(x | z), learned, shared by all pixels
            self.decoder_logvar = nn.Parameter(torch.tensor(0.0 if decoder_logvar is None else float(decoder_logvar)))

    # -- conditioning -----------------------------------------------------------------------
    def _cond(self, y: torch.Tensor | None, n: int) -> torch.Tensor | None:
        if self.num_classes == 0:
            if y is not None:
                raise ValueError("this VAE is not conditional (num_classes=0): do not pass y.")
            return None
        if y is None:
            raise ValueError(f"this conditional VAE needs labels y (ints in 0..{self.num_classes - 1}).")
        y = torch.as_tensor(y, device=self._device())
        if y.ndim == 0:
            y = y.expand(n)
        if y.shape != (n,) or y.min() < 0 or y.max() >= self.num_classes:
            raise ValueError(f"y must hold {n} ints in 0..{self.num_classes - 1}, got {tuple(y.shape)}")
        return F.one_hot(y.long(), self.num_classes).float()  # (B, num_classes)

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    # -- the three maps -------------------------------------------------------------------
    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, ...)`` -> ``(mu, logvar)`` of q(z | x), each ``(B, z_dim)``."""
        if not torch.isfinite(x).all():
            raise ValueError("the input contains NaN or inf; check the data pipeline.")
        c = self._cond(y, len(x))
        return self.encoder(x) if c is None else self.encoder(x, c)

    def decode(
        self, z: torch.Tensor, y: torch.Tensor | None = None, x: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``z (B, z_dim)`` -> Bernoulli logits (or Gaussian means) ``(B, ...)``.

        ``x`` is used only by an autoregressive decoder (e.g. :class:`RowGRUDecoder`),
        which predicts each part of ``x`` from the parts before it; without ``x``
        such a decoder generates.
        """
        c = self._cond(y, len(z))
        args = (z,) if c is None else (z, c)
        if getattr(self.decoder, "autoregressive", False):
            return self.decoder(*args, x=x)
        return self.decoder(*args)

    def log_likelihood(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        r"""log p(x | z) per example ``(B,)``, summed over every pixel (chapter 6).

        Bernoulli: :func:`~course_lib.distributions.log_bernoulli` with logits
        ``out``; Gaussian: :func:`~course_lib.distributions.log_normal_diag`
        with mean ``out`` and the shared log-variance.
        """
        dims = tuple(range(1, x.ndim))
        if self.likelihood == "bernoulli":
            return log_bernoulli(x, out, dim=dims)
        return log_normal_diag(x, out, self.decoder_logvar.expand_as(out), dim=dims)

    # -- bounds ---------------------------------------------------------------------------
    def elbo(
        self, x: torch.Tensor, y: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> ELBO:
        r"""The evidence lower bound per example, one reparameterised sample (chapter 6, eq. ELBO).

        .. math:: \mathcal L(x) = \mathbb E_{q(z\mid x)}[\log p(x \mid z)] - \mathrm{KL}(q(z \mid x)\,\|\,p(z))
                  \le \log p(x)

        The expectation is estimated with one sample :math:`z = \mu + \sigma\odot\varepsilon`;
        the KL is in closed form (:func:`~course_lib.distributions.gaussian_kl`).
        """
        mu, logvar = self.encode(x, y)  # (B, z_dim) each
        z = sample_normal_diag(mu, logvar, generator)  # (B, z_dim)
        log_px_z = self.log_likelihood(x, self.decode(z, y, x))  # (B,)
        kl = gaussian_kl(mu, logvar, dim=1)  # (B,)
        return ELBO(log_px_z - kl, log_px_z, kl)

    def loss(
        self, x: torch.Tensor, y: torch.Tensor | None = None, beta: float = 1.0, free_bits: float = 0.0
    ) -> tuple[torch.Tensor, ELBO]:
        r"""The training loss: the negative beta-ELBO averaged over the batch, and the terms.

        .. math:: -\frac1B\sum_b \big(\mathbb E_q \log p(x_b\mid z) - \beta\,\mathrm{KL}(q(z\mid x_b)\,\|\,p(z))\big)

        ``beta = 1`` is the VAE; ``beta > 1`` the beta-VAE of Higgins et al. (2017);
        a ``beta`` ramping from 0 to 1 is KL warm-up (:func:`kl_warmup`, chapter 8).
        ``free_bits = lambda > 0`` replaces each latent dimension's batch-mean KL
        :math:`\mathrm{KL}_j` by :math:`\max(\lambda, \mathrm{KL}_j)` (Kingma et al., 2016): the
        encoder is not pushed below lambda nats per dimension, against posterior collapse.
        The returned terms are always the true ELBO terms.
        """
        if free_bits < 0:
            raise ValueError(f"free_bits must be >= 0, got {free_bits}")
        if free_bits == 0:
            terms = self.elbo(x, y)
            return -(terms.log_px_z - beta * terms.kl).mean(), terms
        mu, logvar = self.encode(x, y)
        z = sample_normal_diag(mu, logvar)
        log_px_z = self.log_likelihood(x, self.decode(z, y, x))  # (B,)
        kl_dims = gaussian_kl(mu, logvar)  # (B, z_dim)
        kl_floor = torch.clamp(kl_dims.mean(0), min=free_bits).sum()  # sum_j max(lambda, KL_j)
        kl = kl_dims.sum(1)
        return -(log_px_z.mean() - beta * kl_floor), ELBO(log_px_z - kl, log_px_z, kl)

    def log_weights(
        self, x: torch.Tensor, k: int, y: torch.Tensor | None = None, generator: torch.Generator | None = None,
        chunk: int | None = None,
    ) -> torch.Tensor:
        r"""Importance log-weights :math:`\log p(x, z_i) - \log q(z_i \mid x)`, ``(k, B)``, :math:`z_i \sim q(z\mid x)`.

        ``chunk`` bounds how many samples are decoded at once (memory).
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        mu, logvar = self.encode(x, y)  # (B, z_dim)
        chunk = chunk or max(1, min(k, 20_000 // max(1, len(x))))
        out = []
        for start in range(0, k, chunk):
            n = min(chunk, k - start)
            z = sample_normal_diag(mu.expand(n, *mu.shape), logvar.expand(n, *logvar.shape), generator)  # (n, B, z_dim)
            zf = z.reshape(n * len(x), -1)
            yf = None if y is None else torch.as_tensor(y).repeat(n)
            xf = x.expand(n, *x.shape).reshape(n * len(x), *x.shape[1:])
            log_px_z = self.log_likelihood(xf, self.decode(zf, yf, xf)).view(n, len(x))
            log_pz = log_standard_normal(z, dim=-1)  # (n, B)
            log_qz = log_normal_diag(z, mu, logvar, dim=-1)  # (n, B)
            out.append(log_px_z + log_pz - log_qz)
        return torch.cat(out)  # (k, B)

    def iwae_bound(
        self, x: torch.Tensor, k: int, y: torch.Tensor | None = None, generator: torch.Generator | None = None,
        chunk: int | None = None,
    ) -> torch.Tensor:
        r"""The importance-weighted bound of Burda et al. (2016), per example ``(B,)`` (chapter 7).

        .. math:: \mathcal L_k(x) = \mathbb E\Big[\log \frac1k \sum_{i=1}^k \frac{p(x, z_i)}{q(z_i\mid x)}\Big],
                  \quad \mathcal L_1 = \mathcal L \le \mathcal L_k \le \mathcal L_{k+1} \le \log p(x)

        and :math:`\mathcal L_k \to \log p(x)` as :math:`k \to \infty`, so
        ``-iwae_bound(x, 5000)`` estimates the negative log-likelihood.
        """
        return log_mean_exp(self.log_weights(x, k, y, generator, chunk), dim=0)

    # -- generating -----------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self, n: int, y: torch.Tensor | int | None = None, generator: torch.Generator | None = None,
        mean: bool = True,
    ) -> torch.Tensor:
        r"""Draw ``n`` images: :math:`z \sim \mathcal N(0, I)`, then the decoder's mean (``mean=True``).

        Bernoulli decoders return :math:`\sigma(\text{logits})` in [0, 1] (the usual
        picture); ``mean=False`` draws pixels from p(x | z) instead (noisy).
        """
        z = torch.randn(n, self.z_dim, generator=generator).to(self._device())
        return self.decode_mean(z, y, mean=mean, generator=generator)

    @torch.no_grad()
    def decode_mean(
        self, z: torch.Tensor, y: torch.Tensor | int | None = None, mean: bool = True,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The mean of p(x | z) (``sigmoid(logits)`` for Bernoulli), or a draw from it."""
        out = self.decode(z, y)
        if self.likelihood == "gaussian":
            if mean:
                return out
            return out + torch.exp(0.5 * self.decoder_logvar) * torch.randn(out.shape, generator=generator).to(out)
        probs = torch.sigmoid(out)
        return probs if mean else torch.bernoulli(probs.cpu(), generator=generator).to(out)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Decode the posterior mean: ``decode_mean(mu(x))``."""
        mu, _ = self.encode(x, y)
        return self.decode_mean(mu, y)


# --- schedules and training ------------------------------------------------------------


def kl_warmup(step: int, warmup_steps: int, start: float = 0.0) -> float:
    r"""KL warm-up (deterministic annealing) weight :math:`\beta_t = \min(1, s + (1-s)\,t/T)` (chapter 8).

    Bowman et al. (2016) and Sønderby et al. (2016): start the KL weight near 0
    so the decoder learns to use z before the KL pulls q(z | x) onto the prior.
    ``warmup_steps=0`` means no warm-up (always 1).
    """
    if warmup_steps < 0 or not 0.0 <= start <= 1.0:
        raise ValueError(f"need warmup_steps >= 0 and 0 <= start <= 1, got {warmup_steps}, {start}")
    if warmup_steps == 0:
        return 1.0
    return min(1.0, start + (1.0 - start) * step / warmup_steps)


def make_vae_step(
    vae: VAE,
    opt: torch.optim.Optimizer,
    beta: float | Callable[[int], float] = 1.0,
    clip: float | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    lr_at: Callable[[int], float] | None = None,
    free_bits: float = 0.0,
    autocast: torch.dtype | None = None,
) -> Callable:
    """A ``step(batch)`` for :func:`course_lib.train.fit`: one Adam step on the negative beta-ELBO.

    ``batch`` is ``(x,)`` or ``(x, y)`` (labels are used only by a conditional VAE).
    ``beta`` may be a number or a schedule ``beta(step)`` such as
    ``lambda t: kl_warmup(t, 2000)``. ``clip`` clips the global gradient norm
    (its value before clipping is logged as ``grad_norm``). ``augment`` maps a
    batch of images to a transformed batch (e.g. :func:`random_shift`).
    ``lr_at(step)`` sets the learning rate of every parameter group.
    ``free_bits`` is passed to :meth:`VAE.loss`. ``autocast=torch.bfloat16`` runs the
    forward pass in mixed precision (faster on CPUs and GPUs with bf16 units; the
    weights, the optimiser and :func:`evaluate` stay in float32).
    Logs ``loss`` (the minimised negative beta-ELBO), ``neg_elbo``, ``rec`` and ``kl``, in nats.
    """
    counter = {"t": 0}

    def step(batch):
        x = batch[0]
        y = batch[1] if vae.num_classes and len(batch) > 1 else None
        if augment is not None:
            x = augment(x)
        t = counter["t"]
        b = beta(t) if callable(beta) else beta
        if lr_at is not None:
            for group in opt.param_groups:
                group["lr"] = lr_at(t)
        with torch.autocast(x.device.type, dtype=autocast or torch.bfloat16, enabled=autocast is not None):
            loss, terms = vae.loss(x, y, b, free_bits)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        logs = {}
        if clip is not None:
            logs["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(vae.parameters(), clip))
        opt.step()
        counter["t"] += 1
        return {
            "loss": loss.item(),
            "neg_elbo": -terms.elbo.mean().item(),
            "rec": -terms.log_px_z.mean().item(),
            "kl": terms.kl.mean().item(),
            "beta": b,
            **logs,
        }

    return step


def train_vae(
    vae: VAE,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    lr: float = 1e-3,
    batch_size: int = 128,
    beta: float | Callable[[int], float] = 1.0,
    clip: float | None = None,
    free_bits: float = 0.0,
    optimizer: Callable[..., torch.optim.Optimizer] | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    seed: int = 0,
    **budget,
) -> History:
    """Train ``vae`` with Adam on images ``x (N, C, H, W)`` (labels ``y`` for a CVAE) using :func:`fit`.

    ``budget`` is passed to :func:`course_lib.train.fit`: ``epochs=``, ``steps=``
    or ``seconds=``, and optionally ``history=``, ``desc=``, ``callback=``.
    ``optimizer(params, lr=lr)`` builds the optimiser (default :class:`torch.optim.Adam`);
    ``augment`` transforms each batch of images (e.g. :func:`random_shift`, or
    ``torch.bernoulli`` for dynamic binarisation).
    Returns the history (``loss``, ``neg_elbo``, ``rec``, ``kl``, ``beta`` per step).
    """
    if x.ndim != 4:
        raise ValueError(f"x must be images (N, C, H, W), got shape {tuple(x.shape)}")
    opt = (optimizer or torch.optim.Adam)(vae.parameters(), lr=lr)
    step = make_vae_step(vae, opt, beta=beta, clip=clip, free_bits=free_bits, augment=augment)
    vae.train()
    tensors = (x,) if y is None else (x, y)
    hist = fit(step, tensors, batch_size, seed=seed, device=vae._device(), **budget)
    vae.eval()
    return hist


def bf16_is_fast(device: torch.device | str = "cpu") -> bool:
    """Whether bfloat16 mixed precision is likely to speed training up on ``device``.

    On CUDA: the GPU supports bf16. On CPU: oneDNN reports native bf16 support
    (e.g. AVX512-BF16 or AMX); without it bf16 is emulated and slower.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # private op: absent in some builds
        return False


def train_or_load(vae: VAE, path: str | os.PathLike, x: torch.Tensor, y: torch.Tensor | None = None,
                  **train_kwargs) -> History:
    """Load ``vae`` and its history from ``path`` if present, else :func:`train_vae` it and save (chapters 7-8).

    The checkpoint stores the weights, the history and ``train_kwargs`` (as text);
    if they do not match the model or the requested training (e.g. the code
    changed), it trains again and overwrites the file. Returns the history.
    """
    path = Path(path)
    settings = repr(sorted((k, repr(v)) for k, v in train_kwargs.items() if not callable(v)))
    if path.is_file():
        state = load_checkpoint(path)
        if state.get("settings") == settings:
            try:
                vae.load_state_dict(state["model"])
            except RuntimeError as err:  # another architecture under the same name
                print(f"{path.name} does not fit this model ({str(err).splitlines()[0]}); training again.")
            else:
                vae.eval()
                print(f"loaded {path} (delete it to train again)")
                return state["history"]
    hist = train_vae(vae, x, y, **train_kwargs)
    save_checkpoint(path, {"model": vae.state_dict(), "history": hist, "settings": settings})
    return hist


@torch.no_grad()
def evaluate(
    vae: VAE, x: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 500, seed: int = 0
) -> dict[str, float]:
    """Test metrics averaged over images, in nats: ``neg_elbo`` (one posterior sample), ``rec``, ``kl``.

    ``neg_elbo`` is the benchmark number of chapter 7: Bernoulli likelihood on
    [0, 1] pixels, one posterior sample, summed over pixels, averaged over images.
    """
    was_training = vae.training
    vae.eval()
    gen = torch.Generator().manual_seed(seed)
    dev = vae._device()
    tot = {"neg_elbo": 0.0, "rec": 0.0, "kl": 0.0}
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size].to(dev)
        yb = None if y is None else y[start : start + batch_size].to(dev)
        mu, logvar = vae.encode(xb, yb)
        eps = torch.randn(mu.shape, generator=gen).to(mu)
        z = mu + torch.exp(0.5 * logvar) * eps
        rec = vae.log_likelihood(xb, vae.decode(z, yb, xb))
        kl = gaussian_kl(mu, logvar, dim=1)
        tot["neg_elbo"] += float((kl - rec).sum())
        tot["rec"] += float(-rec.sum())
        tot["kl"] += float(kl.sum())
    vae.train(was_training)
    return {k: v / len(x) for k, v in tot.items()}


@torch.no_grad()
def iwae_nll(
    vae: VAE, x: torch.Tensor, k: int, y: torch.Tensor | None = None, batch_size: int = 100, seed: int = 0,
) -> float:
    """The IWAE estimate of the test negative log-likelihood, ``-mean(iwae_bound(x, k))``, in nats (chapter 7)."""
    gen = torch.Generator().manual_seed(seed)
    vae.eval()
    dev = vae._device()
    total = 0.0
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size].to(dev)
        yb = None if y is None else y[start : start + batch_size].to(dev)
        total += float(vae.iwae_bound(xb, k, yb, generator=gen).sum())
    return -total / len(x)


@torch.no_grad()
def active_units(vae: VAE, x: torch.Tensor, threshold: float = 0.01, batch_size: int = 500) -> int:
    r"""Number of latent units with :math:`\operatorname{Cov}_x(\mathbb E_q[z_u]) > 0.01` (Burda et al., 2016).

    An inactive unit carries no information about x: its posterior mean is the
    same for every image. Zero active units is posterior collapse (chapter 8).
    """
    mus = torch.cat([vae.encode(x[s : s + batch_size].to(vae._device()))[0] for s in range(0, len(x), batch_size)])
    return int((mus.var(0) > threshold).sum())


def random_shift(x: torch.Tensor, max_shift: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each image by a random whole number of pixels in [-max_shift, max_shift] per axis (zero fill).

    Whole-pixel shifts keep every grey level exact (no interpolation blur), so
    the Bernoulli likelihood of the shifted digit is as sharp as the original's.
    Data augmentation for the small embedded MNIST (chapter 7).
    """
    if max_shift == 0:
        return x
    b, _, h, w = x.shape
    m = max_shift
    padded = F.pad(x, (m, m, m, m))  # (B, C, H + 2m, W + 2m)
    dx = torch.randint(0, 2 * m + 1, (b,), generator=generator)
    dy = torch.randint(0, 2 * m + 1, (b,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None]).to(x.device)  # (B, H)
    cols = (dx[:, None] + torch.arange(w)[None]).to(x.device)  # (B, W)
    idx_b = torch.arange(b, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx_b, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


def mlp_vae(z_dim: int = 20, hidden: Sequence[int] = (400,), shape: Shape = (1, 28, 28), num_classes: int = 0,
            act: Act = nn.ReLU, residual: bool = False) -> VAE:
    """The classic MLP VAE of Kingma & Welling (2014): 784-400-20 by default (chapter 7)."""
    return VAE(
        MLPEncoder(shape, z_dim, hidden, num_classes, act, residual),
        MLPDecoder(shape, z_dim, tuple(reversed(hidden)), num_classes, act, residual),
        num_classes=num_classes,
    )


def conv_vae(z_dim: int = 20, channels: tuple[int, int] = (32, 64), hidden: int = 256, n_res: int = 0,
             shape: Shape = (1, 28, 28), num_classes: int = 0, act: Act = nn.ReLU) -> VAE:
    """A small convolutional VAE (chapter 7): :class:`ConvEncoder` + :class:`ConvDecoder`."""
    return VAE(
        ConvEncoder(shape, z_dim, channels, hidden, n_res, num_classes, act),
        ConvDecoder(shape, z_dim, channels, hidden, n_res, num_classes, act),
        num_classes=num_classes,
    )


# --- a model whose evidence and posterior are known exactly (chapter 6) -------------------


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


# --- two gradient estimators (chapter 6) --------------------------------------------------


def reparam_grads(
    f: Callable[[torch.Tensor], torch.Tensor], mu: torch.Tensor, logvar: torch.Tensor, n: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``n`` single-sample reparameterised estimates of :math:`\nabla_{\mu,\log\sigma^2}\,\mathbb E_{q}[f(z)]` (chapter 6).

    With :math:`z = \mu + \sigma\varepsilon`: :math:`\nabla_\mu = f'(z)`,
    :math:`\nabla_{\log\sigma^2} = f'(z)\,\tfrac12\sigma\varepsilon` (Kingma & Welling, 2014).
    ``f`` maps ``(n, d) -> (n,)``; ``mu``, ``logvar`` are ``(d,)``. Returns two ``(n, d)`` tensors.
    """
    mu_ = mu.detach().expand(n, -1).clone().requires_grad_(True)  # (n, d)
    lv_ = logvar.detach().expand(n, -1).clone().requires_grad_(True)
    z = sample_normal_diag(mu_, lv_, generator)  # (n, d)
    g_mu, g_lv = torch.autograd.grad(f(z).sum(), (mu_, lv_))
    return g_mu, g_lv


def score_function_grads(
    f: Callable[[torch.Tensor], torch.Tensor], mu: torch.Tensor, logvar: torch.Tensor, n: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``n`` single-sample score-function (REINFORCE) estimates of the same gradient (chapter 6).

    .. math:: \nabla \mathbb E_q[f(z)] = \mathbb E_q\big[f(z)\,\nabla \log q(z)\big]

    (Williams, 1992). Needs only values of ``f``, not its derivative, and is
    unbiased too, but its variance is usually far larger. No baseline is used.
    """
    mu_ = mu.detach().expand(n, -1).clone().requires_grad_(True)  # (n, d)
    lv_ = logvar.detach().expand(n, -1).clone().requires_grad_(True)
    with torch.no_grad():
        z = sample_normal_diag(mu_, lv_, generator)  # no gradient through z
        fz = f(z)  # (n,)
    log_q = log_normal_diag(z, mu_, lv_, dim=1)  # (n,)
    g_mu, g_lv = torch.autograd.grad(log_q.sum(), (mu_, lv_))  # per-sample scores
    return fz[:, None] * g_mu, fz[:, None] * g_lv
