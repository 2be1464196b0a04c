"""Losses and layers that fight mode collapse and unstable GAN training (chapter 5).

Losses take critic outputs (unbounded scores, "logits"), like :mod:`course_lib.gan`:

* Wasserstein GAN (Arjovsky et al., 2017): :func:`wasserstein_d_loss`, :func:`wasserstein_g_loss`,
  with the Lipschitz constraint by :func:`clip_weights` (the paper's) or by the gradient
  penalty of WGAN-GP (Gulrajani et al., 2017): :func:`gradient_penalty`;
* hinge loss (Lim & Ye, 2017; Miyato et al., 2018): :func:`hinge_d_loss`, :func:`hinge_g_loss`;
* spectral normalisation (Miyato et al., 2018): :func:`spectral_normalise`, through
  ``torch.nn.utils.parametrizations.spectral_norm``;
* PacGAN packing (Lin et al., 2018): :func:`pack`; the minibatch standard deviation layer
  (Karras et al., 2018): :class:`MinibatchStd`;
* the unrolled GAN (Metz et al., 2017): :func:`unrolled_critic`, the critic after k steps of
  its own optimisation, differentiable in the generator's samples.

The R1 penalty (Mescheder et al., 2018) is :func:`course_lib.gan.r1_penalty`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call
from torch.nn.utils.parametrizations import spectral_norm


def _check_scores(*scores: torch.Tensor) -> None:
    for s in scores:
        if s.ndim != 1:
            raise ValueError(f"critic scores must be one per sample, shape (B,), got {tuple(s.shape)}")


def wasserstein_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    r"""The critic's loss of the Wasserstein GAN (Arjovsky et al., 2017, algorithm 1).

    .. math:: \mathcal L_D = \mathbb E_z[f(G(z))] - \mathbb E_x[f(x)]

    Minimising it over 1-Lipschitz critics :math:`f` gives minus the Wasserstein-1 distance
    (Kantorovich-Rubinstein duality); without a Lipschitz constraint it is unbounded below.
    """
    _check_scores(real_scores, fake_scores)
    return fake_scores.mean() - real_scores.mean()


def wasserstein_g_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    r"""The generator's Wasserstein loss :math:`-\mathbb E_z[f(G(z))]` (Arjovsky et al., 2017)."""
    _check_scores(fake_scores)
    return -fake_scores.mean()


def hinge_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    r"""The discriminator's hinge loss (Lim & Ye, 2017; Miyato et al., 2018, eq. 17).

    .. math:: \mathcal L_D = \mathbb E_x[\max(0, 1 - f(x))] + \mathbb E_z[\max(0, 1 + f(G(z)))]
    """
    _check_scores(real_scores, fake_scores)
    return torch.relu(1 - real_scores).mean() + torch.relu(1 + fake_scores).mean()


def hinge_g_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    r"""The generator's loss with the hinge discriminator, :math:`-\mathbb E_z[f(G(z))]`."""
    _check_scores(fake_scores)
    return -fake_scores.mean()


def gradient_penalty(
    critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, *args,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""The WGAN-GP penalty (Gulrajani et al., 2017, eq. 3), without its weight :math:`\lambda`.

    .. math:: \mathbb E_{\hat x}\big[(\|\nabla_{\hat x} f(\hat x)\|_2 - 1)^2\big],\qquad
              \hat x = \epsilon x + (1 - \epsilon)\,\tilde x,\quad \epsilon \sim U[0, 1]

    with one :math:`\epsilon` per pair of a real :math:`x` and a fake :math:`\tilde x`. The norm
    is taken **per sample**, over every dimension but the batch: the norm of the whole batch's
    gradient, or one over the batch dimension, is the classic bug (the test shows both give
    other values). ``fake`` is detached here; ``args`` go to the critic (e.g. labels). The
    result keeps the graph, so the critic's loss can be differentiated through it.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} must have the same shape")
    eps = torch.rand((len(real),) + (1,) * (real.ndim - 1), generator=generator).to(real)  # (B, 1, ...)
    mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed, *args).sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()  # one norm per sample


