"""Image-to-image translation (chapter 12): pix2pix, CycleGAN, and the course's translator from
scikit-learn's 8x8 digits to MNIST's style.

* :class:`Translator`: a U-Net (:class:`course_lib.blocks.UNet`) from (B, 1, 28, 28) to
  (B, 1, 28, 28) in [0, 1]; :class:`PatchDiscriminator`: a PatchGAN (Isola et al., 2017) that
  scores every 18x18 patch of an image (or of an (input, output) pair) as real or fake.
* Losses: :func:`pix2pix_g_loss` (non-saturating GAN + λ·L1, Isola et al., 2017),
  :func:`lsgan_d_loss` / :func:`lsgan_g_loss` (least squares, Mao et al., 2017, CycleGAN's
  choice), :func:`cycle_consistency_loss` (Zhu et al., 2017), :func:`identity_loss`.
* :func:`mnist_as_digits`: MNIST digits through scikit-learn's preprocessing (32x32 bitmaps
  counted in 4x4 blocks), so that :func:`synthetic_pairs` (fixed pens) and
  :func:`ink_matched_pairs` (pens chosen so the ink matches the other domain's) build *paired*
  data between the two domains without labels.
* :func:`train_translator` trains ``"paired"`` (a paired loss alone: pix2pix's L1 baseline, or
  the course's translator), ``"pix2pix"``, ``"cyclegan"`` (unpaired) and ``"semi"`` (synthetic
  pairs + an unpaired adversarial term on the real scikit-learn digits) on :class:`course_lib.train.Run` (exact resume, shipped weights).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import UNet
from .config import make_config
from .data import digits_as_mnist, load_digits, load_mnist, to_mnist_frame
from .gan import d_loss, g_loss_nonsaturating
from .optim import cosine_lr, optimizer_step
from .train import Run, validate_budget
from .utils import bf16_is_fast, seed_everything

METHODS = ("paired", "pix2pix", "cyclegan", "semi")
PENS = ("ink", "thresholds")


def _check_digits(x: torch.Tensor, who: str = "images") -> None:
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"{who} must be (B, 1, H, W), got shape {tuple(x.shape)}")


# --- the two domains --------------------------------------------------------------------------

def mnist_as_digits(x: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """MNIST digits through the preprocessing of scikit-learn's digits (UCI optdigits; chapter 12):
    crop to the ink, scale (aspect kept) so the longer side fills a 32x32 box, binarise at
    ``threshold``, centre, and count the ink of each 4x4 block (0..16, divided by 16).

    ``x``: (N, 1, 28, 28) in [0, 1]. Returns (N, 1, 8, 8) in [0, 1]. A lower ``threshold``
    gives thicker strokes: scikit-learn's writers used a heavier pen than MNIST's.
    """
    _check_digits(x)
    if not 0 < threshold < 1:
        raise ValueError(f"threshold={threshold} must be in (0, 1)")
    bitmaps = to_mnist_frame(x, box=32, size=32) > threshold  # (N, 1, 32, 32)
    return F.avg_pool2d(bitmaps.float(), 4)  # (N, 1, 8, 8): ink counts / 16


def ink(digits: torch.Tensor) -> torch.Tensor:
    """The ink total of 8x8 digits (chapter 12): the sum of their block counts (each count / 16
    in [0, 1]), 0..64. ``digits``: (N, 1, 8, 8); returns (N,)."""
    _check_digits(digits)
    return digits.sum((1, 2, 3))


def pen_ladder(x: torch.Tensor, dilations: int = 4) -> torch.Tensor:
    """MNIST digits in the optdigits 32x32 box drawn with pens from light to heavy (chapter 12):
    binarised at 0.5, 0.3 and 0.15, then the 0.15 bitmap dilated 1 to ``dilations`` times by a
    3x3 square (each dilation widens a stroke by 2 pixels of 32).

    ``x``: (N, 1, 28, 28) in [0, 1]. Returns (3 + dilations, N, 1, 32, 32) bitmaps (0. or 1.).
    """
    _check_digits(x)
    box = to_mnist_frame(x, box=32, size=32)  # (N, 1, 32, 32)
    pens = [(box > t).float() for t in (0.5, 0.3, 0.15)]
    for _ in range(dilations):
        pens.append(F.max_pool2d(pens[-1], 3, stride=1, padding=1))
    return torch.stack(pens)


def synthetic_pairs(x: torch.Tensor, thresholds: tuple[float, ...] = (0.15, 0.3, 0.5)
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Paired data from MNIST alone: ``(sources, targets)`` with sources the digits ``x`` made
    into 8x8 digits (:func:`mnist_as_digits`, one copy per threshold) and rendered back into
    MNIST's frame as :func:`course_lib.data.digits_as_mnist` renders scikit-learn's, and targets
    the digits themselves. (N·T, 1, 28, 28) each."""
    sources = [to_mnist_frame(mnist_as_digits(x, t)) for t in thresholds]
    return torch.cat(sources), x.repeat(len(thresholds), 1, 1, 1)


