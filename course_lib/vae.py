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
the training loop is :func:`course_lib.train.fit`. Chapter 6's exact
linear-Gaussian model is in :mod:`course_lib.linear_gaussian`, its two gradient
estimators in :mod:`course_lib.estimators`. Every per-image quantity is
a *sum* over pixels and latent dimensions, in nats (never a mean over pixels:
dividing the reconstruction term by 784 and not the KL is a classic bug).
"""

from __future__ import annotations

from collections.abc import Sequence
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
from .vae_nets import (  # noqa: F401 (re-exported: course_lib.vae is the public home)
    Act,
    ConvDecoder,
    ConvEncoder,
    MaskedConv2d,
    MLPDecoder,
    MLPEncoder,
    PixelCNNDecoder,
    ResBlock,
    ResidualLinear,
    RowGRUDecoder,
    Shape,
    causal_mask,
    mlp_body,
)
from .vae_train import (  # noqa: F401 (re-exported)
    active_units,
    evaluate,
    iwae_nll,
    kl_warmup,
    make_vae_step,
    train_vae,
)
from .validate import check_unit_range

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

    With ``n_classes > 0`` it is a conditional VAE (Sohn et al., 2015): the
    encoder and decoder also see the one-hot label ``y``, and ``sample(n, y)``
    draws digits of the requested classes.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        likelihood: str = "bernoulli",
        decoder_logvar: float | None = None,
        n_classes: int = 0,
    ):
        super().__init__()
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}")
        if likelihood == "bernoulli" and decoder_logvar is not None:
            raise ValueError("decoder_logvar is only for likelihood='gaussian'.")
        self.encoder, self.decoder = encoder, decoder
        self.likelihood, self.n_classes = likelihood, n_classes
        self.z_dim = encoder.z_dim
        if likelihood == "gaussian":  # log sigma^2 of p(x | z), learned, shared by all pixels
            self.decoder_logvar = nn.Parameter(torch.tensor(0.0 if decoder_logvar is None else float(decoder_logvar)))

    # -- conditioning -----------------------------------------------------------------------
    def _cond(self, y: torch.Tensor | None, n: int) -> torch.Tensor | None:
        if self.n_classes == 0:
            if y is not None:
                raise ValueError("this VAE is not conditional (n_classes=0): do not pass y.")
            return None
        if y is None:
            raise ValueError(f"this conditional VAE needs labels y (ints in 0..{self.n_classes - 1}).")
        y = torch.as_tensor(y, device=self._device())
        if y.ndim == 0:
            y = y.expand(n)
        if y.shape != (n,) or y.min() < 0 or y.max() >= self.n_classes:
            raise ValueError(f"y must hold {n} ints in 0..{self.n_classes - 1}, got {tuple(y.shape)}")
        return F.one_hot(y.long(), self.n_classes).float()  # (B, n_classes)

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
            # pixels outside [0, 1] give a "log-likelihood" of any size and no error
            check_unit_range(x, "x (the data of a Bernoulli VAE)")
            return log_bernoulli(x, out, dim=dims)
        return log_normal_diag(x, out, self.decoder_logvar.expand_as(out), dim=dims)

    # -- bounds ---------------------------------------------------------------------------
    def elbo(
        self, x: torch.Tensor, y: torch.Tensor | None = None, generator: torch.Generator | None = None,
        q: tuple[torch.Tensor, torch.Tensor] | None = None, eps: torch.Tensor | None = None,
    ) -> ELBO:
        r"""The evidence lower bound per example, one reparameterised sample (chapter 6, eq. ELBO).

        .. math:: \mathcal L(x) = \mathbb E_{q(z\mid x)}[\log p(x \mid z)] - \mathrm{KL}(q(z \mid x)\,\|\,p(z))
                  \le \log p(x)

        The expectation is estimated with one sample :math:`z = \mu + \sigma\odot\varepsilon`;
        the KL is in closed form (:func:`~course_lib.distributions.gaussian_kl`).
        ``q = (mu, logvar)``, each ``(B, z_dim)``, replaces the encoder's output (a
        posterior fitted per image, chapter 7's amortisation gap). ``eps`` ``(B, z_dim)`` is the
        sample's standard normal noise, if drawn elsewhere (:func:`~course_lib.distributions.sample_normal_diag`).
        """
        mu, logvar = self.encode(x, y) if q is None else q  # (B, z_dim) each
        z = sample_normal_diag(mu, logvar, generator, eps)  # (B, z_dim)
        log_px_z = self.log_likelihood(x, self.decode(z, y, x))  # (B,)
        kl = gaussian_kl(mu, logvar, dim=1)  # (B,)
        return ELBO(log_px_z - kl, log_px_z, kl)

    def loss(
        self, x: torch.Tensor, y: torch.Tensor | None = None, beta: float = 1.0, free_bits: float = 0.0,
        eps: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ELBO]:
        r"""The training loss: the negative beta-ELBO averaged over the batch, and the terms.

        .. math:: -\frac1B\sum_b \big(\mathbb E_q \log p(x_b\mid z) - \beta\,\mathrm{KL}(q(z\mid x_b)\,\|\,p(z))\big)

        ``beta = 1`` is the VAE; ``beta > 1`` the beta-VAE of Higgins et al. (2017);
        a ``beta`` ramping from 0 to 1 is KL warm-up (:func:`kl_warmup`, chapter 8).
        ``free_bits = lambda > 0`` replaces each latent dimension's batch-mean KL
        :math:`\mathrm{KL}_j` by :math:`\max(\lambda, \mathrm{KL}_j)` (Kingma et al., 2016): the
        encoder is not pushed below lambda nats per dimension, against posterior collapse.
        The returned terms are always the true ELBO terms. ``eps`` is as in :meth:`elbo`.
        """
        if free_bits < 0:
            raise ValueError(f"free_bits must be >= 0, got {free_bits}")
        if free_bits == 0:
            terms = self.elbo(x, y, eps=eps)
            return -(terms.log_px_z - beta * terms.kl).mean(), terms
        mu, logvar = self.encode(x, y)
        z = sample_normal_diag(mu, logvar, eps=eps)
        log_px_z = self.log_likelihood(x, self.decode(z, y, x))  # (B,)
        kl_dims = gaussian_kl(mu, logvar)  # (B, z_dim)
        kl_floor = torch.clamp(kl_dims.mean(0), min=free_bits).sum()  # sum_j max(lambda, KL_j)
        kl = kl_dims.sum(1)
        return -(log_px_z.mean() - beta * kl_floor), ELBO(log_px_z - kl, log_px_z, kl)

    def log_weights(
        self, x: torch.Tensor, k: int, y: torch.Tensor | None = None, generator: torch.Generator | None = None,
        chunk: int | None = None, q: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        r"""Importance log-weights :math:`\log p(x, z_i) - \log q(z_i \mid x)`, ``(k, B)``, :math:`z_i \sim q(z\mid x)`.

        ``chunk`` bounds how many samples are decoded at once (memory); ``q = (mu, logvar)``
        replaces the encoder as the proposal (any q gives a valid bound).
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        mu, logvar = self.encode(x, y) if q is None else q  # (B, z_dim)
        chunk = chunk or max(1, min(k, 1_000 // max(1, len(x))))  # ~1,000 images per decode: past that, memory-bound
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
        chunk: int | None = None, q: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        r"""The importance-weighted bound of Burda et al. (2016), per example ``(B,)`` (chapter 7).

        .. math:: \mathcal L_k(x) = \mathbb E\Big[\log \frac1k \sum_{i=1}^k \frac{p(x, z_i)}{q(z_i\mid x)}\Big],
                  \quad \mathcal L_1 = \mathcal L \le \mathcal L_k \le \mathcal L_{k+1} \le \log p(x)

        and :math:`\mathcal L_k \to \log p(x)` as :math:`k \to \infty`, so
        ``-iwae_bound(x, 5000)`` estimates the negative log-likelihood. ``q``: as in :meth:`log_weights`.
        """
        return log_mean_exp(self.log_weights(x, k, y, generator, chunk, q), dim=0)

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
        """The mean of p(x | z) (``sigmoid(logits)`` for Bernoulli), or a draw from it.

        An autoregressive decoder generates its logits with each pixel's mean fed back as the
        next pixels' context, so ``mean=False`` then draws every pixel given those means, not
        one joint sample of p(x | z)."""
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


def mlp_vae(z_dim: int = 20, hidden: Sequence[int] = (400,), shape: Shape = (1, 28, 28), n_classes: int = 0,
            act: Act = nn.ReLU, residual: bool = False) -> VAE:
    """An MLP VAE, by default the 784-400-20 ReLU model of ``pytorch/examples`` (chapter 7).

    Kingma & Welling (2014) used a different MLP: 500 tanh hidden units, Adagrad and
    batches of 100 (``hidden=(500,), act=nn.Tanh`` builds their network).
    """
    return VAE(
        MLPEncoder(shape, z_dim, hidden, n_classes, act, residual),
        MLPDecoder(shape, z_dim, tuple(reversed(hidden)), n_classes, act, residual),
        n_classes=n_classes,
    )


def conv_vae(z_dim: int = 20, channels: tuple[int, int] = (32, 64), hidden: int = 256, n_res: int = 0,
             shape: Shape = (1, 28, 28), n_classes: int = 0, act: Act = nn.ReLU) -> VAE:
    """A small convolutional VAE (chapter 7): :class:`ConvEncoder` + :class:`ConvDecoder`."""
    return VAE(
        ConvEncoder(shape, z_dim, channels, hidden, n_res, n_classes, act),
        ConvDecoder(shape, z_dim, channels, hidden, n_res, n_classes, act),
        n_classes=n_classes,
    )


def pixel_vae(z_dim: int = 20, channels: tuple[int, int] = (32, 64), hidden: int = 256, n_res: int = 0,
              shape: Shape = (1, 28, 28), n_classes: int = 0, act: Act = nn.ReLU, width: int = 16,
              layers: int = 2) -> VAE:
    """:func:`conv_vae` with a :class:`PixelCNNDecoder`: a PixelVAE in miniature (Gulrajani et al., 2017; chapter 7)."""
    return VAE(
        ConvEncoder(shape, z_dim, channels, hidden, n_res, n_classes, act),
        PixelCNNDecoder(shape, z_dim, channels, hidden, n_res, n_classes, act, width, layers),
        n_classes=n_classes,
    )