@torch.no_grad()
def clip_weights(module: nn.Module, c: float = 0.01) -> None:
    """Clamp every parameter of ``module`` to [-c, c] in place: the original WGAN's way to keep
    the critic Lipschitz (Arjovsky et al., 2017, algorithm 1, c = 0.01); call it after each
    critic step."""
    if not c > 0:
        raise ValueError(f"c must be positive, got {c}")
    for p in module.parameters():
        p.clamp_(-c, c)


def spectral_normalise(module: nn.Module) -> nn.Module:
    """Spectral normalisation of every ``Linear`` and ``Conv`` layer of ``module``, in place
    (Miyato et al., 2018): each weight is divided by its largest singular value, estimated by
    one power iteration per forward pass in training mode, so each layer, and with 1-Lipschitz
    activations the whole network, is (about) 1-Lipschitz. Returns ``module``."""
    for name, child in list(module.named_children()):
        if isinstance(child, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)):
            setattr(module, name, spectral_norm(child))
        else:
            spectral_normalise(child)
    return module


def pack(x: torch.Tensor, m: int) -> torch.Tensor:
    """PacGAN packing (Lin et al., 2018): ``m`` consecutive samples become one input to D.

    ``x (B, ...)`` with ``B`` a multiple of ``m`` becomes ``(B // m, m * d)``, samples
    ``m*i .. m*i + m - 1`` concatenated along the features. D then judges a sample of the
    product distribution :math:`p^m`, in which a missing mode is m times as easy to see.
    """
    if m < 1 or len(x) % m:
        raise ValueError(f"the batch ({len(x)}) must be a multiple of the packing degree m={m}")
    return x.reshape(len(x) // m, -1)


class MinibatchStd(nn.Module):
    """Minibatch standard deviation (Karras et al., 2018, section 3): append to each sample's
    features the mean over features of the standard deviation over the batch (or over groups
    of ``group`` samples), so D can see a batch that is too uniform. ``(B, d) -> (B, d + 1)``."""

    def __init__(self, group: int = 0):
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, d)
        b = len(x)
        g = self.group or b
        if b % g:
            raise ValueError(f"the batch ({b}) must be a multiple of the group size {g}")
        groups = x.reshape(b // g, g, -1)  # (B/g, g, d)
        std = groups.var(dim=1, unbiased=False).add(1e-8).sqrt().mean(dim=1)  # (B/g,)
        return torch.cat([x.flatten(1), std.repeat_interleave(g)[:, None]], dim=1)  # (B, d + 1)


def unrolled_critic(
    critic: nn.Module, d_loss_fn, real: torch.Tensor, fake: torch.Tensor, k: int = 5, lr: float = 1e-3,
):
    r"""The critic unrolled ``k`` steps ahead, as a function (Metz et al., 2017, eq. 5-7).

    Starting from the critic's parameters :math:`\theta_D^0`, take ``k`` gradient steps on
    ``d_loss_fn(critic(real), critic(fake))``,

    .. math:: \theta_D^{i+1} = \theta_D^i - \eta\,\nabla_{\theta_D}\mathcal L_D(\theta_D^i, G),

    keeping the graph (``create_graph=True``), so that a generator loss on the returned
    function, :math:`f(\,\cdot\,; \theta_D^k)`, is differentiated *through* the critic's
    response to the generator: the generator sees where D will move, and a G step that piles
    onto one mode (which D would punish next) no longer pays. ``fake`` must keep its graph to
    G. The steps are plain gradient descent (the paper unrolls Adam); the critic module's own
    parameters are not changed. Returns ``f(x) -> scores`` for ``functional_call``.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1 unrolling step, got {k}")
    params = dict(critic.named_parameters())
    for _ in range(k):
        loss = d_loss_fn(functional_call(critic, params, (real,)), functional_call(critic, params, (fake,)))
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
        params = {name: p - lr * g for (name, p), g in zip(params.items(), grads)}
    return lambda x: functional_call(critic, params, (x,))
