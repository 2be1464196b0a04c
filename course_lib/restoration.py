r"""Restoration as an inverse problem (chapter 11): y = A x + n.

* Degradations ``A`` with their adjoints and the data step of half-quadratic splitting:
  :class:`Identity` (denoising), :class:`Blur` (a known kernel, circular boundary),
  :class:`Downsample` (area averaging by 2 or 4), :class:`Mask` (missing pixels); masks from
  :func:`random_mask` and :func:`block_mask`; :func:`add_noise`.
* The classical baselines (:mod:`course_lib.restoration_baselines`, re-exported here): scikit-image's
  TV, wavelet and non-local-means denoisers, Wiener and Richardson-Lucy deconvolution,
  biharmonic inpainting, bicubic resizing, and BM3D (the ``bm3d`` package).
* :func:`psnr` and :func:`ssim` (``skimage.metrics``, per image, averaged over images).
* Restoration with a prior: plug-and-play half-quadratic splitting with a learned denoiser
  (:func:`pnp_hqs`, Zhang et al., 2021), Deep Image Prior (:func:`deep_image_prior`, Ulyanov
  et al., 2018) and a generative model's latent space (:func:`latent_restore`, Bora et al., 2017).

Images are (B, C, H, W) float tensors in [0, 1]; noise levels are in the same units (25/255).
The learned networks live in :mod:`course_lib.denoisers`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .denoisers import Denoiser, train_denoiser  # noqa: F401 (re-exported: chapter 11's API)
from .restoration_baselines import (  # noqa: F401 (re-exported: chapter 11's API)
    CLASSICAL_DENOISERS,
    NLM_H,
    TV_WEIGHT,
    _check,
    _numpy_images,
    bicubic,
    denoise_bm3d,
    denoise_nl_means,
    denoise_tv,
    denoise_wavelet,
    inpaint_biharmonic,
    richardson_lucy,
    wiener,
)

# --- degradations ----------------------------------------------------------------------------


def add_noise(x: torch.Tensor, sigma: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``x + σ n`` with n ~ N(0, I): additive white Gaussian noise, not clipped (clipping to
    [0, 1] would change the noise model the denoisers and the MMSE derivation assume)."""
    if not 0 <= sigma < 1:
        raise ValueError(f"sigma={sigma}: give it in [0, 1] units (25/255, not 25)")
    return x + sigma * torch.randn(x.shape, generator=generator).to(x)


class Operator(nn.Module):
    r"""A linear degradation A, its adjoint :meth:`adjoint` (⟨Ax, y⟩ = ⟨x, Aᵀy⟩) and the data
    step of half-quadratic splitting, :meth:`solve`:

    .. math:: \arg\min_x \|Ax - y\|^2 + \alpha \|x - z\|^2 = (A^\top A + \alpha I)^{-1}(A^\top y + \alpha z).
    """

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def solve(self, y: torch.Tensor, z: torch.Tensor, alpha: float) -> torch.Tensor:
        raise NotImplementedError

    def init(self, y: torch.Tensor) -> torch.Tensor:
        """A first guess of x from y (plug-and-play's starting point): Aᵀy by default."""
        return self.adjoint(y)


class Identity(Operator):
    """A = I: denoising."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y

    def solve(self, y: torch.Tensor, z: torch.Tensor, alpha: float) -> torch.Tensor:
        return (y + alpha * z) / (1 + alpha)


def gaussian_kernel(size: int = 9, std: float = 1.6) -> torch.Tensor:
    """A normalised (size, size) Gaussian blur kernel."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-0.5 * (r / std) ** 2)
    k = torch.outer(g, g)
    return (k / k.sum()).float()


