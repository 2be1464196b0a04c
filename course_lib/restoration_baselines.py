"""The classical restoration baselines of chapter 11, called through their libraries:
scikit-image's TV, wavelet and non-local-means denoisers, Wiener and Richardson-Lucy
deconvolution, biharmonic inpainting, bicubic resizing, and BM3D (the ``bm3d`` package: free
for non-commercial use only). Re-exported by :mod:`course_lib.restoration`; measured against the
learned restorers in ``benchmarks/bench_restoration.py``.

Images are (B, C, H, W) float tensors in [0, 1]; noise levels are in the same units (25/255).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def _check(x: torch.Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f"expected images (B, C, H, W), got shape {tuple(x.shape)}")


def _numpy_images(x: torch.Tensor) -> list[np.ndarray]:
    _check(x)
    return [im.permute(1, 2, 0).squeeze(-1).double().cpu().numpy() for im in x.detach()]


def _per_image(fn: Callable[[np.ndarray], np.ndarray], y: torch.Tensor) -> torch.Tensor:
    out = [torch.from_numpy(np.asarray(fn(im), dtype=np.float64)) for im in _numpy_images(y)]
    out = torch.stack([o.unsqueeze(0) if o.ndim == 2 else o.permute(2, 0, 1) for o in out])
    return out.to(y.dtype)


TV_WEIGHT = 0.9  # weight = TV_WEIGHT * sigma: chosen on the training photos (benchmarks/bench_restoration.py)
NLM_H = 0.8  # h = NLM_H * sigma: scikit-image's documented choice for fast_mode


def denoise_tv(y: torch.Tensor, sigma: float, weight: float | None = None) -> torch.Tensor:
    """Total-variation denoising (Chambolle's algorithm, ``skimage.restoration.denoise_tv_chambolle``)."""
    from skimage.restoration import denoise_tv_chambolle

    w = TV_WEIGHT * sigma if weight is None else weight
    return _per_image(lambda im: denoise_tv_chambolle(im, weight=w), y)


def denoise_wavelet(y: torch.Tensor, sigma: float) -> torch.Tensor:
    """Wavelet shrinkage with BayesShrink thresholds (``skimage.restoration.denoise_wavelet``)."""
    from skimage.restoration import denoise_wavelet as wavelet

    return _per_image(lambda im: wavelet(im, sigma=sigma, method="BayesShrink", mode="soft",
                                         rescale_sigma=True), y)


def denoise_nl_means(y: torch.Tensor, sigma: float) -> torch.Tensor:
    """Non-local means (Buades et al., 2005; ``skimage.restoration.denoise_nl_means``, 5x5
    patches searched within 13x13, h = 0.8σ with the noise variance subtracted)."""
    from skimage.restoration import denoise_nl_means as nlm

    return _per_image(lambda im: nlm(im, h=NLM_H * sigma, sigma=sigma, patch_size=5, patch_distance=6,
                                     fast_mode=True), y)


def denoise_bm3d(y: torch.Tensor, sigma: float) -> torch.Tensor:
    """BM3D (Dabov et al., 2007) from the ``bm3d`` package (free for non-commercial use only)."""
    import bm3d

    return _per_image(lambda im: bm3d.bm3d(im, sigma_psd=sigma), y)


CLASSICAL_DENOISERS: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "wavelet": denoise_wavelet, "tv": denoise_tv, "nl_means": denoise_nl_means, "bm3d": denoise_bm3d,
}


def wiener(y: torch.Tensor, kernel: torch.Tensor, balance: float = 0.01) -> torch.Tensor:
    """Wiener deconvolution (``skimage.restoration.wiener``; a Laplacian regulariser weighted by
    ``balance``, circular boundary like :class:`Blur`)."""
    from skimage.restoration import wiener as sk_wiener

    psf = kernel.double().numpy()
    return _per_image(lambda im: sk_wiener(im, psf, balance, clip=False), y)


def richardson_lucy(y: torch.Tensor, kernel: torch.Tensor, iters: int = 30) -> torch.Tensor:
    """Richardson-Lucy deconvolution (``skimage.restoration.richardson_lucy``), for positive
    images. The library convolves with zero padding; the image is padded by wrapping around
    first (and cropped back), to match the circular boundary of :class:`Blur`."""
    from skimage.restoration import richardson_lucy as rl

    psf = kernel.double().numpy()
    p = max(psf.shape)

    def one(im: np.ndarray) -> np.ndarray:
        big = np.pad(np.clip(im, 0, None), p, mode="wrap")
        return rl(big, psf, num_iter=iters, clip=False)[p:-p, p:-p]

    return _per_image(one, y)


def inpaint_biharmonic(y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fill the pixels where ``mask`` is 0 by a smooth (biharmonic) interpolation
    (``skimage.restoration.inpaint_biharmonic``)."""
    from skimage.restoration import inpaint_biharmonic as biharmonic

    holes = [m[0] == 0 for m in mask.expand(y.shape[0], *mask.shape[1:]).cpu().numpy()]
    ims = _numpy_images(y)
    out = [torch.from_numpy(biharmonic(im, h)).unsqueeze(0) for im, h in zip(ims, holes, strict=True)]
    return torch.stack(out).to(y.dtype)


def bicubic(y: torch.Tensor, factor: int) -> torch.Tensor:
    """Bicubic upsampling by ``factor`` (``skimage.transform.rescale``, order 3, no anti-aliasing)."""
    from skimage.transform import rescale

    return _per_image(lambda im: rescale(im, factor, order=3, mode="reflect", anti_aliasing=False), y)
