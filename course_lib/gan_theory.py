r"""Analytic GAN results in one dimension, and the Dirac-GAN (chapter 2).

Everything here is exact up to quadrature on a fine float64 grid, so chapter 2 can
check the theory of Goodfellow et al. (2014), Arjovsky & Bottou (2017) and
Mescheder et al. (2018) to many digits, and compare trained networks with it.

* :func:`generator_gradients`: the gradient the generator gets from the optimal
  discriminator :math:`D^*`, held fixed, for the saturating and the
  non-saturating loss (they differ by orders of magnitude far from the data).
* :func:`kl_minus_2jsd`, :func:`ns_objective`, :func:`theorem_2_5_gap`: under
  :math:`D^*` the non-saturating generator loss follows the gradient of
  :math:`\mathrm{KL}(p_g\|p_\text{data}) - 2\,\mathrm{JSD}(p_\text{data}\|p_g)`
  (Arjovsky & Bottou, 2017, theorem 2.5).
* :func:`best_gaussian_jsd`, :func:`best_polynomial_logit`: what an affine
  generator :math:`G(z) = \mu + \sigma z` and a linear discriminator logit
  :math:`l(x) = wx + b` can and cannot represent.
* :func:`dirac_gan`: the two-parameter game of Mescheder et al. (2018) that
  gradient descent circles instead of solving, unless R1 regularises it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.distributions import Normal

Tensor = torch.Tensor
F64 = torch.float64

# pointwise generator losses of a logit l (chapter 2): their batch means are
# gan.g_loss_saturating and gan.g_loss_nonsaturating (tests/test_gan_theory.py ties them)
POINTWISE_G_LOSSES: dict[str, Callable[[Tensor], Tensor]] = {
    "saturating": lambda logit: -F.softplus(logit),  # log(1 - sigmoid(l))
    "non_saturating": lambda logit: F.softplus(-logit),  # -log sigmoid(l)
}


def grid(lo: float = -30.0, hi: float = 30.0, n: int = 30_001) -> Tensor:
    """A float64 quadrature grid ``(n,)``; the default resolves unit-width Gaussians to ~1e-12."""
    return torch.linspace(lo, hi, n, dtype=F64)


def _normal(mu, sigma) -> Normal:
    return Normal(torch.as_tensor(mu, dtype=F64), torch.as_tensor(sigma, dtype=F64))


def expect(density: Tensor, values: Tensor, xs: Tensor) -> Tensor:
    r""":math:`\int p(x) f(x)\,dx` by the trapezoidal rule; ``density``, ``values``, ``xs`` are ``(n,)``."""
    return torch.trapezoid(density * values, xs)


def kl(log_p: Tensor, log_q: Tensor, xs: Tensor) -> Tensor:
    r""":math:`\mathrm{KL}(p\|q) = \int p \log(p/q)` from log-densities on the grid ``xs`` (chapter 1)."""
    p = log_p.exp()
    return expect(p, torch.where(p > 0, log_p - log_q, torch.zeros_like(p)), xs)


def jsd(log_p: Tensor, log_q: Tensor, xs: Tensor) -> Tensor:
    r""":math:`\mathrm{JSD}(p\|q) = \tfrac12\mathrm{KL}(p\|m) + \tfrac12\mathrm{KL}(q\|m)`, :math:`m = \tfrac12(p+q)`, in nats (chapter 2)."""
    log_m = torch.logaddexp(log_p, log_q) - math.log(2)
    return 0.5 * kl(log_p, log_m, xs) + 0.5 * kl(log_q, log_m, xs)


def generator_gradients(
    mu_g: float, sigma_g: float = 1.0, mu_data: float = 0.0, sigma_data: float = 1.0, xs: Tensor | None = None,
) -> dict[str, float]:
    r"""The gradient :math:`\partial \mathcal L_G / \partial \mu_g` under the optimal discriminator, held fixed (chapter 2).

    For :math:`p_\text{data} = \mathcal N(\mu_\text{data}, \sigma_\text{data}^2)` and
    :math:`p_g = \mathcal N(\mu_g, \sigma_g^2)`, with the optimal logit
    :math:`l^*(x) = \log p_\text{data}(x) - \log p_g(x)` frozen at the current generator
    (the generator step of the game: D does not move while G takes its step),

    .. math:: \text{saturating: } \frac{\partial}{\partial\mu_g}\mathbb E_{p_g}[\log(1 - D^*(x))], \qquad
              \text{non-saturating: } \frac{\partial}{\partial\mu_g}\mathbb E_{p_g}[-\log D^*(x)].

    By the envelope theorem the saturating one is also :math:`dC/d\mu_g` with
    :math:`C(G) = -\log 4 + 2\,\mathrm{JSD}` (Goodfellow et al., 2014), so it vanishes
    with the JSD's slope once the supports barely overlap (Arjovsky & Bottou, 2017);
    the non-saturating one does not. Returns ``{"saturating": ..., "non_saturating": ...}``.
    """
    xs = grid() if xs is None else xs
    mu = torch.tensor(float(mu_g), dtype=F64, requires_grad=True)
    logit = _normal(mu_data, sigma_data).log_prob(xs) - _normal(mu_g, sigma_g).log_prob(xs)  # (n,) frozen l*
    out = {}
    for name, loss in POINTWISE_G_LOSSES.items():
        density = _normal(mu, sigma_g).log_prob(xs).exp()  # (n,) p_g, differentiable in mu
        (g,) = torch.autograd.grad(expect(density, loss(logit), xs), mu)
        out[name] = g.item()
    return out


def generator_gradient_mc(
    logit_fn: Callable[[Tensor], Tensor], mu_g: float, sigma_g: float, z: Tensor,
    g_loss: Callable[[Tensor], Tensor],
) -> float:
    r"""Monte Carlo :math:`\partial \mathcal L_G/\partial\mu_g` through a discriminator ``logit_fn`` (chapter 2).

    The fakes are reparameterised, :math:`x = \mu_g + \sigma_g z` with ``z`` ``(N, 1)``,
    ``logit_fn`` maps ``(N, 1)`` to logits ``(N,)`` or ``(N, 1)`` and is not updated,
    ``g_loss`` is a batch loss of :mod:`course_lib.gan` (e.g. ``g_loss_nonsaturating``).
    With a trained discriminator this is the gradient the generator actually gets;
    chapter 2 compares it with :func:`generator_gradients`.
    """
    mu = torch.tensor(float(mu_g), requires_grad=True)
    x = mu + sigma_g * z  # (N, 1)
    (g,) = torch.autograd.grad(g_loss(logit_fn(x).reshape(-1)), mu)
    return g.item()


def ns_objective(
    mu_g: Tensor, sigma_g: Tensor, frozen: tuple[float, float], mu_data: float = 0.0, sigma_data: float = 1.0,
    xs: Tensor | None = None,
) -> Tensor:
    r""":math:`\mathbb E_{p_g}[-\log D^*_{\theta_0}(x)]`, the non-saturating generator loss under a frozen :math:`D^*` (chapter 2).

    :math:`p_g = \mathcal N(\mu_g, \sigma_g^2)` (tensors, differentiable); the optimal
    discriminator is that of the generator ``frozen = (mu_0, sigma_0)``.
    """
    xs = grid() if xs is None else xs
    logit = _normal(mu_data, sigma_data).log_prob(xs) - _normal(*frozen).log_prob(xs)  # (n,) l* of theta_0
    density = Normal(mu_g, sigma_g).log_prob(xs).exp()
    return expect(density, POINTWISE_G_LOSSES["non_saturating"](logit), xs)


def kl_minus_2jsd(
    mu_g: Tensor, sigma_g: Tensor, mu_data: float = 0.0, sigma_data: float = 1.0, xs: Tensor | None = None,
) -> Tensor:
    r""":math:`\mathrm{KL}(p_g\|p_\text{data}) - 2\,\mathrm{JSD}(p_\text{data}\|p_g)` (Arjovsky & Bottou, 2017, thm 2.5; chapter 2).

    Under :math:`D^*` the non-saturating loss has the gradient of this divergence:
    a reverse KL (mode seeking) minus a JSD that *rewards* moving away from the data.
    """
    xs = grid() if xs is None else xs
    log_pg = Normal(mu_g, sigma_g).log_prob(xs)
    log_pd = _normal(mu_data, sigma_data).log_prob(xs)
    return kl(log_pg, log_pd, xs) - 2 * jsd(log_pd, log_pg, xs)


def theorem_2_5_gap(
    divergence: Callable[..., Tensor], mu_g: float, sigma_g: float, mu_data: float = 0.0, sigma_data: float = 1.0,
) -> float:
    r"""Largest gap between :math:`\nabla_{(\mu_g, \sigma_g)}` of ``divergence`` and of :func:`ns_objective` (chapter 2).

    ``divergence(mu_g, sigma_g, mu_data, sigma_data)`` is a candidate for the
    divergence the non-saturating loss descends under :math:`D^*`; theorem 2.5 of
    Arjovsky & Bottou (2017) says :func:`kl_minus_2jsd` gives a gap of 0 (up to
    quadrature). The gradients are taken at the frozen generator itself.
    """
    xs = grid()
    theta = [torch.tensor(float(v), dtype=F64, requires_grad=True) for v in (mu_g, sigma_g)]
    g_ns = torch.autograd.grad(ns_objective(*theta, (mu_g, sigma_g), mu_data, sigma_data, xs), theta)
    g_div = torch.autograd.grad(divergence(*theta, mu_data, sigma_data), theta)
    return max(abs(a.item() - b.item()) for a, b in zip(g_ns, g_div))


def best_gaussian_jsd(log_target: Callable[[Tensor], Tensor], mu0: float = 0.0, sigma0: float = 1.0,
                      xs: Tensor | None = None) -> tuple[float, float, float]:
    r"""The smallest :math:`\mathrm{JSD}(p\,\|\,\mathcal N(\mu, \sigma^2))` over :math:`(\mu, \sigma)` (chapter 2).

    An affine generator :math:`G(z) = \mu + \sigma z` of noise :math:`z \sim \mathcal N(0, 1)`
    can only produce :math:`\mathcal N(\mu, \sigma^2)`: this is the best any such generator
    can do against ``log_target`` (a log-density of ``(n,)`` points). L-BFGS on
    :math:`(\mu, \log\sigma)`; returns ``(jsd, mu, sigma)``.
    """
    xs = grid(-20.0, 20.0, 40_001) if xs is None else xs
    log_p = log_target(xs)
    params = torch.tensor([mu0, math.log(sigma0)], dtype=F64, requires_grad=True)
    opt = torch.optim.LBFGS([params], max_iter=200, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-12, tolerance_change=1e-15)

    def closure():
        opt.zero_grad()
        loss = jsd(log_p, Normal(params[0], params[1].exp()).log_prob(xs), xs)
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        value = jsd(log_p, Normal(params[0], params[1].exp()).log_prob(xs), xs).item()
    return value, params[0].item(), params[1].exp().item()


def best_polynomial_logit(
    log_p_data: Tensor, log_p_g: Tensor, xs: Tensor, degree: int,
) -> tuple[Tensor, float]:
    r"""The discriminator logit :math:`l(x) = \sum_{k \le \text{degree}} c_k x^k` that maximises :math:`V(D, G)` (chapter 2).

    .. math:: V = \int p_\text{data} \log\sigma(l) + p_g \log(1 - \sigma(l))\,dx,

    computed by quadrature on ``xs`` (so with infinitely many samples), maximised by
    L-BFGS. ``degree=1`` is a linear discriminator :math:`D(x) = \sigma(wx + b)`;
    ``degree=2`` can represent :math:`l^* = \log p_\text{data} - \log p_g` of two
    Gaussians exactly. Returns the coefficients ``(degree + 1,)`` (constant first) and
    the value :math:`V`, at most :math:`C(G) = -\log 4 + 2\,\mathrm{JSD}`.
    """
    pd, pg = log_p_data.exp(), log_p_g.exp()
    powers = torch.stack([xs**k for k in range(degree + 1)], 1)  # (n, degree + 1)
    coef = torch.zeros(degree + 1, dtype=F64, requires_grad=True)
    opt = torch.optim.LBFGS([coef], max_iter=500, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-12, tolerance_change=1e-15)

    def value() -> Tensor:
        logit = powers @ coef  # (n,)
        return expect(pd, -F.softplus(-logit), xs) + expect(pg, -F.softplus(logit), xs)

    def closure():
        opt.zero_grad()
        loss = -value()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return coef.detach().clone(), value().item()


def dirac_gan(
    theta0: float, psi0: float, steps: int, lr: float, *, alternating: bool = False, r1_gamma: float = 0.0,
) -> Tensor:
    r"""Gradient descent on the Dirac-GAN of Mescheder et al. (2018, section 2.1); chapter 2.

    Data :math:`p_\text{data} = \delta_0`, generator :math:`p_g = \delta_\theta`, linear
    discriminator :math:`D(x) = \psi x` (a logit), and the GAN loss
    :math:`f(t) = -\log(1 + e^{-t})`:

    .. math:: L(\theta, \psi) = f(\psi\theta) + f(0), \qquad \min_\theta \max_\psi L .

    The only equilibrium is :math:`(\theta, \psi) = (0, 0)`. With
    :math:`f'(t) = \sigma(-t)` the updates are
    :math:`\theta \leftarrow \theta - h\,\psi f'(\psi\theta)` and
    :math:`\psi \leftarrow \psi + h\,(\theta f'(\psi\theta) - \gamma\psi)`, where
    :math:`\gamma\psi = \nabla_\psi \tfrac\gamma2 R_1` and :math:`R_1 = \|\nabla_x D\|^2 = \psi^2` on the data.
    ``alternating=False`` updates both from the same point (simultaneous: each step
    multiplies :math:`\theta^2 + \psi^2` by :math:`1 + h^2 f'(\psi\theta)^2` when
    :math:`\gamma = 0`, so it spirals out); ``alternating=True`` updates :math:`\theta`
    first and :math:`\psi` at the new :math:`\theta` (it circles and does not converge).
    Returns the trajectory ``(steps + 1, 2)`` of :math:`(\theta, \psi)`.
    """
    theta, psi = float(theta0), float(psi0)
    traj = [(theta, psi)]

    def fprime(t: float) -> float:
        return 1.0 / (1.0 + math.exp(t))  # sigma(-t)

    for _ in range(steps):
        new_theta = theta - lr * psi * fprime(psi * theta)
        th = new_theta if alternating else theta
        psi = psi + lr * (th * fprime(psi * th) - r1_gamma * psi)
        theta = new_theta
        traj.append((theta, psi))
    return torch.tensor(traj, dtype=F64)  # (steps + 1, 2)