class Blur(Operator):
    """Convolution with ``kernel`` (k, k), **circular boundary**: the image wraps around, so A
    is diagonal in the Fourier basis (A = F⁻¹ diag(K) F) and the data step is exact:
    ``(conj(K) Y + α Z) / (|K|² + α)`` (Zhang et al., 2021). The kernel is centred, so a
    symmetric kernel does not shift the image."""

    def __init__(self, kernel: torch.Tensor):
        super().__init__()
        if kernel.ndim != 2 or not torch.isfinite(kernel).all():
            raise ValueError(f"kernel must be a finite (k, k) tensor, got shape {tuple(kernel.shape)}")
        self.register_buffer("kernel", kernel.float())

    def otf(self, shape: tuple[int, int]) -> torch.Tensor:
        """The kernel's transfer function on an (H, W) grid: its DFT after centring at (0, 0)."""
        kh, kw = self.kernel.shape
        if kh > shape[0] or kw > shape[1]:
            raise ValueError(f"kernel {kh}x{kw} is larger than the image {shape}")
        pad = torch.zeros(shape, dtype=torch.float64)
        pad[:kh, :kw] = self.kernel.double()
        pad = torch.roll(pad, (-(kh // 2), -(kw // 2)), dims=(0, 1))
        return torch.fft.fft2(pad)

    def _apply(self, x: torch.Tensor, conj: bool) -> torch.Tensor:
        _check(x)
        k = self.otf(tuple(x.shape[-2:]))
        k = k.conj() if conj else k
        return torch.fft.ifft2(torch.fft.fft2(x.double()) * k).real.to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._apply(x, conj=False)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self._apply(y, conj=True)

    def solve(self, y: torch.Tensor, z: torch.Tensor, alpha: float) -> torch.Tensor:
        k = self.otf(tuple(y.shape[-2:]))
        num = k.conj() * torch.fft.fft2(y.double()) + alpha * torch.fft.fft2(z.double())
        return torch.fft.ifft2(num / (k.abs() ** 2 + alpha)).real.to(y.dtype)


class Downsample(Operator):
    """Area downsampling by ``factor``: each low-resolution pixel is the mean of a factor x factor
    block (H and W must be multiples of it). Aᵀ copies each pixel back into its block, divided
    by factor², so A Aᵀ = I / factor², and the data step is exact by the Woodbury identity:
    ``(r - Aᵀ A r / (1/factor² + α)) / α`` with ``r = Aᵀ y + α z``."""

    def __init__(self, factor: int = 4):
        super().__init__()
        if not isinstance(factor, int) or factor < 2:
            raise ValueError(f"factor={factor}: use a whole number >= 2")
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check(x)
        if x.shape[-2] % self.factor or x.shape[-1] % self.factor:
            raise ValueError(f"image {tuple(x.shape[-2:])} is not a multiple of the factor {self.factor}: crop it")
        return F.avg_pool2d(x, self.factor)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        _check(y)
        return F.interpolate(y, scale_factor=self.factor, mode="nearest") / self.factor**2

    def solve(self, y: torch.Tensor, z: torch.Tensor, alpha: float) -> torch.Tensor:
        r = self.adjoint(y) + alpha * z
        return (r - self.adjoint(self.forward(r)) / (1 / self.factor**2 + alpha)) / alpha

    def init(self, y: torch.Tensor) -> torch.Tensor:
        return bicubic(y, self.factor)


class Mask(Operator):
    """A = diag(m): keep the pixels where ``mask`` is 1 (a (1 or B, 1 or C, H, W) tensor of 0/1),
    zero the others. Aᵀ = A, and the data step is ``(m y + α z) / (m + α)``."""

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        if mask.ndim != 4 or not ((mask == 0) | (mask == 1)).all():
            raise ValueError("mask must be a (B, C, H, W) tensor of zeros and ones")
        self.register_buffer("mask", mask.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mask * x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.mask * y

    def solve(self, y: torch.Tensor, z: torch.Tensor, alpha: float) -> torch.Tensor:
        m = self.mask.to(y.dtype)  # a float32 mask would round the division in float64 work
        return (m * y + alpha * z) / (m + alpha)

    def init(self, y: torch.Tensor) -> torch.Tensor:
        """The observed pixels, and each image's mean observed value in the holes (a black hole
        would be a poor first guess for the denoiser to start from)."""
        m = self.mask.to(y.dtype).expand_as(y)
        mean = (m * y).flatten(1).sum(1) / m.flatten(1).sum(1).clamp_min(1)  # (B,)
        return m * y + (1 - m) * mean.view(-1, *[1] * (y.ndim - 1))


def random_mask(shape: tuple[int, ...], keep: float = 0.2, generator: torch.Generator | None = None) -> torch.Tensor:
    """A mask of ``shape`` (B, 1, H, W) keeping each pixel with probability ``keep``."""
    return (torch.rand(shape, generator=generator) < keep).float()


def block_mask(shape: tuple[int, ...], size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A mask of ``shape`` (B, 1, H, W) with one ``size`` x ``size`` hole per image at a random place."""
    b, _, h, w = shape
    if not 0 < size < min(h, w):
        raise ValueError(f"hole size {size} must be between 0 and the image side {min(h, w)}")
    m = torch.ones(shape)
    for i in range(b):
        top = int(torch.randint(h - size + 1, (1,), generator=generator))
        left = int(torch.randint(w - size + 1, (1,), generator=generator))
        m[i, :, top : top + size, left : left + size] = 0
    return m


# --- metrics ---------------------------------------------------------------------------------


def psnr(x: torch.Tensor, estimate: torch.Tensor, data_range: float = 1.0) -> float:
    r"""Mean over images of PSNR = 10 log10(data_range² / MSE) in dB (chapter 11), computed per
    image by ``skimage.metrics.peak_signal_noise_ratio``. The estimate is clipped to
    [0, data_range] first (an image outside the range is not a valid picture)."""
    if x.shape != estimate.shape:
        raise ValueError(f"shapes differ: {tuple(x.shape)} and {tuple(estimate.shape)}")
    from skimage.metrics import peak_signal_noise_ratio

    pairs = zip(_numpy_images(x), _numpy_images(estimate.clamp(0, data_range)), strict=True)
    return float(np.mean([peak_signal_noise_ratio(a, b, data_range=data_range) for a, b in pairs]))


def ssim(x: torch.Tensor, estimate: torch.Tensor, data_range: float = 1.0) -> float:
    """Mean over images of SSIM as Wang et al. (2004) define it: Gaussian window of σ = 1.5,
    K1 = 0.01, K2 = 0.03, population covariances (``skimage.metrics.structural_similarity``
    with ``gaussian_weights=True, use_sample_covariance=False``; scikit-image's own default is
    a 7x7 uniform window)."""
    if x.shape != estimate.shape:
        raise ValueError(f"shapes differ: {tuple(x.shape)} and {tuple(estimate.shape)}")
    from skimage.metrics import structural_similarity

    pairs = zip(_numpy_images(x), _numpy_images(estimate.clamp(0, data_range)), strict=True)
    return float(np.mean([
        structural_similarity(a, b, data_range=data_range, gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False, channel_axis=-1 if a.ndim == 3 else None)
        for a, b in pairs
    ]))


# --- the MMSE denoiser and Tweedie's formula ---------------------------------------------------


def tweedie(y: torch.Tensor, log_prob: Callable[[torch.Tensor], torch.Tensor], sigma: float) -> torch.Tensor:
    r"""Tweedie's formula (Robbins, 1956; Efron, 2011; chapter 11): for y = x + σ n with
    n ~ N(0, I), the MMSE denoiser is

    .. math:: \mathbb E[x \mid y] = y + \sigma^2 \nabla_y \log p_\sigma(y),

    where p_σ is the density of the *noisy* y. ``log_prob`` maps y (elementwise or per row) to
    log p_σ(y); its gradient is taken by autograd. Chapter 14 reads it the other way round: a
    trained denoiser gives the score ∇ log p_σ = (D(y) - y) / σ²."""
    y = y.detach().requires_grad_(True)
    (score,) = torch.autograd.grad(log_prob(y).sum(), y)
    return (y + sigma**2 * score).detach()


def mixture_posterior_mean(
    y: torch.Tensor, weights: torch.Tensor, means: torch.Tensor, stds: torch.Tensor, sigma: float,
) -> torch.Tensor:
    r"""E[x | y] in closed form for a 1-D Gaussian-mixture prior x ~ Σ_k π_k N(μ_k, s_k²) and
    y = x + σ n: the posterior is a mixture of the components' Gaussian posteriors,

    .. math:: \mathbb E[x\mid y] = \sum_k w_k(y)\Big(\mu_k + \frac{s_k^2}{s_k^2 + \sigma^2}(y - \mu_k)\Big),
              \quad w_k(y) \propto \pi_k\, \mathcal N(y;\ \mu_k,\ s_k^2 + \sigma^2).

    The reference chapter 11 checks :func:`tweedie` and a trained denoiser against."""
    var = stds**2 + sigma**2  # (K,)
    logw = torch.log(weights) - 0.5 * (y[..., None] - means) ** 2 / var - 0.5 * torch.log(var)
    w = torch.softmax(logw, -1)  # (..., K)
    return (w * (means + stds**2 / var * (y[..., None] - means))).sum(-1)


# --- measuring a restorer ------------------------------------------------------------------


def evaluate(
    restore: Callable[[torch.Tensor], torch.Tensor], clean: dict[str, torch.Tensor],
    degrade: Callable[[torch.Tensor, torch.Generator], torch.Tensor], seed: int = 0,
) -> dict[str, float | dict[str, float]]:
    """PSNR and SSIM of ``restore`` on each image of ``clean`` ({name: (1, C, H, W)}), degraded
    by ``degrade(x, generator)`` with a generator seeded by ``seed`` and the image's position, so
    that every method sees the same degraded images. Returns the means over images, the
    per-image PSNR and the total seconds ``restore`` took (chapter 11's tables)."""
    out: dict[str, dict[str, float]] = {"psnr": {}, "ssim": {}}
    seconds = 0.0
    for i, (name, x) in enumerate(clean.items()):
        _check(x)
        y = degrade(x, torch.Generator().manual_seed(seed + i))
        t0 = time.perf_counter()
        with torch.no_grad():
            est = restore(y)
        seconds += time.perf_counter() - t0
        out["psnr"][name], out["ssim"][name] = psnr(x, est), ssim(x, est)
    return {"psnr": float(np.mean(list(out["psnr"].values()))), "ssim": float(np.mean(list(out["ssim"].values()))),
            "seconds": seconds, "per_image": out["psnr"]}


# --- restoration with a prior ----------------------------------------------------------------


@torch.no_grad()
def pnp_hqs(
    y: torch.Tensor, op: Operator, denoiser: Callable[[torch.Tensor, float], torch.Tensor], sigma: float,
    iters: int = 24, sigma_start: float = 49 / 255, sigma_end: float | None = None, lam: float = 0.23,
    turn: bool = True,
) -> torch.Tensor:
    r"""Plug-and-play half-quadratic splitting (Zhang et al., 2021, DPIR; chapter 11).

    Solves min_x ||y - Ax||² / (2σ²) + λ R(x) by alternating a data step and a denoising step,
    with the denoiser's strength σ_k falling geometrically from ``sigma_start`` to ``sigma_end``
    (by default the noise level σ, at least 1/255) over ``iters`` iterations:

    .. math:: x_k = \arg\min_x \|y - Ax\|^2 + \alpha_k \|x - z_{k-1}\|^2,\quad
              \alpha_k = \lambda\,\sigma^2/\sigma_k^2;\qquad z_k = D(x_k, \sigma_k).

    ``denoiser(image, sigma_k)`` is any Gaussian denoiser of images in [0, 1] (the course's
    :class:`course_lib.denoisers.Denoiser`); the prior R is only implicit in it. With ``turn``
    (DPIR's periodic geometric self-ensemble) iteration k denoises a flipped or turned copy,
    the k-th of the 8, and turns the result back: the denoiser's own artefacts then point in a
    different direction at every iteration and average out, at no extra cost.
    """
    noise = max(sigma, 1 / 255)
    levels = np.geomspace(sigma_start, noise if sigma_end is None else sigma_end, iters)
    z = op.init(y)
    for k, s in enumerate(levels):
        x = op.solve(y, z, lam * noise**2 / float(s) ** 2)
        if turn:  # iteration k denoises the k-th of the 8 flips / quarter turns, then undoes it
            t, f = k % 4, (k // 4) % 2 == 1
            x = torch.rot90(x.flip(-1) if f else x, t, (-2, -1))
            z = denoiser(x, float(s))
            z = torch.rot90(z, -t, (-2, -1))
            z = z.flip(-1) if f else z
        else:
            z = denoiser(x, float(s))
    return z


def deep_image_prior(
    y: torch.Tensor, op: Operator | None = None, iters: int = 1000, lr: float = 1e-3,
    channels: tuple[int, ...] = (64, 128, 256), blocks: int = 1, input_noise: float = 1 / 30,
    clean: torch.Tensor | None = None, every: int = 25, seed: int = 0,
) -> tuple[torch.Tensor, dict[str, list[float]]]:
    """Deep Image Prior (Ulyanov et al., 2018): fit a randomly initialised U-Net ``f`` that maps a
    fixed random code to the image, minimising ||A f(z) - y||²; the network fits structure
    before noise, so the output is restored only if the fit is stopped early. The code is
    jittered by ``input_noise`` every step, as in the paper; the learning rate is lower than the
    paper's 0.01 because this U-Net has no normalisation layers (0.003 already diverged). Returns the last output and a
    curve ``{"step", "loss", "psnr"}`` (PSNR against ``clean`` when given, every ``every`` steps:
    the early-stopping curve of chapter 11)."""
    from .blocks import UNet

    _check(y)
    op = Identity() if op is None else op
    gen = torch.Generator().manual_seed(seed)
    shape = op.init(y).shape
    torch.manual_seed(seed)
    net = UNet(32, shape[1], channels, blocks)
    code = 0.1 * torch.rand(shape[0], 32, *shape[-2:], generator=gen)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    curve: dict[str, list[float]] = {"step": [], "loss": [], "psnr": []}
    out = torch.sigmoid(net(code))
    for i in range(iters):
        jitter = input_noise * torch.randn(code.shape, generator=gen)
        out = torch.sigmoid(net(code + jitter))
        loss = (op(out) - y).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i % every == 0 or i == iters - 1:
            curve["step"].append(i)
            curve["loss"].append(float(loss.detach()))
            if clean is not None:
                with torch.no_grad():
                    curve["psnr"].append(psnr(clean, torch.sigmoid(net(code))))
    with torch.no_grad():
        return torch.sigmoid(net(code)), curve


def latent_restore(
    generate: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor, op: Operator, z_dim: int,
    sigma: float = 0.1, steps: int = 300, lr: float = 0.05, restarts: int = 4, seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Restore with a generative model's prior (Bora et al., 2017; chapter 11): the MAP latent

    .. math:: z^* = \arg\min_z \frac{\|A\,G(z) - y\|^2}{2\sigma^2} + \frac{\|z\|^2}{2},

    by Adam from ``restarts`` random starts per image (the best kept), and ``G(z*)``.
    ``generate`` maps (B, z_dim) codes to images in [0, 1] (a VAE decoder's mean, a GAN
    generator). Only images the model can produce come out: a digit unlike the training
    digits is replaced by the nearest one it can draw. Returns (images, codes).
    """
    _check(y)
    gen = torch.Generator().manual_seed(seed)
    b = y.shape[0]
    z = torch.randn(restarts, b, z_dim, generator=gen).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)

    def energy() -> torch.Tensor:  # (restarts, B)
        x = generate(z.reshape(-1, z_dim)).reshape(restarts, *y.shape)
        fit = (op(x.flatten(0, 1)).reshape(restarts, b, -1) - y.flatten(1)).square().sum(-1)
        return fit / (2 * sigma**2) + 0.5 * z.square().sum(-1)

    for _ in range(steps):
        loss = energy().sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        best = energy().argmin(0)  # (B,)
        codes = z.detach()[best, torch.arange(b)]
        return generate(codes), codes


# --- the shipped denoiser and the saved benchmark ----------------------------------------------

BENCHMARK = Path(__file__).parent / "assets" / "bench" / "restoration.json"


def benchmark_table(path: str | Path = BENCHMARK) -> str:
    """``benchmarks/bench_restoration.py --save``'s table as Markdown ('' if nothing is saved)."""
    path = Path(path)
    if not path.is_file():
        return ""
    import json

    saved = json.loads(path.read_text())
    rows = ["| σ (×1/255) | method | PSNR (dB) | SSIM | seconds (4 photos) | training steps |",
            "|---|---|---|---|---|---|"]
    for r in saved["rows"]:
        rows.append(f"| {r['sigma']:g} | {r['method']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['seconds']:.1f} | "
                    f"{r.get('steps', '-')} |")
    return "\n".join(rows) + f"\n\n{saved.get('machine', '')}"



def pretrained_denoiser(sigma: float = 25 / 255) -> Denoiser:
    """The course's shipped denoiser (chapter 11), set to noise level ``sigma`` ([0, 1] units):
    a :class:`course_lib.denoisers.Denoiser` trained once by ``tools/train_weights.py`` on
    σ ~ U(0, 55/255), loaded with ``weights_only=True``. Maps a noisy (B, 1, H, W) tensor to the
    denoised image at any H, W; ``model(y, s)`` uses another level."""
    from . import pretrained
    from .recipes import SHIPPED_DENOISER_CONFIG

    if not 0 < sigma < 1:
        raise ValueError(f"sigma={sigma}: give it in [0, 1] units (25/255, not 25)")
    entry = pretrained.manifest().get("ch11_denoiser")
    path = pretrained.WEIGHTS_DIR / "ch11_denoiser.pt"
    if entry is None or not Path(path).is_file():
        raise FileNotFoundError(f"the shipped denoiser {path} is missing: reinstall the course, or "
                                "train one with course_lib.recipes.train_denoiser")
    from .utils import load_checkpoint, sha256

    if sha256(path) != entry["sha256"]:
        raise RuntimeError(f"{path} does not match the manifest's SHA-256: reinstall the course")
    state = load_checkpoint(path)
    model = Denoiser(SHIPPED_DENOISER_CONFIG.channels, SHIPPED_DENOISER_CONFIG.blocks, sigma=sigma)
    weights = state["ema"].get("model", state["modules"]["model"])
    model.load_state_dict({k: v.float() for k, v in weights.items()})
    return model.eval()


