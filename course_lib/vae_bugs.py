r"""A broken CIFAR-10 "VAE": the classic mistakes of such listings, kept so the appendix can run them.

**Do not train with these.** The appendix rebuilds, in the course's own code, a listing that
articles present as a variational autoencoder for 32x32 colour images, runs each mistake,
measures its failure, and repairs it step by step into the course's conv VAE
(:func:`course_lib.vae.conv_vae`, chapters 6-7). Each class takes a ``fixed`` flag: ``False``
builds the listing as printed, ``True`` the shape-correct repair. ``tests/test_vae_bugs.py``
checks that each mistake fails the way the appendix says.

The mistakes:

1. :class:`ListingEncoder` flattens its (B, 256, 4, 4) map with ``view(-1, 256)``: 16 rows
   per image, so the batch silently grows 16-fold (the repair: ``flatten(1)``).
2. :class:`ListingDecoder` maps each code to 3 numbers and reshapes them with
   ``view(-1, 3, 32, 32)``: the output batch no longer matches the input's (one image for 64
   inputs, or an error for other batch sizes), and ``F.mse_loss`` broadcasts the mismatch
   with only a warning (the repair: a linear layer to (256, 4, 4) and transposed convolutions).
3. No reparameterised sample and no KL term: the model is an autoencoder trained with a
   squared error, and nothing makes its codes look like N(0, I), where the listing then
   draws its "samples" (the repair: the ELBO of chapter 6).
4. Targets normalised with ImageNet statistics (:func:`imagenet_normalise`) compared with
   sigmoid outputs in [0, 1]: most target values lie outside what the model can output
   (the repair: targets in [0, 1], a Bernoulli likelihood on logits).
5. :func:`random_crop_flip`, the training augmentation, applied to the test set: the test
   number changes from one evaluation to the next and measures other images (the repair:
   no random transform at test time).
6. ``.numpy()`` on a tensor that requires grad raises (the repair: ``.detach()``, or
   evaluate under ``torch.no_grad()``).

The digits stand in for CIFAR-10, which the course cannot download: :func:`as_cifar` puts
them in a (3, 32, 32) frame, and :func:`from_cifar` takes them back to (1, 28, 28) so that
the course's MNIST classifier can score what the models produce (chapter 9).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .validate import check_images

# ImageNet channel statistics, as torchvision's transforms.Normalize examples use them
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CHANNELS = (16, 32, 256)  # the listing's last feature map is (B, 256, 4, 4)


def as_cifar(x: torch.Tensor) -> torch.Tensor:
    """Digits ``(B, 1, 28, 28)`` in [0, 1] -> ``(B, 3, 32, 32)``: 2 pixels of black padding on
    each side and the grey level copied into three channels (the listing's input shape)."""
    x = check_images(x, "digits", channels=1)
    if tuple(x.shape[-2:]) != (28, 28):
        raise ValueError(f"as_cifar takes (B, 1, 28, 28) digits; got {tuple(x.shape)}")
    return F.pad(x, (2, 2, 2, 2)).expand(-1, 3, -1, -1).contiguous()


def from_cifar(x: torch.Tensor) -> torch.Tensor:
    """``(B, 3, 32, 32)`` -> ``(B, 1, 28, 28)``: the central crop, channels averaged (the inverse
    of :func:`as_cifar` on its images), clipped to [0, 1] for the MNIST classifier."""
    if x.ndim != 4 or tuple(x.shape[1:]) != (3, 32, 32):
        raise ValueError(f"from_cifar takes (B, 3, 32, 32) images; got {tuple(x.shape)}")
    return x[:, :, 2:30, 2:30].mean(dim=1, keepdim=True).clamp(0, 1)


def imagenet_normalise(x: torch.Tensor) -> torch.Tensor:
    """MISTAKE 4 as a target: ``(x - mean) / std`` per channel with ImageNet statistics, which
    maps a black pixel to about -2.1 and a white one to about +2.2."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device)[:, None, None]
    return (x - mean) / std


def imagenet_denormalise(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`imagenet_normalise` (how such a listing displays its outputs)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device)[:, None, None]
    return x * std + mean


def random_crop_flip(x: torch.Tensor, generator: torch.Generator | None = None, padding: int = 4) -> torch.Tensor:
    """MISTAKE 5 when used on a test set: ``RandomCrop(32, padding=4)`` and
    ``RandomHorizontalFlip()`` per image, the listing's training augmentation. ``(B, C, H, W)``."""
    b, _, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (b,), generator=generator)
    flip = torch.rand(b, generator=generator) < 0.5
    out = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


class ListingEncoder(nn.Module):
    """Three stride-2 convolutions, (B, 3, 32, 32) -> (B, 256, 4, 4), then a linear map to the code.

    ``fixed=False`` (MISTAKE 1): ``h.view(-1, 256)`` -> (16 B, 256), one row per position, and
    ``Linear(256, z_dim)``: the code batch is 16 times the image batch, with no error.
    ``fixed=True``: ``h.flatten(1)`` -> (B, 4096) and ``Linear(4096, out_dim)``.
    ``out_dim`` defaults to ``z_dim`` (an autoencoder's code); the repaired VAE uses
    ``2 * z_dim`` for the mean and log-variance.
    """

    def __init__(self, z_dim: int = 16, fixed: bool = False, out_dim: int | None = None):
        super().__init__()
        c1, c2, c3 = CHANNELS
        self.z_dim, self.fixed = z_dim, fixed
        self.conv = nn.Sequential(
            nn.Conv2d(3, c1, 4, 2, 1), nn.ReLU(),  # (B, 16, 16, 16)
            nn.Conv2d(c1, c2, 4, 2, 1), nn.ReLU(),  # (B, 32, 8, 8)
            nn.Conv2d(c2, c3, 4, 2, 1), nn.ReLU(),  # (B, 256, 4, 4)
        )
        self.fc = nn.Linear(c3 * 16 if fixed else c3, out_dim or z_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)  # (B, 256, 4, 4)
        h = h.flatten(1) if self.fixed else h.view(-1, 256)  # (B, 4096), or the bug's (16 B, 256)
        return self.fc(h)


