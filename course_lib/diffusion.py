r"""Diffusion models and flow matching: the formulas, the samplers and the edits (chapter 14).

**DDPM** (Ho et al., 2020, "Denoising diffusion probabilistic models"). A :class:`Schedule`
holds :math:`\beta_1, \dots, \beta_T`; the forward chain
:math:`q(x_t \mid x_{t-1}) = \mathcal N(\sqrt{1 - \beta_t}\, x_{t-1}, \beta_t I)` has the
closed-form marginal (:func:`q_sample`)

.. math:: q(x_t \mid x_0) = \mathcal N\big(\sqrt{\bar\alpha_t}\, x_0, (1 - \bar\alpha_t) I\big),
   \qquad \alpha_t = 1 - \beta_t,\ \bar\alpha_t = \textstyle\prod_{s \le t} \alpha_s .

The ELBO's term :math:`L_{t-1} = \mathrm{KL}(q(x_{t-1} \mid x_t, x_0) \,\|\, p_\theta(x_{t-1}
\mid x_t))` with the mean parameterised by a noise prediction :math:`\hat\epsilon` is
:math:`\lambda_t \lVert \epsilon - \hat\epsilon \rVert^2`, :math:`\lambda_t = \beta_t^2 /
(2 \sigma_t^2 \alpha_t (1 - \bar\alpha_t))` (:func:`elbo_weight`, checked against
:func:`posterior_kl`); Ho et al. drop :math:`\lambda_t` (:func:`eps_loss`, the "simple" loss).
Arrays are indexed by :math:`t = 0, \dots, T` directly (index 0 is :math:`\bar\alpha_0 = 1`),
so the code reads like the paper. Samplers: ancestral (:func:`ddpm_sample`) and DDIM
(Song et al., 2021, :func:`ddim_sample`), both on any subsequence of the T steps
(:func:`respace`, Nichol & Dhariwal, 2021).

**Flow matching** (Lipman et al., 2023; rectified flow, Liu et al., 2023): noise
:math:`x_0 \sim \mathcal N(0, I)` and data :math:`x_1` on the straight path
:math:`x_t = (1 - t) x_0 + t x_1` (:func:`fm_path`); a network regresses the velocity
:math:`x_1 - x_0` (:func:`fm_loss`), whose minimiser is the marginal velocity field
:math:`u(x, t) = \mathbb E[x_1 - x_0 \mid x_t = x]` (exact for a 1-D Gaussian mixture in
:func:`mixture_velocity`); sampling integrates :math:`\dot x = u(x, t)` from t = 0 to 1
(:func:`euler_sample`, :func:`heun_sample`).

**Guidance and edits**: classifier-free guidance (Ho & Salimans, 2022, :func:`guided`),
inpainting by RePaint (Lugmayr et al., 2022, :func:`repaint`) and SDEdit (Meng et al., 2022,
:func:`sdedit`). Networks are called ``net(x, t, labels)`` with ``t (B,)`` in [0, 1]
(:class:`course_lib.blocks.TimeUNet`); for DDPM, ``t`` is the step over T.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

Net = Callable[..., torch.Tensor]  # net(x (B, ...), t (B,) in [0, 1], labels (B,) | None) -> like x


# --- the DDPM forward process ------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    r"""A noise schedule: ``betas (T + 1,)`` with ``betas[0] = 0`` so that ``betas[t]`` is
    :math:`\beta_t`; ``times (T + 1,)`` the network's time of each index in [0, 1] (``t / T``,
    or the original step's after :func:`respace`). The betas are float64: in float32,
    :math:`\bar\alpha_t / \bar\alpha_{t-1}` drifts from :math:`\alpha_t` by enough to show in
    the ELBO's terms; the formulas cast to the data's dtype."""

    betas: torch.Tensor
    times: torch.Tensor

    @property
    def T(self) -> int:  # noqa: N802 - the paper's name
        return len(self.betas) - 1

    @property
    def alphas(self) -> torch.Tensor:
        return 1.0 - self.betas

    @property
    def alpha_bar(self) -> torch.Tensor:
        r""":math:`\bar\alpha_t = \prod_{s=1}^t (1 - \beta_s)`, ``alpha_bar[0] = 1``."""
        return torch.cumprod(self.alphas, 0)


def schedule(kind: str = "linear", T: int = 1000) -> Schedule:  # noqa: N803
    r"""``"linear"``: :math:`\beta_t` from 1e-4 to 0.02 in T steps scaled by 1000/T (Ho et al.,
    2020); ``"cosine"``: :math:`\bar\alpha_t = f(t)/f(0)`, :math:`f(t) = \cos^2\big(\frac{t/T
    + s}{1 + s} \frac{\pi}{2}\big)`, s = 0.008, with :math:`\beta_t` clipped at 0.999 (Nichol &
    Dhariwal, 2021)."""
    if T < 1:
        raise ValueError(f"T={T}: give at least one step")
    if kind == "linear":
        scale = 1000.0 / T
        betas = torch.linspace(scale * 1e-4, scale * 0.02, T, dtype=torch.float64)
    elif kind == "cosine":
        s = 0.008
        f = torch.cos((torch.arange(T + 1, dtype=torch.float64) / T + s) / (1 + s) * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    else:
        raise ValueError(f"kind={kind!r}: choose 'linear' or 'cosine'")
    betas = torch.cat([torch.zeros(1, dtype=torch.float64), betas])
    return Schedule(betas, torch.arange(T + 1) / T)


def respace(sched: Schedule, steps: int) -> Schedule:
    r"""The same process seen at ``steps`` evenly spaced indices :math:`\tau_1 < \dots <
    \tau_S = T`: :math:`\beta'_i = 1 - \bar\alpha_{\tau_i} / \bar\alpha_{\tau_{i-1}}` keeps every
    :math:`\bar\alpha` (Nichol & Dhariwal, 2021), so a network trained on the T-step chain samples
    in S steps."""
    if not 1 <= steps <= sched.T:
        raise ValueError(f"steps={steps}: choose 1 to T = {sched.T}")
    idx = torch.linspace(0, sched.T, steps + 1).round().long()  # tau_0 = 0, ..., tau_S = T
    ab = sched.alpha_bar.double()[idx]
    betas = torch.cat([torch.zeros(1, dtype=torch.float64), 1 - ab[1:] / ab[:-1]])
    return Schedule(betas, sched.times[idx])


def _at(v: torch.Tensor, t: torch.Tensor | int, like: torch.Tensor) -> torch.Tensor:
    """``v[t]`` shaped to broadcast against ``like`` (B, ...)."""
    t = torch.as_tensor(t, device=v.device)
    out = v[t].to(like.device, like.dtype)
    return out.reshape(out.shape + (1,) * (like.ndim - out.ndim))


def q_sample(x0: torch.Tensor, t: torch.Tensor | int, sched: Schedule, eps: torch.Tensor) -> torch.Tensor:
    r""":math:`x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon`, a sample of
    :math:`q(x_t \mid x_0)` for ``t`` in 0..T (Ho et al., 2020, eq. 4)."""
    ab = _at(sched.alpha_bar, t, x0)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * eps


def q_posterior(x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor | int, sched: Schedule):
    r"""Mean and variance of :math:`q(x_{t-1} \mid x_t, x_0)` (Ho et al., eqs. 6-7), t >= 1:
    :math:`\tilde\mu = \frac{\sqrt{\bar\alpha_{t-1}}\beta_t}{1 - \bar\alpha_t} x_0 +
    \frac{\sqrt{\alpha_t}(1 - \bar\alpha_{t-1})}{1 - \bar\alpha_t} x_t`,
    :math:`\tilde\beta_t = \frac{1 - \bar\alpha_{t-1}}{1 - \bar\alpha_t} \beta_t`."""
    t = torch.as_tensor(t)
    ab, ab_prev = _at(sched.alpha_bar, t, x0), _at(sched.alpha_bar, t - 1, x0)
    beta, alpha = _at(sched.betas, t, x0), _at(sched.alphas, t, x0)
    mean = (ab_prev.sqrt() * beta * x0 + alpha.sqrt() * (1 - ab_prev) * xt) / (1 - ab)
    return mean, (1 - ab_prev) / (1 - ab) * beta


def predict_x0(xt: torch.Tensor, eps: torch.Tensor, t: torch.Tensor | int, sched: Schedule) -> torch.Tensor:
    r"""Tweedie's estimate :math:`\hat x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\,\hat\epsilon) /
    \sqrt{\bar\alpha_t}`: with :math:`\hat\epsilon = \mathbb E[\epsilon \mid x_t]` it is the
    posterior mean :math:`\mathbb E[x_0 \mid x_t]` (chapter 11's Tweedie formula)."""
    ab = _at(sched.alpha_bar, t, xt)
    return (xt - (1 - ab).sqrt() * eps) / ab.sqrt()


def gaussian_data_eps(xt: torch.Tensor, t: torch.Tensor | int, sched: Schedule, mean: float, std: float) -> torch.Tensor:
    r"""The exact :math:`\mathbb E[\epsilon \mid x_t]` when every coordinate of :math:`x_0` is
    :math:`\mathcal N(m, s^2)`: :math:`x_t = a x_0 + b \epsilon` (:math:`a = \sqrt{\bar\alpha_t}`,
    :math:`b = \sqrt{1 - \bar\alpha_t}`) is Gaussian with :math:`\mathrm{Cov}(\epsilon, x_t) = b`,
    so :math:`\mathbb E[\epsilon \mid x_t] = b (x_t - a m) / (a^2 s^2 + b^2)`. The ideal noise
    predictor of chapter 14's checks (samplers driven by it must return the data)."""
    ab = _at(sched.alpha_bar, t, xt)
    a, b = ab.sqrt(), (1 - ab).sqrt()
    return b * (xt - a * mean) / (a**2 * std**2 + b**2)


def model_mean(xt: torch.Tensor, eps: torch.Tensor, t: torch.Tensor | int, sched: Schedule) -> torch.Tensor:
    r""":math:`\mu_\theta(x_t, t) = \frac{1}{\sqrt{\alpha_t}}\big(x_t - \frac{\beta_t}
    {\sqrt{1 - \bar\alpha_t}} \hat\epsilon\big)` (Ho et al., eq. 11)."""
    ab, beta, alpha = _at(sched.alpha_bar, t, xt), _at(sched.betas, t, xt), _at(sched.alphas, t, xt)
    return (xt - beta / (1 - ab).sqrt() * eps) / alpha.sqrt()


def sigma2(sched: Schedule, t: torch.Tensor | int, kind: str = "beta") -> torch.Tensor:
    r"""The reverse step's variance :math:`\sigma_t^2`: ``"beta"`` :math:`\beta_t` or
    ``"posterior"`` :math:`\tilde\beta_t` (Ho et al. find both work; the first is their default)."""
    t = torch.as_tensor(t)
    if kind == "beta":
        return sched.betas[t]
    if kind == "posterior":
        ab = sched.alpha_bar
        return (1 - ab[(t - 1).clamp(min=0)]) / (1 - ab[t]) * sched.betas[t]
    raise ValueError(f"kind={kind!r}: choose 'beta' or 'posterior'")


def elbo_weight(sched: Schedule, t: torch.Tensor | int, kind: str = "beta") -> torch.Tensor:
    r""":math:`\lambda_t = \beta_t^2 / (2 \sigma_t^2 \alpha_t (1 - \bar\alpha_t))`: the ELBO term
    :math:`L_{t-1}` per unit of :math:`\lVert\epsilon - \hat\epsilon\rVert^2` (Ho et al., eq. 12)."""
    t = torch.as_tensor(t)
    return sched.betas[t] ** 2 / (2 * sigma2(sched, t, kind) * sched.alphas[t] * (1 - sched.alpha_bar[t]))


def posterior_kl(x0: torch.Tensor, xt: torch.Tensor, eps_hat: torch.Tensor, t: int, sched: Schedule,
                 kind: str = "beta") -> torch.Tensor:
    r""":math:`\mathrm{KL}(q(x_{t-1} \mid x_t, x_0) \,\|\, \mathcal N(\mu_\theta, \sigma_t^2 I))`
    per example, summed over dimensions, computed from the two Gaussians (the check of
    :func:`elbo_weight`)."""
    mean_q, var_q = q_posterior(x0, xt, t, sched)
    var_p = sigma2(sched, t, kind)
    d = x0[0].numel()
    mu = model_mean(xt, eps_hat, t, sched)
    sq = (mean_q - mu).flatten(1).pow(2).sum(1)
    return 0.5 * (d * (var_q.flatten()[0] / var_p - 1 - torch.log(var_q.flatten()[0] / var_p)) + sq / var_p)


def eps_loss(net: Net, x0: torch.Tensor, sched: Schedule, generator: torch.Generator | None = None,
             labels: torch.Tensor | None = None, weighted: bool = False) -> torch.Tensor:
    r"""The DDPM training loss: t uniform in 1..T, :math:`\epsilon \sim \mathcal N(0, I)`,
    :math:`\lVert\epsilon - \epsilon_\theta(x_t, t)\rVert^2` averaged over everything (Ho et al.'s
    :math:`L_\text{simple}`); ``weighted=True`` multiplies each example by :math:`\lambda_t`
    summed over pixels: T times a one-sample estimate of the ELBO's terms :math:`L_1..L_{T-1}`
    (up to constants)."""
    b = len(x0)
    t = torch.randint(1, sched.T + 1, (b,), generator=generator).to(x0.device)
    eps = torch.randn(x0.shape, generator=generator).to(x0.device, x0.dtype)
    err = (eps - net(q_sample(x0, t, sched, eps), sched.times[t].to(x0.device), labels)).pow(2)
    if weighted:
        return (elbo_weight(sched, t).to(x0.device, err.dtype) * err.flatten(1).sum(1)).mean()
    return err.mean()


# --- samplers ------------------------------------------------------------------------------------


def _noise(shape, generator, device) -> torch.Tensor:
    return torch.randn(shape, generator=generator).to(device)


def ddpm_step(net: Net, x: torch.Tensor, t: int, sched: Schedule, generator: torch.Generator | None = None,
              labels: torch.Tensor | None = None, variance: str = "beta", clip: float | None = None) -> torch.Tensor:
    r"""One ancestral step :math:`x_{t-1} = \mu_\theta(x_t, t) + \sigma_t z` (no noise at t = 1).
    ``clip``: the mean is :math:`\tilde\mu_t(\hat x_0, x_t)` with :math:`\hat x_0` clipped to
    [-clip, clip], the data's range (Ho et al.'s code does this for images; without clipping the
    two forms of the mean are equal)."""
    with torch.no_grad():
        eps = net(x, sched.times[t].expand(len(x)).to(x.device), labels)
    if clip is None:
        mean = model_mean(x, eps, t, sched)
    else:
        mean = q_posterior(predict_x0(x, eps, t, sched).clamp(-clip, clip), x, t, sched)[0]
    if t == 1:
        return mean
    return mean + sigma2(sched, t, variance).sqrt().item() * _noise(x.shape, generator, x.device)


@torch.no_grad()
def ddpm_sample(net: Net, shape: tuple[int, ...], sched: Schedule, generator: torch.Generator | None = None,
                labels: torch.Tensor | None = None, variance: str = "beta", device="cpu",
                clip: float | None = None) -> torch.Tensor:
    """Ancestral sampling from :math:`x_T \\sim \\mathcal N(0, I)` down the T steps of ``sched``
    (Ho et al., Algorithm 2); :func:`respace` it for fewer."""
    x = _noise(shape, generator, device)
    for t in range(sched.T, 0, -1):
        x = ddpm_step(net, x, t, sched, generator, labels, variance, clip)
    return x


def ddim_step(net: Net, x: torch.Tensor, t: int, s: int, sched: Schedule, eta: float = 0.0,
              generator: torch.Generator | None = None, labels: torch.Tensor | None = None,
              clip: float | None = None) -> torch.Tensor:
    r"""One DDIM step from index t to s < t (Song et al., 2021, eq. 12):
    :math:`x_s = \sqrt{\bar\alpha_s}\hat x_0 + \sqrt{1 - \bar\alpha_s - \sigma^2}\hat\epsilon +
    \sigma z`, :math:`\sigma = \eta \sqrt{(1 - \bar\alpha_s)/(1 - \bar\alpha_t)}
    \sqrt{1 - \bar\alpha_t/\bar\alpha_s}`; η = 0 is deterministic. ``clip``: :math:`\hat x_0`
    clipped to [-clip, clip] and :math:`\hat\epsilon` recomputed from it. Near t = T,
    :math:`\sqrt{\bar\alpha_t}` is tiny (cosine schedule: about 1e-5 at T = 1000), so the
    division amplifies any error of :math:`\hat\epsilon` by :math:`\sqrt{\bar\alpha_s/\bar\alpha_t}`
    in the first steps: clipping to the data's range is what keeps them finite."""
    with torch.no_grad():
        eps = net(x, sched.times[t].expand(len(x)).to(x.device), labels)
    ab_t, ab_s = sched.alpha_bar[t].item(), sched.alpha_bar[s].item()
    x0 = (x - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t)
    if clip is not None:
        x0 = x0.clamp(-clip, clip)
        eps = (x - math.sqrt(ab_t) * x0) / math.sqrt(1 - ab_t)
    sigma = eta * math.sqrt((1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s))
    x = math.sqrt(ab_s) * x0 + math.sqrt(max(1 - ab_s - sigma**2, 0.0)) * eps
    return x + sigma * _noise(x.shape, generator, x.device) if sigma > 0 else x


@torch.no_grad()
def ddim_sample(net: Net, shape: tuple[int, ...], sched: Schedule, steps: int = 50, eta: float = 0.0,
                generator: torch.Generator | None = None, labels: torch.Tensor | None = None,
                device="cpu", clip: float | None = None) -> torch.Tensor:
    """DDIM sampling in ``steps`` evenly spaced steps of ``sched`` (Song et al., 2021);
    ``clip`` as in :func:`ddim_step`."""
    if not 1 <= steps <= sched.T:
        raise ValueError(f"steps={steps}: choose 1 to T = {sched.T}")
    idx = torch.linspace(0, sched.T, steps + 1).round().long().tolist()
    x = _noise(shape, generator, device)
    for t, s in zip(idx[:0:-1], idx[-2::-1], strict=True):
        x = ddim_step(net, x, t, s, sched, eta, generator, labels, clip)
    return x


# --- flow matching -------------------------------------------------------------------------------


def fm_path(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    r"""The straight path :math:`x_t = (1 - t) x_0 + t x_1` (noise at t = 0, data at t = 1);
    its velocity is :math:`x_1 - x_0` (Lipman et al., 2023, with :math:`\sigma_\min = 0`;
    Liu et al., 2023)."""
    t = t.reshape(t.shape + (1,) * (x1.ndim - t.ndim)).to(x1.dtype)
    return (1 - t) * x0 + t * x1


def fm_loss(net: Net, x1: torch.Tensor, generator: torch.Generator | None = None,
            labels: torch.Tensor | None = None) -> torch.Tensor:
    r"""Conditional flow matching: t ~ U(0, 1), :math:`x_0 \sim \mathcal N(0, I)`,
    :math:`\lVert v_\theta(x_t, t) - (x_1 - x_0)\rVert^2` averaged over everything. Its
    minimiser is the marginal field :math:`\mathbb E[x_1 - x_0 \mid x_t]` (Lipman et al., thm. 2)."""
    t = torch.rand(len(x1), generator=generator).to(x1.device)
    x0 = torch.randn(x1.shape, generator=generator).to(x1.device, x1.dtype)
    return (net(fm_path(x0, x1, t), t, labels) - (x1 - x0)).pow(2).mean()


@torch.no_grad()
def euler_sample(net: Net, x0: torch.Tensor, steps: int = 20, labels: torch.Tensor | None = None,
                 t0: float = 0.0) -> torch.Tensor:
    r"""Euler's method for :math:`\dot x = v(x, t)` from ``t0`` to 1 in ``steps`` steps
    (one network call each)."""
    if steps < 1:
        raise ValueError(f"steps={steps}: give at least one")
    ts = torch.linspace(t0, 1.0, steps + 1)
    x = x0
    for a, b in zip(ts[:-1], ts[1:], strict=True):
        x = x + (b - a) * net(x, a.expand(len(x)).to(x.device), labels)
    return x


@torch.no_grad()
def heun_sample(net: Net, x0: torch.Tensor, steps: int = 10, labels: torch.Tensor | None = None,
                t0: float = 0.0) -> torch.Tensor:
    r"""Heun's method (Euler's step, then the trapezoid of the velocities at both ends; second
    order) from ``t0`` to 1 in ``steps`` steps: ``2 * steps`` network calls."""
    if steps < 1:
        raise ValueError(f"steps={steps}: give at least one")
    ts = torch.linspace(t0, 1.0, steps + 1)
    x = x0
    for a, b in zip(ts[:-1], ts[1:], strict=True):
        v = net(x, a.expand(len(x)).to(x.device), labels)
        x_euler = x + (b - a) * v
        x = x + (b - a) * 0.5 * (v + net(x_euler, b.expand(len(x)).to(x.device), labels))
    return x


def mixture_velocity(x: torch.Tensor, t: float | torch.Tensor, means, stds, weights) -> torch.Tensor:
    r"""The exact marginal velocity of the straight path for 1-D data
    :math:`\sum_k w_k \mathcal N(m_k, s_k^2)` and :math:`x_0 \sim \mathcal N(0, 1)`, at
    ``x (N,)`` and ``t`` in [0, 1] (a number or ``(N,)``): :math:`u = \sum_k P(k \mid x_t = x)\,
    \mathbb E[x_1 - x_0 \mid x_t = x, k]`. Component k has :math:`x_t \sim \mathcal N(t m_k, v_k)`,
    :math:`v_k = t^2 s_k^2 + (1 - t)^2`, and Gaussian conditioning gives
    :math:`\mathbb E[x_1 - x_0 \mid x_t = x, k] = (m_k (1 - t) + x (t s_k^2 - (1 - t))) / v_k`
    (:math:`m_k - x` at t = 0, x at t = 1)."""
    m, s, w = (torch.as_tensor(v, dtype=x.dtype) for v in (means, stds, weights))
    t = torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1)  # (N or 1, 1)
    var = t**2 * s**2 + (1 - t) ** 2  # (., K)
    logp = torch.log(w) - 0.5 * torch.log(2 * math.pi * var) - 0.5 * (x[:, None] - t * m) ** 2 / var  # (N, K)
    u = (m * (1 - t) + x[:, None] * (t * s**2 - (1 - t))) / var  # (N, K)
    return (torch.softmax(logp, dim=1) * u).sum(1)


def mixture_density(x: torch.Tensor, t: float, means, stds, weights) -> torch.Tensor:
    r"""The density :math:`p_t(x)` of the straight path's marginal for the 1-D mixture of
    :func:`mixture_velocity` (for the continuity-equation check
    :math:`\partial_t p + \partial_x (p u) = 0`)."""
    m, s, w = (torch.as_tensor(v, dtype=x.dtype) for v in (means, stds, weights))
    var = t**2 * s**2 + (1 - t) ** 2
    return (w * torch.exp(-0.5 * (x[:, None] - t * m) ** 2 / var) / torch.sqrt(2 * math.pi * var)).sum(1)


# --- guidance and editing ------------------------------------------------------------------------


def guided(net: Net, n_classes: int, scale: float) -> Net:
    r"""Classifier-free guidance (Ho & Salimans, 2022): the network
    :math:`(1 + w)\, f(x, t, c) - w\, f(x, t, \varnothing)` for a network trained with labels
    dropped to the "no class" label ``n_classes``; w = 0 is the conditional model. Works for a
    noise or a velocity prediction alike (both are affine in the score)."""

    def net_w(x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None or scale == 0:
            return net(x, t, labels)
        null = torch.full_like(labels, n_classes)
        both = net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, null]))
        cond, uncond = both.chunk(2)
        return (1 + scale) * cond - scale * uncond

    return net_w


@torch.no_grad()
def repaint(net: Net, y: torch.Tensor, mask: torch.Tensor, sched: Schedule, resample: int = 5,
            generator: torch.Generator | None = None, labels: torch.Tensor | None = None,
            clip: float | None = 1.0) -> torch.Tensor:
    r"""Inpainting with an unconditional DDPM (Lugmayr et al., 2022, RePaint): at each step the
    known pixels (``mask == 1``) are a fresh sample of :math:`q(x_{t-1} \mid y)`, the unknown ones
    the model's ancestral step; each step is repeated ``resample`` times, going back one step
    with :math:`q(x_t \mid x_{t-1})` between repeats so the two parts agree. ``y`` and the result
    are in the model's data range ([-1, 1] for ``clip=1``, as in :func:`ddpm_step`; ``None`` for
    other data); ``sched`` is usually :func:`respace`-d."""
    x = _noise(y.shape, generator, y.device)
    for t in range(sched.T, 0, -1):
        for u in range(resample):
            known = q_sample(y, t - 1, sched, _noise(y.shape, generator, y.device))
            x = mask * known + (1 - mask) * ddpm_step(net, x, t, sched, generator, labels, clip=clip)
            if u < resample - 1 and t > 1:  # back to x_t: one forward step
                beta = sched.betas[t].item()
                x = math.sqrt(1 - beta) * x + math.sqrt(beta) * _noise(y.shape, generator, y.device)
    return mask * y + (1 - mask) * x


@torch.no_grad()
def sdedit(net: Net, guide: torch.Tensor, strength: float, sched: Schedule, steps: int = 20,
           generator: torch.Generator | None = None, labels: torch.Tensor | None = None,
           clip: float | None = 1.0) -> torch.Tensor:
    r"""SDEdit (Meng et al., 2022): noise ``guide`` (a rough sketch, in the model's data range)
    to :math:`t_0 = ` ``strength`` × T with :math:`q(x_{t_0} \mid x_0)`, then denoise with
    DDIM (η = 0) in about ``steps * strength`` steps. Strength 0 returns the guide; 1 ignores it.
    ``clip`` as in :func:`ddim_step` (1 for images in [-1, 1], ``None`` for other data)."""
    if not 0 <= strength <= 1:
        raise ValueError(f"strength={strength}: choose a number in [0, 1]")
    t0 = round(strength * sched.T)
    if t0 == 0:
        return guide.clone()
    x = q_sample(guide, t0, sched, _noise(guide.shape, generator, guide.device))
    idx = torch.linspace(0, t0, max(1, round(steps * strength)) + 1).round().long().tolist()
    for t, s in zip(idx[:0:-1], idx[-2::-1], strict=True):
        x = ddim_step(net, x, t, s, sched, 0.0, generator, labels, clip)
    return x