def ink_matched_pairs(x: torch.Tensor, reference: torch.Tensor, copies: int = 3, seed: int = 0
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Paired data whose inputs carry the other domain's amount of ink (chapter 12).

    scikit-learn's digits hold about the same ink whatever the digit (a one as much as a zero,
    as if their preprocessing had evened out the strokes), where a fixed pen gives an MNIST one
    less than 60 % of a zero's ink (both measured in chapter 12). For each digit of ``x`` and each of ``copies``, an ink total is drawn from
    ``reference`` (the (M,) ink totals, :func:`ink`, of the other domain's 8x8 digits) and the pen of :func:`pen_ladder` whose 8x8 ink is closest
    to it draws the input, laid out as :func:`course_lib.data.digits_as_mnist` lays out
    scikit-learn's. Returns ``(sources, targets)``, (N·copies, 1, 28, 28) each; targets are the
    digits themselves, copy after copy.
    """
    if reference.ndim != 1 or len(reference) == 0:
        raise ValueError(f"reference must be a non-empty (M,) tensor of ink totals, got shape {tuple(reference.shape)}")
    if copies < 1:
        raise ValueError(f"copies={copies} must be at least 1")
    pens = pen_ladder(x)  # (L, N, 1, 32, 32)
    small = F.avg_pool2d(pens.flatten(0, 1), 4).view(*pens.shape[:2], 1, 8, 8)  # (L, N, 1, 8, 8)
    totals = ink(small.flatten(0, 1)).view(pens.shape[:2])  # (L, N)
    gen = torch.Generator().manual_seed(seed)
    rows = torch.arange(len(x))
    sources = []
    for _ in range(copies):
        target = reference.float()[torch.randint(len(reference), (len(x),), generator=gen)]  # (N,)
        pen = (totals - target).abs().argmin(0)  # (N,): the closest pen for each digit
        sources.append(to_mnist_frame(small[pen, rows]))
    return torch.cat(sources), x.repeat(copies, 1, 1, 1)


def digits_ink(split: str = "train") -> torch.Tensor:
    """The ink totals (:func:`ink`) of scikit-learn's 8x8 digits (``split`` of
    :func:`course_lib.data.load_digits`): (N,). Labels are not read."""
    return ink(load_digits(split).data)


def low_res_pairs(x: torch.Tensor, factor: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    """pix2pix's paired task of chapter 12: ``(sources, targets)`` with sources the digits ``x``
    averaged over ``factor``×``factor`` blocks (4x4 for 28x28 digits and the default 7) and
    scaled back up (bilinear), and targets the digits. Many sharp digits average to the same
    4x4 image: where a stroke goes is uncertain."""
    from .restoration import Downsample

    _check_digits(x)
    small = Downsample(factor)(x)  # (N, 1, 28/f, 28/f)
    return F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False).clamp(0, 1), x


PAIRS = ("digits", "low-res")


# --- networks --------------------------------------------------------------------------------

class Translator(nn.Module):
    """A U-Net image-to-image generator (pix2pix's generator, Isola et al., 2017, without its
    dropout noise): (B, 1, H, W) in [0, 1] to (B, 1, H, W) in [0, 1] (the sigmoid of
    :meth:`logits`)."""

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128), blocks: int = 1):
        super().__init__()
        self.net = UNet(1, 1, channels, blocks)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        _check_digits(x)
        return self.net(2 * x - 1)  # centred input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))


class PatchDiscriminator(nn.Module):
    """PatchGAN (Isola et al., 2017), scaled to 28x28 digits: three convolutions
    (4x4 stride 2, 4x4 stride 2, 3x3) give a (B, 1, H/4, W/4) map of logits, each of which sees
    an 18x18 patch of the input. ``in_ch = 2`` for pix2pix's conditional discriminator, which
    scores the (input, output) pair; 1 for CycleGAN's, which scores an image alone."""

    RECEPTIVE_FIELD = 18

    def __init__(self, in_ch: int = 1, width: int = 64):
        super().__init__()
        self.in_ch = in_ch
        self.net = nn.Sequential(
            nn.Conv2d(in_ch, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 1, 3, 1, 1),
        )

    def forward(self, *images: torch.Tensor) -> torch.Tensor:
        x = torch.cat(images, 1)
        if x.ndim != 4 or x.shape[1] != self.in_ch:
            raise ValueError(f"expected {self.in_ch} channel(s) in all, got shape {tuple(x.shape)}")
        return self.net(2 * x - 1)  # (B, 1, H/4, W/4)


