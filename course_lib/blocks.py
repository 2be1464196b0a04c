"""Network blocks that more than one chapter uses: a residual block and a small U-Net.

Chapter 11 builds its denoiser from them (the U-Net here is a small DRUNet: Zhang et al.,
2021, "Plug-and-play image restoration with deep denoiser prior"); chapter 14's diffusion
models use the same shape (Ronneberger et al., 2015, "U-Net").
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ResBlock(nn.Module):
    """``x + conv(relu(conv(x)))`` at constant width: the residual block of DRUNet (no
    normalisation layer, so the block behaves the same in train and eval mode and at any size)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UNet(nn.Module):
    """A small U-Net: ``levels`` scales of ``blocks`` residual blocks each, down by strided 2x2
    convolutions, up by 2x2 transposed convolutions, skips added (not concatenated).

    Maps (B, in_ch, H, W) to (B, out_ch, H, W). H and W need not be multiples of
    ``2 ** (levels - 1)``: the input is padded by reflection to one and the output cropped back.
    """

    def __init__(self, in_ch: int = 1, out_ch: int = 1, channels: tuple[int, ...] = (32, 64, 128),
                 blocks: int = 2):
        super().__init__()
        if len(channels) < 1 or blocks < 0 or min(channels) < 1:
            raise ValueError(f"channels={channels}, blocks={blocks}: give one width per level and blocks >= 0")
        self.channels = tuple(channels)
        self.head = nn.Conv2d(in_ch, channels[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.enc = nn.ModuleList()
        for i, c in enumerate(channels[:-1]):
            self.enc.append(nn.Sequential(*[ResBlock(c) for _ in range(blocks)]))
            self.down.append(nn.Conv2d(c, channels[i + 1], 2, stride=2))
        self.mid = nn.Sequential(*[ResBlock(channels[-1]) for _ in range(blocks)])
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in reversed(range(len(channels) - 1)):
            self.up.append(nn.ConvTranspose2d(channels[i + 1], channels[i], 2, stride=2))
            self.dec.append(nn.Sequential(*[ResBlock(channels[i]) for _ in range(blocks)]))
        self.tail = nn.Conv2d(channels[0], out_ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = 2 ** (len(self.channels) - 1)
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:  # reflect needs the pad smaller than the side; replicate works for any size
            x = nn.functional.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")
        skips = []
        z = self.head(x)  # (B, c0, H, W)
        for enc, down in zip(self.enc, self.down, strict=True):
            z = enc(z)
            skips.append(z)
            z = down(z)  # half the size, the next width
        z = self.mid(z)
        for up, dec in zip(self.up, self.dec, strict=True):
            z = dec(up(z) + skips.pop())
        return self.tail(z)[..., :h, :w]


# --- conditioned on a noise level (and a class): the networks of chapter 14 -------------------


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal features of a time ``t (B,)`` in [0, 1] -> ``(B, dim)``: the Transformer's
    position code (Vaswani et al., 2017) as DDPM uses it for the noise level (Ho et al., 2020).
    ``t`` is scaled by 1,000 first, so the fastest of the ``dim // 2`` frequencies resolves
    steps of a 1,000-step chain."""
    if dim % 2:
        raise ValueError(f"dim={dim}: give an even size")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)  # (half,)
    angles = 1000.0 * t.float()[:, None] * freqs[None]  # (B, half)
    return torch.cat([angles.cos(), angles.sin()], dim=1)


class CondResBlock(nn.Module):
    """``x + conv(act(norm(conv(act(norm(x)))) + W e))``: the residual block of the DDPM U-Net
    (Ho et al., 2020): the embedding ``e`` of the noise level (and class) is added to every
    channel between the two convolutions; group norm (Wu & He, 2018) keeps it the same at any
    batch size."""

    def __init__(self, channels: int, emb_dim: int, groups: int = 8):
        super().__init__()
        self.norm1 = nn.GroupNorm(min(groups, channels), channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.emb = nn.Linear(emb_dim, channels)
        self.norm2 = nn.GroupNorm(min(groups, channels), channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity: a stable start
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, C, H, W)
        h = h + self.emb(e)[:, :, None, None]
        return x + self.conv2(F.silu(self.norm2(h)))


class TimeUNet(nn.Module):
    """The :class:`UNet` shape with every residual block told the time ``t`` in [0, 1] (and,
    with ``n_classes``, a class label; label ``n_classes`` means "no class", for
    classifier-free guidance): ``forward(x (B, C, H, W), t (B,), labels (B,) | None)``.

    The network of chapter 14's diffusion and flow-matching models (Ho et al., 2020, use this
    shape with attention layers too; at 28x28 the course leaves them out for speed).
    """

    def __init__(self, in_ch: int = 1, out_ch: int = 1, channels: tuple[int, ...] = (32, 64, 64),
                 blocks: int = 1, emb_dim: int = 128, n_classes: int = 0):
        super().__init__()
        if len(channels) < 1 or blocks < 1 or min(channels) < 1:
            raise ValueError(f"channels={channels}, blocks={blocks}: give one width per level and blocks >= 1")
        self.channels, self.emb_dim, self.n_classes = tuple(channels), emb_dim, n_classes
        self.time = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.label = nn.Embedding(n_classes + 1, emb_dim) if n_classes else None
        self.head = nn.Conv2d(in_ch, channels[0], 3, padding=1)
        self.enc = nn.ModuleList(nn.ModuleList(CondResBlock(c, emb_dim) for _ in range(blocks)) for c in channels[:-1])
        self.down = nn.ModuleList(nn.Conv2d(c, channels[i + 1], 2, stride=2) for i, c in enumerate(channels[:-1]))
        self.mid = nn.ModuleList(CondResBlock(channels[-1], emb_dim) for _ in range(blocks))
        idx = list(reversed(range(len(channels) - 1)))
        self.up = nn.ModuleList(nn.ConvTranspose2d(channels[i + 1], channels[i], 2, stride=2) for i in idx)
        self.dec = nn.ModuleList(nn.ModuleList(CondResBlock(channels[i], emb_dim) for _ in range(blocks)) for i in idx)
        self.tail = nn.Sequential(nn.GroupNorm(min(8, channels[0]), channels[0]), nn.SiLU(),
                                  nn.Conv2d(channels[0], out_ch, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if t.ndim == 0:
            t = t.expand(len(x))
        e = self.time(timestep_embedding(t, self.emb_dim))  # (B, emb_dim)
        if self.label is not None:
            if labels is None:  # unconditional: the "no class" token
                labels = torch.full((len(x),), self.n_classes, dtype=torch.long, device=x.device)
            e = e + self.label(labels)
        elif labels is not None:
            raise ValueError("labels given to a TimeUNet built with n_classes=0")
        h, w = x.shape[-2:]
        m = 2 ** (len(self.channels) - 1)
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:  # zero padding: the noise statistics of the padded border stay known
            x = F.pad(x, (0, pw, 0, ph))
        z = self.head(x)  # (B, c0, H, W)
        skips = []
        for enc, down in zip(self.enc, self.down, strict=True):
            for block in enc:
                z = block(z, e)
            skips.append(z)
            z = down(z)  # half the size, the next width
        for block in self.mid:
            z = block(z, e)
        for up, dec in zip(self.up, self.dec, strict=True):
            z = up(z) + skips.pop()
            for block in dec:
                z = block(z, e)
        return self.tail(z)[..., :h, :w]
