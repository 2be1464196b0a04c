"""Network blocks that more than one chapter uses: a residual block and a small U-Net.

Chapter 11 builds its denoiser from them (the U-Net here is a small DRUNet: Zhang et al.,
2021, "Plug-and-play image restoration with deep denoiser prior"); chapter 14's diffusion
models use the same shape (Ronneberger et al., 2015, "U-Net").
"""

from __future__ import annotations

import torch
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