# --- losses ----------------------------------------------------------------------------------

def pix2pix_g_loss(fake_logits: torch.Tensor, fake: torch.Tensor, target: torch.Tensor,
                   lam: float = 100.0) -> torch.Tensor:
    """pix2pix's generator objective (Isola et al., 2017, eq. 4; chapter 12): the non-saturating
    GAN loss of the conditional discriminator's patch logits on the fakes, plus λ times the mean
    absolute error to the paired target (λ = 100 in the paper)."""
    return g_loss_nonsaturating(fake_logits) + lam * (fake - target).abs().mean()


def pix2pix_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """pix2pix's discriminator objective: the GAN cross-entropy on patch logits, halved (the
    paper divides D's objective by 2 "to slow down the rate at which D learns")."""
    return 0.5 * d_loss(real_logits, fake_logits)


def lsgan_d_loss(real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN discriminator loss (Mao et al., 2017), as CycleGAN uses it:
    ½·(mean (D(y) − 1)² + mean D(G(x))²), on the raw outputs (no sigmoid)."""
    return 0.5 * ((real_out - 1).square().mean() + fake_out.square().mean())


def lsgan_g_loss(fake_out: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN generator loss (Mao et al., 2017): mean (D(G(x)) − 1)²."""
    return (fake_out - 1).square().mean()


def cycle_consistency_loss(G: nn.Module, F_: nn.Module, x: torch.Tensor, y: torch.Tensor,
                           fake_y: torch.Tensor | None = None, fake_x: torch.Tensor | None = None) -> torch.Tensor:
    """CycleGAN's cycle loss (Zhu et al., 2017, eq. 2; chapter 12, exercise 1):
    mean |F(G(x)) − x| + mean |G(F(y)) − y| for ``G``: X → Y and ``F_``: Y → X, with ``x`` from
    X and ``y`` from Y. Each image must come back to *itself* after the round trip. A trainer
    that has G(x) and F(y) already passes them as ``fake_y`` and ``fake_x``."""
    fake_y = G(x) if fake_y is None else fake_y
    fake_x = F_(y) if fake_x is None else fake_x
    return (F_(fake_y) - x).abs().mean() + (G(fake_x) - y).abs().mean()


def identity_loss(G: nn.Module, F_: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """CycleGAN's identity loss (Zhu et al., 2017, section 5.2): mean |G(y) − y| + mean |F(x) − x|:
    an image already in a map's target domain should pass through unchanged."""
    return (G(y) - y).abs().mean() + (F_(x) - x).abs().mean()


# --- training --------------------------------------------------------------------------------

@dataclass(frozen=True)
class TranslatorConfig:
    """How :func:`train_translator` trains (chapter 12). ``lam_l1`` is pix2pix's λ; ``lam_cycle``
    and ``lam_identity`` CycleGAN's (10 and 0.5·10 in the paper); ``adv`` weighs ``"semi"``'s
    unpaired adversarial term against its paired loss. ``pens`` says how the ``"digits"`` pairs
    are drawn: ``"ink"`` (:func:`ink_matched_pairs`, ``copies`` inputs per MNIST digit, the
    ink drawn from the scikit-learn training split's) or ``"thresholds"``
    (:func:`synthetic_pairs` with the fixed pens ``thresholds``)."""

    channels: tuple[int, ...] = (32, 64, 128)
    blocks: int = 1
    batch_size: int = 64
    lr: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    lam_l1: float = 100.0
    lam_cycle: float = 10.0
    lam_identity: float = 5.0
    adv: float = 0.05
    paired_loss: str = "bce"
    pens: str = "ink"
    copies: int = 3
    thresholds: tuple[float, ...] = (0.15, 0.3, 0.5)
    pairs: str = "digits"
    factor: int = 7
    width_d: int = 64
    bf16: str | bool = "auto"

    def __post_init__(self):
        if self.paired_loss not in ("l1", "bce"):
            raise ValueError(f"paired_loss={self.paired_loss!r}: choose 'l1' or 'bce'")
        if self.pairs not in PAIRS:
            raise ValueError(f"pairs={self.pairs!r}: choose one of {PAIRS}")
        if self.pens not in PENS:
            raise ValueError(f"pens={self.pens!r}: choose one of {PENS}")
        if self.copies < 1:
            raise ValueError(f"copies={self.copies} must be at least 1")
        if not self.thresholds or not all(0 < t < 1 for t in self.thresholds):
            raise ValueError(f"thresholds={self.thresholds}: give pen thresholds in (0, 1)")


def translator_config(config: TranslatorConfig | dict | None = None,
                      base: TranslatorConfig | None = None) -> TranslatorConfig:
    """``base`` (default :class:`TranslatorConfig`'s defaults) with ``config``'s changes, checked."""
    if isinstance(config, TranslatorConfig):
        return config
    return make_config(TranslatorConfig, base or TranslatorConfig(), **dict(config or {}))


def _pairs(cfg: TranslatorConfig, x: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    if cfg.pairs == "low-res":
        return low_res_pairs(x, cfg.factor)
    if cfg.pens == "thresholds":
        return synthetic_pairs(x, cfg.thresholds)
    return ink_matched_pairs(x, digits_ink("train"), cfg.copies, seed)


def _paired(model: Translator, x: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "bce":  # on logits, for the numerically stable form
        return F.binary_cross_entropy_with_logits(model.logits(x).float(), y)
    return (model(x).float() - y).abs().mean()


def train_translator(
    method: str = "paired", seconds: float | None = None, seed: int = 0, *, steps: int | None = None,
    config: TranslatorConfig | dict | None = None, checkpoint: str | os.PathLike | None = None,
    shipped: str | None = None, desc: str | None = None,
) -> Translator:
    """Train a translator from scikit-learn's digits (:func:`course_lib.data.digits_as_mnist`,
    its ``"train"`` split, labels unused) to MNIST's style (the 4,000 embedded training digits,
    labels unused), for ``seconds`` or ``steps`` (chapter 12).

    * ``"paired"``: the U-Net on the config's pairs (``pairs="digits"``: :func:`ink_matched_pairs`, or
      :func:`synthetic_pairs` with ``pens="thresholds"``; ``"low-res"``: :func:`low_res_pairs`) with the paired loss alone (pix2pix's "L1 only"
      baseline when ``paired_loss="l1"``; the course's translator with ``"bce"``).
    * ``"pix2pix"``: the same pairs, + λ·L1 and a conditional :class:`PatchDiscriminator`
      (:func:`pix2pix_g_loss`, :func:`pix2pix_d_loss`).
    * ``"cyclegan"``: no pairs: G (digits → MNIST), F (MNIST → digits), a PatchGAN on each side,
      least-squares GAN + cycle + identity losses (Zhu et al., 2017).
    * ``"semi"``: the paired loss on synthetic pairs + ``adv`` × the non-saturating GAN loss
      of an unconditional PatchGAN that compares G(real scikit-learn digits) with MNIST digits.

    The learning rates follow a cosine from their peak to 5 % of it over the budget. Returns G
    in eval mode with ``.history`` and ``.run``.
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r}: choose one of {METHODS}")
    validate_budget(steps=steps, seconds=seconds)
    cfg = translator_config(config)
    seed_everything(seed)
    mnist = load_mnist("train").data  # (4000, 1, 28, 28); labels never read
    digits = digits_as_mnist("train")[0]  # (N, 1, 28, 28); labels never read
    src, tgt = _pairs(cfg, mnist, seed) if method in ("paired", "pix2pix", "semi") else (None, None)

    G = Translator(cfg.channels, cfg.blocks)
    modules: dict[str, nn.Module] = {"model": G}
    if method == "pix2pix":
        modules["D"] = PatchDiscriminator(2, cfg.width_d)
    elif method == "semi":
        modules["D"] = PatchDiscriminator(1, cfg.width_d)
    elif method == "cyclegan":
        modules.update(F=Translator(cfg.channels, cfg.blocks), D=PatchDiscriminator(1, cfg.width_d),
                       D_x=PatchDiscriminator(1, cfg.width_d))
    gens = [p for k, m in modules.items() if not k.startswith("D") for p in m.parameters()]
    opts = {"opt": torch.optim.Adam(gens, lr=cfg.lr, betas=cfg.betas)}
    discs = [p for k, m in modules.items() if k.startswith("D") for p in m.parameters()]
    if discs:
        opts["opt_d"] = torch.optim.Adam(discs, lr=cfg.lr_d, betas=cfg.betas)
    gen = torch.Generator().manual_seed(seed)
    run = Run(modules, opts, generators={"batches": gen}, config={**dataclasses.asdict(cfg), "method": method},
              seed=seed, path=checkpoint, save_every=30.0, shipped=shipped)
    run.resume()
    use_bf16 = bf16_is_fast("cpu") if cfg.bf16 == "auto" else bool(cfg.bf16)
    amp = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if use_bf16 else nullcontext
    B = cfg.batch_size

    def draw(pool: torch.Tensor) -> torch.Tensor:
        return pool[torch.randint(len(pool), (B,), generator=gen)]

    def step(_batch):
        out: dict[str, float] = {}
        lr = cosine_lr(run.step / steps if steps is not None else run.elapsed / seconds, cfg.lr, floor=0.05)
        for o in opts.values():
            for group in o.param_groups:
                group["lr"] = lr * (cfg.lr_d / cfg.lr if o is opts.get("opt_d") else 1.0)
        if method in ("paired", "pix2pix", "semi"):
            idx = torch.randint(len(src), (B,), generator=gen)
            x, y = src[idx], tgt[idx]
        if method == "paired":
            with amp():
                loss = _paired(G, x, y, cfg.paired_loss)
        elif method == "pix2pix":
            D = modules["D"]
            with amp():
                fake = G(x)
                loss_d = pix2pix_d_loss(D(x, y).float(), D(x, fake.detach()).float())
            optimizer_step(loss_d, opts["opt_d"])
            with amp():
                loss = pix2pix_g_loss(D(x, fake).float(), fake.float(), y, cfg.lam_l1)
            out["loss_d"] = float(loss_d.detach())
        elif method == "semi":
            D = modules["D"]
            xs, real = draw(digits), draw(mnist)
            with amp():
                fake = G(xs)
                loss_d = d_loss(D(real).float(), D(fake.detach()).float())
            optimizer_step(loss_d, opts["opt_d"])
            with amp():
                loss = _paired(G, x, y, cfg.paired_loss) + cfg.adv * g_loss_nonsaturating(D(fake).float())
            out["loss_d"] = float(loss_d.detach())
        else:  # cyclegan: x from the digits' domain, y from MNIST's
            F_, D_y, D_x = modules["F"], modules["D"], modules["D_x"]
            x, y = draw(digits), draw(mnist)
            with amp():
                fake_y, fake_x = G(x), F_(y)
                loss_d = lsgan_d_loss(D_y(y).float(), D_y(fake_y.detach()).float()) + lsgan_d_loss(
                    D_x(x).float(), D_x(fake_x.detach()).float())
            optimizer_step(loss_d, opts["opt_d"])
            with amp():
                loss = (lsgan_g_loss(D_y(fake_y).float()) + lsgan_g_loss(D_x(fake_x).float())
                        + cfg.lam_cycle * cycle_consistency_loss(G, F_, x, y, fake_y, fake_x).float()
                        + cfg.lam_identity * identity_loss(G, F_, x, y).float())
            out["loss_d"] = float(loss_d.detach())
        optimizer_step(loss, opts["opt"])
        return {"loss": float(loss.detach()), **out}

    try:
        run.fit(step, torch.zeros(1), batch_size=1, steps=steps, seconds=seconds, desc=desc or method)
    finally:
        for m in modules.values():
            m.eval()
    G.history, G.run = run.history, run
    return G


@torch.no_grad()
def translate(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """``model`` applied in eval mode and in batches, without gradients: (N, 1, 28, 28) in [0, 1]."""
    _check_digits(x)
    was = model.training
    model.eval()
    try:
        return torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    finally:
        model.train(was)


@functools.cache
def mnist_svc():
    """The independent reader of chapter 12: scikit-learn's RBF support-vector classifier
    (C = 10) fitted on the 4,000 embedded MNIST training digits' pixels. Another model family
    and another library than the course's CNN, and nothing that the translators train with."""
    from sklearn.svm import SVC

    train = load_mnist("train")
    return SVC(C=10.0, gamma="scale").fit(train.data.flatten(1).numpy(), train.targets.numpy())


def svc_accuracy(images: torch.Tensor, labels: torch.Tensor) -> float:
    """The fraction of ``images`` that :func:`mnist_svc` reads as ``labels``."""
    _check_digits(images)
    pred = mnist_svc().predict(images.flatten(1).double().numpy())
    return float((torch.from_numpy(pred) == labels).float().mean())


@torch.no_grad()
def paired_test(model: nn.Module, pairs: str = "low-res", threshold: float = 0.3, factor: int = 7
                ) -> dict[str, float]:
    """A paired task on held-out digits (chapter 12): the 1,000 MNIST test digits degraded as
    ``pairs`` says (``"low-res"``: :func:`low_res_pairs` by ``factor``; ``"digits"``:
    :func:`mnist_as_digits` at ``threshold``) and translated back; the mean absolute error to the true digits (``l1``)
    and the classifier-FID of the translations against the true digits (``fid``)."""
    from .features import extract, load_mnist_classifier
    from .metrics import fid

    test = load_mnist("test").data
    if pairs not in PAIRS:
        raise ValueError(f"pairs={pairs!r}: choose one of {PAIRS}")
    source = low_res_pairs(test, factor)[0] if pairs == "low-res" else to_mnist_frame(mnist_as_digits(test, threshold))
    out = translate(model, source)
    clf = load_mnist_classifier()
    return {"l1": float((out - test).abs().mean()), "fid": fid(extract(clf, out), extract(clf, test))}


def evaluate(images: torch.Tensor, labels: torch.Tensor, classifier: nn.Module | None = None) -> dict[str, float]:
    """How MNIST-like translated digits are (chapter 12): the fractions read as their true
    ``labels`` by the independent reader (:func:`svc_accuracy`) and by the course's CNN, and the
    classifier-FID of ``images`` against the 1,000 held-out MNIST test digits (chapter 9's
    features). Compare FIDs only between sets of the same size: FID is biased upwards for small
    samples."""
    from .features import accuracy, extract, load_mnist_classifier
    from .metrics import fid

    _check_digits(images)
    clf = load_mnist_classifier() if classifier is None else classifier
    test = load_mnist("test").data
    return {"svc": svc_accuracy(images, labels), "cnn": accuracy(clf, images, labels),
            "fid": fid(extract(clf, images), extract(clf, test))}
