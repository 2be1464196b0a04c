r"""Encoders and decoders of the course's VAEs (chapters 6-8): MLP, convolutional, residual, autoregressive.

Each encoder maps images ``(B, *shape)`` [+ a condition ``(B, cond_dim)``] to
``(mu, logvar)`` of a diagonal Gaussian :math:`q(z \mid x)`, each ``(B, z_dim)``; each
decoder maps ``z (B, z_dim)`` to Bernoulli logits (or Gaussian means) ``(B, *shape)``.
:class:`course_lib.vae.VAE` combines one of each; the public names are also
importable from :mod:`course_lib.vae`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

Shape = tuple[int, int, int]
Act = Callable[[], nn.Module]

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

    ``MLPEncoder((1, 28, 28), 20, (400,))`` is the encoder of the ``pytorch/examples`` VAE; Kingma &
    Welling (2014) used 500 tanh units (``hidden=(500,), act=nn.Tanh``).
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


def causal_mask(kernel: int, mask: str) -> torch.Tensor:
    r"""The ``(kernel, kernel)`` 0/1 mask of a PixelCNN convolution (van den Oord et al., 2016; chapter 7).

    Raster order reads rows top to bottom, each left to right. The mask keeps every row above
    the centre and, in the centre row, the pixels left of the centre; ``mask="B"`` also keeps
    the centre itself, ``mask="A"`` (the first layer, which must not see the pixel it predicts)
    does not. Rows below the centre are zero.
    """
    if mask not in ("A", "B") or kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"mask must be 'A' or 'B' and the kernel odd, got {mask!r}, {kernel}")
    m = torch.ones(kernel, kernel)
    c = kernel // 2
    m[c, c + (mask == "B"):] = 0  # the centre row, from the centre (A) or after it (B)
    m[c + 1:] = 0  # every row below
    return m


class MaskedConv2d(nn.Conv2d):
    r"""A convolution that sees only the pixels before its centre in raster order (van den Oord et al., 2016).

    ``mask="A"`` (the first layer) hides the centre pixel too, so output ``(i, j)`` depends
    only on input pixels above row ``i`` and left of ``(i, j)``; ``mask="B"`` (the layers
    after it) lets the centre through, which keeps that property through a stack.
    The kernel is odd, padded to keep the size; the mask is :func:`causal_mask`.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, mask: str):
        m = causal_mask(kernel, mask)  # checks its arguments before the layer is built
        super().__init__(in_ch, out_ch, kernel, padding=kernel // 2)
        self.register_buffer("mask", m[None, None], persistent=False)  # (1, 1, k, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)


class PixelCNNDecoder(nn.Module):
    r"""A :class:`ConvDecoder` whose logits also see the neighbouring pixels above and to the left (chapter 7).

    .. math:: p(x \mid z) = \prod_{i} p(x_i \mid x_{<i}, z)

    in raster order, as in PixelVAE (Gulrajani et al., 2017): the conv decoder turns ``z`` into
    ``feat`` feature maps ``g(z)`` of the image's size; a masked 5x5 convolution of type A and
    ``layers`` masked 3x3 convolutions of type B (:class:`MaskedConv2d`) read the image, each
    layer adding a 1x1 projection of ``g(z)``. The receptive field is local (``2 + layers`` rows
    up), so the global shape of the digit must still come from ``z``, while the exact grey
    level of an edge pixel is predicted from its neighbours, which a decoder from ``z`` alone
    cannot place. Train with free bits (:meth:`course_lib.vae.VAE.loss`) against posterior
    collapse. ``forward(z, c, x)`` returns logits ``(B, 1, H, W)`` (teacher forcing: pixel ``i``
    sees ``x_{<i}``); ``forward(z, c)`` generates pixel by pixel, feeding back each pixel's mean
    :math:`\sigma(\text{logit})` (``H * W`` sequential steps, each on the window of pixels it sees).
    """

    autoregressive = True

    def __init__(
        self,
        out_shape: Shape = (1, 28, 28),
        z_dim: int = 20,
        channels: tuple[int, int] = (32, 64),
        hidden: int = 256,
        n_res: int = 0,
        cond_dim: int = 0,
        act: Act = nn.ReLU,
        width: int = 16,
        layers: int = 2,
        feat: int = 16,
    ):
        super().__init__()
        c, h, w = out_shape
        if c != 1:
            raise ValueError(f"PixelCNNDecoder models one-channel images, got out_shape={tuple(out_shape)}")
        self.out_shape, self.z_dim, self.cond_dim = tuple(out_shape), z_dim, cond_dim
        self.base = ConvDecoder((feat, h, w), z_dim, channels, hidden, n_res, cond_dim, act)
        self.first = MaskedConv2d(1, width, 5, "A")
        self.blocks = nn.ModuleList(MaskedConv2d(width, width, 3, "B") for _ in range(layers))
        self.cond = nn.Conv2d(feat, width * (layers + 1), 1)  # g(z)'s share in every layer
        self.out = nn.Conv2d(width + feat, 1, 1)
        self.act = act()
        self.reach = 2 + layers  # rows above a pixel that its logit depends on

    def _logits(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        cond = self.cond(g).chunk(len(self.blocks) + 1, dim=1)  # each (B, width, h, W)
        h = self.act(self.first(x) + cond[0])
        for block, cz in zip(self.blocks, cond[1:]):
            h = h + self.act(block(h) + cz)  # residual: each block refines the one before
        return self.out(torch.cat([h, g], dim=1))  # (B, 1, h, W)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, x: torch.Tensor | None = None) -> torch.Tensor:
        g = self.base(z, c)  # (B, feat, H, W)
        if x is not None:
            _check_images(x, self.out_shape, "PixelCNNDecoder")
            return self._logits(g, x.to(g.dtype))
        _, h, w = self.out_shape
        img = torch.zeros(len(z), 1, h, w, dtype=g.dtype, device=g.device)
        logits = torch.zeros_like(img)
        r = self.reach  # pixel (i, j) depends on rows i - r .. i and columns j - r .. j + r only
        for i in range(h):
            for j in range(w):
                rows, cols = slice(max(0, i - r), i + 1), slice(max(0, j - r), j + r + 1)
                out = self._logits(g[:, :, rows, cols], img[:, :, rows, cols])  # (B, 1, <= r+1, <= 2r+1)
                logit = out[:, :, -1, j - cols.start]  # (B, 1)
                logits[:, :, i, j] = logit
                img[:, :, i, j] = torch.sigmoid(logit)
        return logits
