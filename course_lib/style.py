"""Texture and style from Gram matrices (chapter 12): Gatys et al. (2016), "Image style transfer
using convolutional neural networks", and (2015) "Texture synthesis using convolutional neural
networks", with features from *random* multi-scale filters (Ustyuzhaninov et al., 2017, "What
does it take to generate natural textures?") because the course cannot download VGG-19; and
:func:`vgg19_features` for a user who has the weights.

* :func:`gram_matrix`: G = F Fᵀ / M for features F of N channels at M positions.
* :func:`style_loss`: Σ_l w_l / (4 N_l²) · ‖G_l(x) − G_l(s)‖², which is Gatys's
  E_l = 1/(4 N_l² M_l²) Σ (G_l − A_l)² written with the normalised Gram.
* :func:`content_loss`: ½ Σ (F_l(x) − F_l(c))² (Gatys et al., 2016, eq. 1).
* :func:`synthesize`: texture synthesis (no content) and style transfer (with content) by
  L-BFGS on the pixels, as in the papers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


def _check_features(f: torch.Tensor) -> None:
    if f.ndim != 4:
        raise ValueError(f"features must be (B, C, H, W), got shape {tuple(f.shape)}")


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """The Gram matrix of a feature map (Gatys et al., 2015; chapter 12, exercise 2): for
    ``features`` (B, N, H, W) with M = H·W positions, G[b, i, j] = Σ_k F[b, i, k] F[b, j, k] / M,
    (B, N, N). The division by M makes it an average over positions, so Gram matrices of
    images of different sizes compare."""
    _check_features(features)
    b, n, h, w = features.shape
    f = features.reshape(b, n, h * w)
    return f @ f.transpose(1, 2) / (h * w)


def style_loss(features: Sequence[torch.Tensor], target_grams: Sequence[torch.Tensor],
               weights: Sequence[float] | None = None) -> torch.Tensor:
    """Gatys et al.'s style (texture) loss: Σ_l w_l E_l with E_l = ‖G_l − A_l‖² / (4 N_l²) for
    the normalised Gram matrices G_l of ``features`` and A_l (``target_grams``), summed over
    entries and averaged over the batch. ``weights`` default to 1 / L each (the paper's w_l)."""
    if len(features) != len(target_grams):
        raise ValueError(f"{len(features)} feature maps but {len(target_grams)} target Gram matrices")
    weights = [1 / len(features)] * len(features) if weights is None else list(weights)
    total = features[0].new_zeros(())
    for f, a, w in zip(features, target_grams, weights, strict=True):
        g = gram_matrix(f)
        n = f.shape[1]
        total = total + w * (g - a).square().sum((-2, -1)).mean() / (4 * n * n)
    return total


def content_loss(features: Sequence[torch.Tensor], target_features: Sequence[torch.Tensor]) -> torch.Tensor:
    """Gatys et al.'s content loss, ½ Σ (F − P)², summed over the given layers (and the batch)."""
    return sum(0.5 * (f - p).square().sum() for f, p in zip(features, target_features, strict=True))


class RandomFeatures(nn.Module):
    """A one-layer network of random filters at several scales (Ustyuzhaninov et al., 2017):
    for each size k in ``sizes``, ``filters`` random k×k filters (zero mean, unit norm) and a
    ReLU. Returns one (B, filters, H, W) map per size. Nothing is trained: the Gram matrices of
    many random filters at many scales already describe a texture."""

    def __init__(self, in_ch: int = 1, sizes: Sequence[int] = (3, 5, 7, 11, 15, 23), filters: int = 64,
                 seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.sizes = tuple(sizes)
        self.convs = nn.ModuleList()
        for k in self.sizes:
            if k < 1 or k % 2 == 0:
                raise ValueError(f"filter size {k}: use odd sizes, so the maps keep the image's size")
            conv = nn.Conv2d(in_ch, filters, k, padding=k // 2, padding_mode="reflect", bias=False)
            w = torch.randn(conv.weight.shape, generator=gen)
            w = w - w.mean((1, 2, 3), keepdim=True)
            conv.weight.data = w / w.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
            conv.requires_grad_(False)
            self.convs.append(conv)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = x - 0.5  # centre [0, 1] images, so the zero-mean filters see the image's structure
        return [F.relu(conv(x)) for conv in self.convs]


# VGG-19's convolutions in torchvision's numbering: (index in .features, name)
VGG19_STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
VGG19_CONTENT_LAYER = "conv4_2"
_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class VGGFeatures(nn.Module):
    """VGG-19's convolutional part returning the ReLU outputs of ``layers`` (by Gatys's names,
    e.g. ``"conv4_1"``), with max-pooling replaced by average pooling as Gatys et al. do.
    Inputs are (B, 1 or 3, H, W) in [0, 1]; grey images are repeated to three channels and all
    are normalised with ImageNet's mean and standard deviation, as the weights expect."""

    def __init__(self, features: nn.Sequential, layers: Sequence[str] = VGG19_STYLE_LAYERS, pool: str = "avg"):
        super().__init__()
        names, block, conv = {}, 1, 0
        for i, m in enumerate(features):
            if isinstance(m, nn.Conv2d):
                conv += 1
                names[f"conv{block}_{conv}"] = i + 1  # the ReLU after it
            elif isinstance(m, nn.MaxPool2d):
                block, conv = block + 1, 0
                if pool == "avg":
                    features[i] = nn.AvgPool2d(2, 2)
        unknown = [name for name in layers if name not in names]
        if unknown:
            raise ValueError(f"unknown layers {unknown}; VGG-19 has {list(names)}")
        self.layers = tuple(layers)
        self.index = [names[name] for name in self.layers]
        self.features = features[: max(self.index) + 1].requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected (B, 1 or 3, H, W) images, got shape {tuple(x.shape)}")
        h = (x.expand(-1, 3, -1, -1) - self.mean) / self.std
        out = []
        for i, m in enumerate(self.features):
            h = m(h)
            if i in self.index:
                out.append(h)
        return [out[sorted(self.index).index(i)] for i in self.index]


def vgg19_features(weights_path: str | os.PathLike, layers: Sequence[str] = VGG19_STYLE_LAYERS,
                   pool: str = "avg") -> VGGFeatures:
    """Gatys et al.'s feature network, for a user who has torchvision's VGG-19 ImageNet weights
    (``vgg19-dcbb9e9d.pth``, from ``torchvision.models.VGG19_Weights.IMAGENET1K_V1``; the course
    cannot download them). The file is a state dict; only its ``features.*`` entries are used,
    loaded with ``weights_only=True``."""
    from torchvision.models import vgg19

    path = Path(weights_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no VGG-19 weights there. Download them where you have a network "
            "(torchvision.models.VGG19_Weights.IMAGENET1K_V1) and pass the file's path.")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    net = vgg19(weights=None).features
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as err:  # a tensor of the wrong shape
        raise ValueError(f"{path} is not a VGG-19 state dict: {str(err).splitlines()[-1].strip()}") from None
    if missing or unexpected:
        raise ValueError(f"{path} is not a VGG-19 state dict: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return VGGFeatures(net, layers, pool)


def synthesize(features: nn.Module, style: torch.Tensor, content: torch.Tensor | None = None, *,
               size: tuple[int, int] | None = None, content_weight: float = 0.0,
               content_layers: Sequence[int] | None = None, steps: int = 200, seed: int = 0,
               style_weights: Sequence[float] | None = None) -> tuple[torch.Tensor, list[float]]:
    """Gatys et al.'s synthesis by L-BFGS on the pixels (chapter 12).

    Without ``content``: a texture of ``size`` (default: the style image's) from white noise,
    minimising :func:`style_loss` to the style image's Gram matrices. With ``content``: style
    transfer from the content image itself, minimising style loss + ``content_weight`` ×
    :func:`content_loss` on ``content_layers`` (indices into the feature list; default all).
    Returns the image (1, C, H, W) clipped to [0, 1] and the loss at each evaluation. The
    objective is divided by the style loss of the starting image (the same minimiser; random
    features give losses small enough to stall L-BFGS's absolute tolerances otherwise).
    """
    if style.ndim != 4 or style.shape[0] != 1:
        raise ValueError(f"style must be one image (1, C, H, W), got shape {tuple(style.shape)}")
    if steps < 1:
        raise ValueError(f"steps={steps} must be >= 1")
    with torch.no_grad():
        target_grams = [gram_matrix(f) for f in features(style)]
        target_content = None
        if content is not None:
            target_content = features(content)
            idx = range(len(target_content)) if content_layers is None else content_layers
            target_content = [target_content[i] for i in idx]
    if content is not None:
        x = content.clone()
    else:
        gen = torch.Generator().manual_seed(seed)
        h, w = style.shape[-2:] if size is None else size
        x = torch.rand((1, style.shape[1], h, w), generator=gen)
    with torch.no_grad():  # L-BFGS's stopping rules are absolute: optimise loss / (its start value)
        scale = 1.0 / max(float(style_loss(features(x), target_grams, style_weights)), 1e-30)
    x.requires_grad_(True)
    opt = torch.optim.LBFGS([x], max_iter=steps, history_size=50, line_search_fn="strong_wolfe",
                            tolerance_grad=0.0, tolerance_change=0.0)
    losses: list[float] = []

    def closure() -> torch.Tensor:
        opt.zero_grad()
        feats = features(x)
        loss = style_loss(feats, target_grams, style_weights)
        if target_content is not None and content_weight > 0:
            idx = range(len(feats)) if content_layers is None else content_layers
            loss = loss + content_weight * content_loss([feats[i] for i in idx], target_content)
        (loss * scale).backward()
        losses.append(float(loss.detach()))
        return loss * scale

    opt.step(closure)
    return x.detach().clamp(0, 1), losses


def gram_distance(features: nn.Module, a: torch.Tensor, b: torch.Tensor) -> float:
    """:func:`style_loss` between two images under ``features`` (no gradients): how far apart
    their textures are, as the network sees them."""
    with torch.no_grad():
        return float(style_loss(features(a), [gram_matrix(f) for f in features(b)]))
