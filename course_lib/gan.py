r"""GANs: models, losses from logits and the correct alternating step (the trainer: :mod:`course_lib.gan_train`).

Derived in chapter 2 (theory) and used in chapters 3 (MLP GAN on MNIST) and 4
(DCGAN, conditional GAN). The game is the one of Goodfellow et al. (2014),

.. math:: \min_G \max_D\; V(D, G) = \mathbb E_{x\sim p_\text{data}}[\log D(x)]
          + \mathbb E_{z\sim p(z)}[\log(1 - D(G(z)))].

Conventions:

* A discriminator returns **logits** :math:`l(x)` of shape ``(B,)``, and
  :math:`D(x) = \sigma(l(x))`. Every loss is written with ``softplus`` on logits,
  using :math:`-\log\sigma(l) = \operatorname{softplus}(-l)` and
  :math:`-\log(1-\sigma(l)) = \operatorname{softplus}(l)`, so it never takes
  ``log(0)`` (chapter 3 shows what happens when it does).
* A generator maps :math:`z \sim \mathcal N(0, I)` of size ``latent_dim`` to
  images ``(B, C, H, W)`` in [0, 1], the range of the course data.
* Inside, the networks use the DCGAN convention (Radford et al., 2016): the
  generator ends in ``tanh`` (then mapped to [0, 1] by :func:`from_tanh`) and the
  discriminator first maps its [0, 1] input to [-1, 1] (:func:`to_tanh`), so both
  networks work with zero-centred pixels.
  ``sample(n)`` draws ``n`` images. Class-conditional models (``n_classes > 0``)
  take integer ``labels`` (Mirza & Osindero, 2014): the generator appends a learned
  label code to ``z``, the discriminator sees a one-hot label (MLP) or projects a
  class embedding onto its features (DCGAN; Miyato & Koyama, 2018).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .optim import optimizer_step

MNIST_SHAPE = (1, 28, 28)
LABEL_DIM = 10  # size of the generator's learned label code

# --- losses (chapter 2) --------------------------------------------------------------------


def _check_logits(*logits: torch.Tensor) -> None:
    for t in logits:
        if not torch.is_tensor(t) or not t.is_floating_point():
            raise TypeError(f"GAN losses take float logit tensors, got {type(t).__name__}")


def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, real_label: float = 1.0) -> torch.Tensor:
    r"""The discriminator's minimax loss, from logits (chapter 2; Goodfellow et al., 2014, eq. 1).

    .. math:: \mathcal L_D = -\mathbb E_x[\log D(x)] - \mathbb E_z[\log(1 - D(G(z)))]
              = \overline{\operatorname{softplus}(-l_\text{real})} + \overline{\operatorname{softplus}(l_\text{fake})}

    This is :math:`-V(D, G)`: minimising it maximises the value over D. Its
    minimum over all D, for fixed G, is :math:`\log 4 - 2\,\mathrm{JSD}(p_\text{data}\|p_g)`.
    ``real_label < 1`` gives one-sided label smoothing (Salimans et al., 2016):
    the real term becomes the cross-entropy with target ``real_label``.
    """
    _check_logits(real_logits, fake_logits)
    if real_label == 1.0:
        real_term = F.softplus(-real_logits).mean()
    else:
        target = torch.full_like(real_logits, real_label)
        real_term = F.binary_cross_entropy_with_logits(real_logits, target)
    return real_term + F.softplus(fake_logits).mean()


def gan_value(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    r"""Monte Carlo estimate of :math:`V(D, G) = \mathbb E[\log D(x)] + \mathbb E[\log(1-D(G(z)))]` (chapter 2).

    Equals ``-d_loss``. At the optimum :math:`p_g = p_\text{data}`, :math:`D^* = 1/2` and
    :math:`V = -\log 4`.
    """
    return -d_loss(real_logits, fake_logits)


def g_loss_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    r"""The generator's original minimax loss (chapter 2; Goodfellow et al., 2014, eq. 1).

    .. math:: \mathcal L_G^\text{sat} = \mathbb E_z[\log(1 - D(G(z)))] = -\overline{\operatorname{softplus}(l_\text{fake})}

    Its gradient with respect to the logit is :math:`-\sigma(l) = -D(G(z))`,
    which vanishes when D confidently rejects the fakes: early in training the
    generator barely learns ("saturation"). Use :func:`g_loss_nonsaturating`.
    """
    _check_logits(fake_logits)
    return -F.softplus(fake_logits).mean()


def g_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    r"""The non-saturating generator loss (chapter 2; Goodfellow et al., 2014, section 3).

    .. math:: \mathcal L_G^\text{NS} = -\mathbb E_z[\log D(G(z))] = \overline{\operatorname{softplus}(-l_\text{fake})}

    Same fixed point as the saturating loss, but its gradient with respect to
    the logit is :math:`-(1 - D(G(z)))`, close to :math:`-1` exactly when the
    generator is poor, so it learns fast where the saturating loss stalls.
    """
    _check_logits(fake_logits)
    return F.softplus(-fake_logits).mean()


G_LOSSES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "non_saturating": g_loss_nonsaturating,
    "saturating": g_loss_saturating,
}


def optimal_discriminator(p_data: torch.Tensor, p_g: torch.Tensor) -> torch.Tensor:
    r"""The optimal discriminator for a fixed generator (chapter 2; Goodfellow et al., 2014, prop. 1).

    .. math:: D^*(x) = \frac{p_\text{data}(x)}{p_\text{data}(x) + p_g(x)}

    Takes the two densities evaluated at the same points.
    """
    if p_data.shape != p_g.shape:
        raise ValueError(f"densities differ in shape: {tuple(p_data.shape)} vs {tuple(p_g.shape)}")
    return p_data / (p_data + p_g)


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    r"""R1 gradient penalty on real data (Mescheder et al., 2018), averaged over the batch.

    .. math:: R_1 = \mathbb E_{x\sim p_\text{data}} \|\nabla_x l(x)\|^2

    ``real`` must have ``requires_grad=True`` before the discriminator saw it.
    The trainer adds :math:`\tfrac{\gamma}{2} R_1` to the discriminator loss.
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def lecam_penalty(real_logits: torch.Tensor, fake_logits: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    r"""The LeCam regulariser of the discriminator (Tseng et al., 2021, eq. 3; chapter 4).

    .. math:: R_\text{LC} = \mathbb E_x\big[(l(x) - \alpha_F)^2\big]
              + \mathbb E_z\big[(l(G(z)) - \alpha_R)^2\big]

    ``anchors`` = :math:`(\alpha_R, \alpha_F)`, moving averages of the discriminator's mean
    logit on real and on fake images (:func:`update_lecam_anchors`). Each logit is pulled
    towards the *other* side's average, which keeps D from separating the few training images
    from the fakes by an ever larger margin; the paper shows it turns the objective into a
    LeCam divergence, more robust than the JS divergence when data are few. (The authors' code
    clips both terms with a ReLU; this is the paper's equation.)
    """
    _check_logits(real_logits, fake_logits)
    if anchors.shape != (2,):
        raise ValueError(f"anchors must be (alpha_R, alpha_F), shape (2,), got {tuple(anchors.shape)}")
    alpha_r, alpha_f = anchors.detach()
    return (real_logits - alpha_f).pow(2).mean() + (fake_logits - alpha_r).pow(2).mean()


@torch.no_grad()
def update_lecam_anchors(anchors: torch.Tensor, real_logits: torch.Tensor, fake_logits: torch.Tensor,
                         decay: float = 0.99) -> torch.Tensor:
    r"""Update ``anchors`` = :math:`(\alpha_R, \alpha_F)` in place and return it (chapter 4):
    :math:`\alpha \leftarrow d\,\alpha + (1 - d)\,\bar l` with the batch's mean real and fake
    logits :math:`\bar l`; anchors that are NaN (a new run) start at the batch's means."""
    means = torch.stack([real_logits.float().mean(), fake_logits.float().mean()]).to(anchors)
    if torch.isnan(anchors).any():
        return anchors.copy_(means)
    return anchors.mul_(decay).add_(means, alpha=1 - decay)


# --- models (chapters 3 and 4) ---------------------------------------------------------------


def to_tanh(x: torch.Tensor) -> torch.Tensor:
    """Map images from [0, 1] (the course's data range) to [-1, 1] (what the networks see)."""
    return 2 * x - 1


def from_tanh(h: torch.Tensor) -> torch.Tensor:
    """Map a ``tanh`` output in [-1, 1] back to images in [0, 1]."""
    return (h + 1) / 2


class Generator(nn.Module):
    """Base class: ``forward(z, labels)`` -> images in [0, 1]; ``sample(n)`` draws from the model."""

    latent_dim: int
    n_classes: int
    image_shape: tuple[int, int, int]

    def _label_code(self, n_classes: int) -> int:
        r"""Create the learned label code (if conditional); return the generator's input size.

        The codes start as draws from :math:`\mathcal N(0, \tfrac{d_z}{10} I_{10})`, so their norm
        matches that of ``z``; a one-hot label would have norm 1 next to :math:`\|z\| \approx 10`
        and start out drowned by the noise.
        """
        self.label_embed = None
        if not n_classes:
            return self.latent_dim
        self.label_embed = nn.Embedding(n_classes, LABEL_DIM)
        nn.init.normal_(self.label_embed.weight, std=(self.latent_dim / LABEL_DIM) ** 0.5)
        return self.latent_dim + LABEL_DIM

    def _input(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must be (B, {self.latent_dim}), got {tuple(z.shape)}")
        if self.n_classes:
            if labels is None:
                raise ValueError(f"this generator is conditional on {self.n_classes} classes: pass labels")
            return torch.cat([z, self.label_embed(labels.long())], dim=1)  # (B, latent_dim + 10)
        if labels is not None:
            raise ValueError("this generator is unconditional: do not pass labels")
        return z

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` latent codes :math:`z \\sim \\mathcal N(0, I)`, shape ``(n, latent_dim)``."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator)  # (n, latent_dim), CPU for seeding
        return z.to(device)

    @torch.no_grad()
    def sample(
        self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None,
        z: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Draw ``n`` images ``(n, C, H, W)`` in [0, 1], in eval mode (batch norm uses running stats).

        A conditional generator draws the classes ``0, 1, ..., 9, 0, 1, ...`` unless
        ``labels`` (``(n,)`` ints) are given. ``z`` fixes the latent codes.
        """
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        z = self.sample_latent(n, generator) if z is None else z
        if self.n_classes and labels is None:
            labels = torch.arange(n) % self.n_classes
        if labels is not None:
            labels = labels.to(z.device)
        was_training = self.training
        self.eval()
        try:
            return self(z, labels)
        finally:
            self.train(was_training)


def _conditional_discriminator_input(x: torch.Tensor, labels: torch.Tensor | None, n_classes: int):
    if n_classes and labels is None:
        raise ValueError(f"this discriminator is conditional on {n_classes} classes: pass labels")
    if not n_classes and labels is not None:
        raise ValueError("this discriminator is unconditional: do not pass labels")


class MLPGenerator(Generator):
    """The classic fully connected GAN generator, 100-256-512-784 (Goodfellow et al., 2014; chapter 3).

    ``z (B, 100) -> 256 -> 512 -> 784 -> tanh -> (B, 1, 28, 28)``, LeakyReLU(0.2)
    between layers, output mapped to [0, 1]. With ``n_classes > 0`` a learned label code is appended to ``z``.
    """

    def __init__(
        self, latent_dim: int = 100, hidden: Sequence[int] = (256, 512),
        image_shape: tuple[int, int, int] = MNIST_SHAPE, n_classes: int = 0,
    ):
        super().__init__()
        self.latent_dim, self.n_classes, self.image_shape = latent_dim, n_classes, tuple(image_shape)
        sizes = [self._label_code(n_classes), *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        layers.append(nn.Linear(sizes[-1], int(torch.tensor(image_shape).prod())))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = torch.tanh(self.net(self._input(z, labels)))  # (B, 784) in [-1, 1]
        return from_tanh(h).view(-1, *self.image_shape)  # (B, 1, 28, 28) in [0, 1]


class MLPDiscriminator(nn.Module):
    """The classic fully connected discriminator, 784-512-256-1, returning logits ``(B,)`` (chapter 3).

    The input in [0, 1] is mapped to [-1, 1] first. With ``n_classes > 0`` a one-hot
    label is appended to the flattened image. ``dropout`` after each hidden layer
    (Goodfellow et al. used it) is off by default.
    """

    def __init__(
        self, hidden: Sequence[int] = (512, 256), image_shape: tuple[int, int, int] = MNIST_SHAPE,
        n_classes: int = 0, dropout: float = 0.0,
    ):
        super().__init__()
        self.n_classes, self.image_shape = n_classes, tuple(image_shape)
        sizes = [int(torch.tensor(image_shape).prod()) + n_classes, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2)] + ([nn.Dropout(dropout)] if dropout else [])
        layers.append(nn.Linear(sizes[-1], 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        _conditional_discriminator_input(x, labels, self.n_classes)
        h = to_tanh(x).flatten(1)  # (B, 784) in [-1, 1]
        if self.n_classes:
            h = torch.cat([h, F.one_hot(labels.long(), self.n_classes).to(h.dtype)], dim=1)
        return self.net(h).squeeze(1)  # (B,) logits


class DCGenerator(Generator):
    """A DCGAN generator for 28x28 images (Radford et al., 2016; chapter 4).

    ``z -> Linear -> (2c, 7, 7) -> ConvT -> (c, 14, 14) -> ConvT -> (1, 28, 28) -> tanh``,
    batch norm and ReLU between layers. With ``n_classes > 0`` a learned label code is appended to ``z``.
    """

    def __init__(self, latent_dim: int = 100, channels: int = 64, n_classes: int = 0, out_channels: int = 1):
        super().__init__()
        self.latent_dim, self.n_classes = latent_dim, n_classes
        self.image_shape = (out_channels, 28, 28)
        c = channels
        self.fc = nn.Sequential(
            nn.Linear(self._label_code(n_classes), 2 * c * 7 * 7, bias=False),
            nn.Unflatten(1, (2 * c, 7, 7)), nn.BatchNorm2d(2 * c), nn.ReLU(),
        )
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),  # (c, 14, 14)
            nn.ConvTranspose2d(c, out_channels, 4, 2, 1), nn.Tanh(),  # (1, 28, 28) in [-1, 1]
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.fc(self._input(z, labels))  # (B, 2c, 7, 7)
        return from_tanh(self.net(h))  # (B, 1, 28, 28) in [0, 1]


class DCDiscriminator(nn.Module):
    """A DCGAN discriminator for 28x28 images, returning logits ``(B,)`` (Radford et al., 2016; chapter 4).

    ``[0, 1] -> [-1, 1] -> Conv -> (c, 14, 14) -> Conv -> (2c, 7, 7) -> Linear -> logit``, LeakyReLU(0.2),
    no batch norm (so the R1 penalty and per-sample logits stay well defined).
    With ``n_classes > 0`` it is a projection discriminator (Miyato & Koyama, 2018):
    :math:`l(x, y) = w^\\top h(x) + e_y^\\top h(x)` with a learned class embedding :math:`e_y`.
    """

    def __init__(self, channels: int = 64, n_classes: int = 0, in_channels: int = 1):
        super().__init__()
        self.n_classes, c = n_classes, channels
        self.image_shape = (in_channels, 28, 28)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c, 4, 2, 1), nn.LeakyReLU(0.2),  # (c, 14, 14)
            nn.Conv2d(c, 2 * c, 4, 2, 1), nn.LeakyReLU(0.2),  # (2c, 7, 7)
            nn.Flatten(),  # (2c*49,)
        )
        self.out = nn.Linear(2 * c * 49, 1)
        self.embed = nn.Embedding(n_classes, 2 * c * 49) if n_classes else None
        if self.embed is not None:
            nn.init.zeros_(self.embed.weight)  # start unconditional; N(0, 1) would swamp the logit

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        _conditional_discriminator_input(x, labels, self.n_classes)
        h = self.features(to_tanh(x))  # (B, 2c*49)
        logits = self.out(h).squeeze(1)  # (B,)
        if self.embed is not None:
            logits = logits + (self.embed(labels.long()) * h).sum(1)
        return logits


# --- the correct alternating step (chapter 3) --------------------------------------------------


def gan_step(
    G: Generator, D: nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
    real: torch.Tensor, labels: torch.Tensor | None = None, *,
    g_loss: str = "non_saturating", real_label: float = 1.0, r1_gamma: float = 0.0,
    lecam: float = 0.0, lecam_anchors: torch.Tensor | None = None,
) -> dict[str, float]:
    r"""One correct GAN update: a D step on detached fakes, then a G step (chapter 3).

    1. Draw :math:`z`, make fakes :math:`G(z)`.
    2. **D step**: :math:`\mathcal L_D` (:func:`d_loss`) on real images and ``fake.detach()``,
       so no gradient reaches G; zero D's gradients, backward, step D.
    3. **G step**: a *fresh* forward of the updated D on the (not detached) fakes,
       :math:`\mathcal L_G` (:func:`g_loss_nonsaturating` by default); zero G's
       gradients, backward, step G only. (The gradients this leaves on D's
       parameters are cleared by the next D step's ``zero_grad``.)

    ``r1_gamma > 0`` adds :math:`\tfrac{\gamma}{2} R_1` (:func:`r1_penalty`) to
    :math:`\mathcal L_D`; ``lecam > 0`` adds ``lecam`` times :func:`lecam_penalty`, with
    ``lecam_anchors`` (a (2,) tensor, updated in place by :func:`update_lecam_anchors` before the
    penalty is taken).

    Returns ``loss_d``, ``loss_g``, ``d_real`` = mean :math:`D(x)` and ``d_fake`` =
    mean :math:`D(G(z))`, both measured in the D step.
    """
    if lecam and lecam_anchors is None:
        raise ValueError("lecam > 0 needs lecam_anchors: a (2,) tensor (NaN to start)")
    z = G.sample_latent(len(real))
    fake = G(z, labels)  # (B, C, H, W)

    # D step: the fakes are detached, so this backward stops at the generator's output
    if r1_gamma:
        real = real.detach().requires_grad_(True)
    real_logits = D(real, labels)  # (B,)
    fake_logits = D(fake.detach(), labels)  # (B,)
    loss_d = d_loss(real_logits, fake_logits, real_label)
    if r1_gamma:
        loss_d = loss_d + 0.5 * r1_gamma * r1_penalty(real_logits, real)
    if lecam:
        update_lecam_anchors(lecam_anchors, real_logits, fake_logits)
        loss_d = loss_d + lecam * lecam_penalty(real_logits, fake_logits, lecam_anchors)
    optimizer_step(loss_d, opt_d, name="loss_d")  # zero_grad, backward, step; refuses NaN

    # G step: a fresh forward through the updated D, its own backward, only G steps
    loss_g = G_LOSSES[g_loss](D(fake, labels))
    optimizer_step(loss_g, opt_g, name="loss_g")

    return {
        "loss_d": loss_d.item(), "loss_g": loss_g.item(),
        "d_real": torch.sigmoid(real_logits).mean().item(),
        "d_fake": torch.sigmoid(fake_logits).mean().item(),
    }


def interpolate_latents(z0: torch.Tensor, z1: torch.Tensor, n: int, spherical: bool = True) -> torch.Tensor:
    r"""``n`` latent codes from ``z0`` to ``z1`` (``(latent_dim,)`` each), shape ``(n, latent_dim)`` (chapter 4).

    ``spherical=True`` uses slerp (White, 2016), which keeps the codes at the norm
    typical of :math:`\mathcal N(0, I)`; a straight line passes through
    low-norm codes the generator rarely saw.
    """
    if z0.shape != z1.shape or z0.ndim != 1:
        raise ValueError(f"z0 and z1 must be vectors of one shape, got {tuple(z0.shape)}, {tuple(z1.shape)}")
    t = torch.linspace(0, 1, n, dtype=z0.dtype, device=z0.device)[:, None]  # (n, 1)
    if not spherical:
        return (1 - t) * z0 + t * z1
    omega = torch.arccos((F.normalize(z0, dim=0) * F.normalize(z1, dim=0)).sum().clamp(-1 + 1e-7, 1 - 1e-7))
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def copy_generator(G: Generator) -> Generator:
    """A frozen deep copy of ``G`` in eval mode (e.g. to keep the generator of an early step)."""
    return copy.deepcopy(G).eval().requires_grad_(False)


from .gan_train import GANTrainer  # noqa: E402,F401 (re-exported: course_lib.gan is the public home)