class ListingDecoder(nn.Module):
    """A code ``(B, z_dim)`` -> images.

    ``fixed=False`` (MISTAKE 2): ``Linear(z_dim, 3)``, a sigmoid and ``view(-1, 3, 32, 32)``:
    B codes give 3 B numbers, reshaped into 3 B / 3072 images (an error unless 3072 divides
    3 B). ``fixed=True``: ``Linear(z_dim, 4096)`` -> (B, 256, 4, 4) and three stride-2
    transposed convolutions back to (B, 3, 32, 32); sigmoid outputs, or logits with
    ``logits=True`` (the repaired VAE's Bernoulli decoder).
    """

    def __init__(self, z_dim: int = 16, fixed: bool = False, logits: bool = False):
        super().__init__()
        c1, c2, c3 = CHANNELS
        self.fixed, self.logits = fixed, logits
        self.fc = nn.Linear(z_dim, c3 * 16 if fixed else 3)
        self.deconv = nn.Sequential(
            nn.ReLU(),
            nn.ConvTranspose2d(c3, c2, 4, 2, 1), nn.ReLU(),  # (B, 32, 8, 8)
            nn.ConvTranspose2d(c2, c1, 4, 2, 1), nn.ReLU(),  # (B, 16, 16, 16)
            nn.ConvTranspose2d(c1, 3, 4, 2, 1),  # (B, 3, 32, 32)
        ) if fixed else nn.Identity()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z)
        if not self.fixed:
            return torch.sigmoid(h).view(-1, 3, 32, 32)  # BUG: (B, 3) numbers as 32x32 images
        out = self.deconv(h.view(-1, 256, 4, 4))
        return out if self.logits else torch.sigmoid(out)


class ListingAE(nn.Module):
    """The listing's model: ``decoder(encoder(x))``, no sampling and no KL (MISTAKE 3).

    ``fixed=True`` repairs the shapes (mistakes 1 and 2); it is then a working autoencoder.
    ``logits=True`` makes the forward pass return logits, for :func:`bernoulli_loss` (the
    repair of mistake 4), so that the repaired autoencoder differs from the repaired VAE only
    by mistake 3. :meth:`sample` draws the listing's way, decoding codes from N(0, I).
    """

    def __init__(self, z_dim: int = 16, fixed: bool = False, logits: bool = False):
        super().__init__()
        self.z_dim = z_dim
        self.encoder = ListingEncoder(z_dim, fixed)
        self.decoder = ListingDecoder(z_dim, fixed, logits=logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """The listing's samples, images in [0, 1]: codes from N(0, I), decoded (nothing trained
        the codes to be Gaussian, so most of these codes lie where no training image's code does)."""
        out = self.decoder(torch.randn(n, self.z_dim, generator=generator))
        return torch.sigmoid(out) if self.decoder.logits else out


class _VAEEncoder(nn.Module):
    """The repaired encoder as :class:`course_lib.vae.VAE` wants it: ``x -> (mu, logvar)``."""

    def __init__(self, z_dim: int):
        super().__init__()
        self.z_dim = z_dim
        self.net = ListingEncoder(z_dim, fixed=True, out_dim=2 * z_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(x).chunk(2, dim=1)
        return mu, logvar


def repaired_vae(z_dim: int = 16):
    """The listing repaired: its (shape-correct) networks in the course's
    :class:`course_lib.vae.VAE` (reparameterised sample, KL to N(0, I), Bernoulli likelihood on
    logits; chapters 6-7), for (B, 3, 32, 32) images in [0, 1]."""
    from .vae import VAE

    return VAE(_VAEEncoder(z_dim), ListingDecoder(z_dim, fixed=True, logits=True))


def listing_loss(model: nn.Module, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """The listing's objective: ``F.mse_loss(model(x), target)``, with the target the input
    itself unless given (e.g. :func:`imagenet_normalise` of it, mistake 4)."""
    return F.mse_loss(model(x), x if target is None else target)


def bernoulli_loss(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The repaired reconstruction term for a model that returns logits: the Bernoulli negative
    log-likelihood in nats per image, summed over pixels (chapter 7), on targets in [0, 1]."""
    x = check_images(x, "targets")
    return F.binary_cross_entropy_with_logits(model(x), x, reduction="sum") / len(x)


def best_sigmoid_mse(target: torch.Tensor) -> torch.Tensor:
    """The smallest squared error any model with outputs in [0, 1] can reach on ``target``:
    per pixel, the best output is the target clipped to [0, 1] (mistake 4's floor)."""
    return F.mse_loss(target.clamp(0, 1), target)
