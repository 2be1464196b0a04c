"""GANs on the 2-D ring and grid mixtures, with the remedies for mode collapse (chapter 5).

:func:`train_toy_gan` trains one of the chapter's methods on :func:`course_lib.data.toy_mixture`
data with :class:`course_lib.train.Run` (budgets, checkpoints, NaN refusal) and returns a
:class:`ToyGAN` with ``sample(n) -> (n, 2)``. The methods (:data:`METHODS`) differ only in the
loss, the critic's constraint, the critic's input and the latent:

* ``vanilla``: the non-saturating GAN of chapter 2 (Goodfellow et al., 2014);
* ``wgan-gp``: Wasserstein loss, gradient penalty λ = 10, five critic steps per generator
  step, Adam(β = (0.5, 0.9)) as in Gulrajani et al. (2017);
* ``sngan``: hinge loss and spectral normalisation of the critic (Miyato et al., 2018);
* ``r1``: non-saturating loss with the R1 penalty (Mescheder et al., 2018);
* ``pacgan4``: non-saturating loss, the discriminator judges packs of 4 samples (Lin et al., 2018);
* ``unrolled``: non-saturating loss, the generator's loss on D unrolled five steps ahead
  (Metz et al., 2017, :func:`course_lib.gan_stabilise.unrolled_critic`);
* ``mixture``: a latent that is a uniform mixture of ``K`` one-hot codes with Gaussian noise
  (a disconnected latent: a continuous generator of a connected latent must put mass between
  disconnected modes), with packing as ``pacgan4``;
* ``r1-drs``: ``r1``, then discriminator rejection sampling (Azadi et al., 2019) with a
  density-ratio discriminator fitted to the trained generator (:meth:`ToyGAN.fit_ratio`);
* ``fourier``: the vanilla GAN whose critic sees :class:`FourierFeatures` (Tancik et al., 2020);
* ``recipe``: the course's best. Three changes to the vanilla GAN, each for a reason the chapter
  measures: a disconnected latent of ``K = 200`` codes, each with a learned output offset
  started at a random training point (a continuous map of a connected latent must put mass
  between the modes; the data-point start gives every mode codes nearby, the data-dependent
  initialisation of k-means++ and of DeLiGAN-style latent mixtures, Gurumurthy et al., 2017);
  a critic on Fourier features, so it can see a mode of width 0.05 (an MLP on raw coordinates
  is too smooth to, and the generator is never told its modes are too wide); and a small R1
  penalty (γ = 0.01) with a linear learning-rate decay, so the sharp critic's game settles
  instead of jittering the modes by more than their width.

Scores: :func:`course_lib.metrics.mode_coverage` and :func:`course_lib.metrics.mode_statistics`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import gan_stabilise as S
from .gan import d_loss, g_loss_nonsaturating, r1_penalty
from .optim import EMA, optimizer_step
from .toy_data import toy_mixture
from .train import Run, validate_budget


@dataclass(frozen=True)
class ToyGANConfig:
    """The settings of one toy-GAN method (frozen: variants with ``dataclasses.replace``)."""

    loss: str = "ns"  # "ns" (non-saturating), "wgan" (Wasserstein) or "hinge"
    gp: float = 0.0  # WGAN-GP weight lambda
    r1_gamma: float = 0.0
    spectral_norm: bool = False
    pack: int = 1  # PacGAN degree m
    components: int = 0  # K one-hot latent codes (0: a plain Gaussian latent)
    fourier: float = 0.0  # > 0: the critic sees Fourier features up to this frequency
    offsets: bool = False  # a learned output offset per code, started at K random data points
    n_critic: int = 1
    unroll: int = 0  # k > 0: the G loss is on D unrolled k steps ahead (Metz et al., 2017)
    unroll_lr: float = 1e-2  # the step size of those k gradient steps
    latent_dim: int = 2
    hidden: int = 256
    depth: int = 3
    lr: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    batch_size: int = 256
    ema: float = 0.0  # > 0: sample from an EMA of G's weights with this decay (Yazici et al., 2019)
    lr_decay: bool = False  # decay both learning rates linearly to 0 over the budget
    ratio_steps: int = 0  # > 0: then fit a density-ratio D for rejection sampling (ToyGAN.fit_ratio)


BENCHMARK = Path(__file__).parent / "assets" / "bench" / "toy_gan.pt"  # benchmarks/bench_toy_gan.py --save
GAN_SHARE = 0.85  # of a time budget, the GAN's share when a method also fits a ratio D

METHODS: dict[str, ToyGANConfig] = {
    "vanilla": ToyGANConfig(),
    "wgan-gp": ToyGANConfig(loss="wgan", gp=10.0, n_critic=5, lr=1e-4, betas=(0.5, 0.9)),
    "sngan": ToyGANConfig(loss="hinge", spectral_norm=True, lr=2e-4, betas=(0.0, 0.9)),
    "r1": ToyGANConfig(r1_gamma=0.1),
    "pacgan4": ToyGANConfig(pack=4),
    "unrolled": ToyGANConfig(unroll=5),
    "mixture": ToyGANConfig(pack=4, components=64),
    "r1-drs": ToyGANConfig(r1_gamma=0.1, ratio_steps=1000),
    "fourier": ToyGANConfig(fourier=10.0),
    "recipe": ToyGANConfig(components=200, offsets=True, fourier=10.0, r1_gamma=0.01, lr_decay=True),
}


def _mlp(d_in: int, d_out: int, hidden: int, depth: int, act: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(d_in if i == 0 else hidden, hidden), act()]
    return nn.Sequential(*layers, nn.Linear(hidden, d_out))


class ToyGenerator(nn.Module):
    """MLP from a latent to R^2. With ``components = K > 0`` the latent is a one-hot code
    ``k ~ U{0..K-1}`` concatenated with ``z ~ N(0, I)``: a disconnected latent space."""

    def __init__(self, latent_dim: int = 2, hidden: int = 256, depth: int = 3, components: int = 0,
                 offsets: torch.Tensor | None = None):
        super().__init__()
        self.latent_dim, self.components = latent_dim, components
        self.net = _mlp(latent_dim + components, 2, hidden, depth, nn.ReLU)
        self.offsets = None
        if offsets is not None:
            if offsets.shape != (components, 2):
                raise ValueError(f"offsets must be (components, 2) = ({components}, 2), got {tuple(offsets.shape)}")
            self.offsets = nn.Parameter(offsets.clone().float())  # (K, 2)
            with torch.no_grad():  # start each code's samples near its offset
                self.net[-1].weight.mul_(0.1)
                self.net[-1].bias.zero_()

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.latent_dim, generator=generator)  # (n, latent_dim)
        if self.components:
            k = torch.randint(self.components, (n,), generator=generator)
            z = torch.cat([z, F.one_hot(k, self.components).float()], dim=1)  # (n, latent_dim + K)
        return z.to(next(self.parameters()).device)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.net(z)  # (n, 2)
        if self.offsets is not None:
            x = x + z[:, self.latent_dim :] @ self.offsets  # + the offset of each sample's code
        return x

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        was = self.training
        self.eval()
        x = self(self.sample_latent(n, generator)).cpu()
        self.train(was)
        return x


class FourierFeatures(nn.Module):
    r"""Random Fourier features :math:`[\sin 2\pi Bx, \cos 2\pi Bx]` (Tancik et al., 2020):
    ``n`` frequencies with random directions and magnitudes log-uniform in
    ``[f_min, f_max]`` cycles per unit, fixed (a buffer). An MLP on raw coordinates learns
    smooth functions first (its spectral bias) and cannot resolve modes of width 0.05 in a few
    thousand steps; on these features it can. ``(B, 2) -> (B, 2n)``."""

    def __init__(self, n: int = 256, f_max: float = 3.0, f_min: float = 0.1, seed: int = 0):
        super().__init__()
        if not 0 < f_min < f_max:
            raise ValueError(f"need 0 < f_min < f_max, got {f_min}, {f_max}")
        gen = torch.Generator().manual_seed(seed)
        freq = torch.empty(n).uniform_(math.log(f_min), math.log(f_max), generator=gen).exp()  # (n,)
        direction = F.normalize(torch.randn(n, 2, generator=gen), dim=1)  # (n, 2)
        self.register_buffer("B", 2 * math.pi * freq[:, None] * direction)  # (n, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(1) @ self.B.T  # (B, n)
        return torch.cat([h.sin(), h.cos()], dim=1)


class ToyCritic(nn.Module):
    """MLP from ``pack`` points of R^2 (concatenated, :func:`gan_stabilise.pack`) to one score;
    with ``fourier = f_max > 0`` each point first becomes :class:`FourierFeatures`."""

    def __init__(self, pack: int = 1, hidden: int = 256, depth: int = 3, spectral_norm: bool = False,
                 fourier: float = 0.0):
        super().__init__()
        self.pack = pack
        self.features = FourierFeatures(hidden, fourier) if fourier else None
        d_in = 2 * hidden if fourier else 2
        self.net = _mlp(d_in * pack, 1, hidden, depth, lambda: nn.LeakyReLU(0.2))
        if spectral_norm:
            S.spectral_normalise(self.net)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 2) -> (B // pack,)
        if self.features is not None:
            x = self.features(x)  # (B, 2 * hidden)
        return self.net(S.pack(x, self.pack)).squeeze(1)


class ToyGAN:
    """A trained toy GAN: ``sample(n)`` draws ``(n, 2)`` points; ``run`` is its training run."""

    def __init__(self, G: ToyGenerator, D: ToyCritic, run: Run, kind: str, method: str):
        self.G, self.D, self.run, self.kind, self.method = G, D, run, kind, method
        self.ratio: ToyCritic | None = None  # the discriminator rejection sampling uses

    def fit_ratio(self, data: torch.Tensor, steps: int = 1000, batch_size: int = 512, lr: float = 1e-3,
                  seed: int = 0, seconds: float | None = None) -> ToyCritic:
        r"""Train a copy of D, the generator fixed, with the plain logistic loss and no penalty,
        until its logit estimates :math:`\log p_\text{data}/p_g` (Azadi et al., 2019, keep
        training D after G for the same reason; a penalised D is too smooth to reject the
        samples between modes). Stops after ``steps`` or ``seconds``, whichever comes first."""
        ratio = copy.deepcopy(self.D).train()
        if ratio.pack != 1:
            raise ValueError("rejection sampling needs a discriminator of single samples (pack=1)")
        opt = torch.optim.Adam(ratio.parameters(), lr=lr, betas=(0.5, 0.999))
        gen = torch.Generator().manual_seed(seed)
        start = time.perf_counter()
        for _ in range(steps):
            if seconds is not None and time.perf_counter() - start > seconds:
                break
            real = data[torch.randint(len(data), (batch_size,), generator=gen)]
            fake = self.G.sample(batch_size, gen)
            optimizer_step(d_loss(ratio(real), ratio(fake)), opt, name="loss_d")
        self.ratio = ratio.eval()
        return self.ratio

    def sample(self, n: int, seed: int | None = None, rejection: bool | None = None,
               max_batches: int = 100, quantile: float = 0.99) -> torch.Tensor:
        r"""``n`` points ``(n, 2)``. ``rejection=True``: discriminator rejection sampling
        (Azadi et al., 2019): with the non-saturating loss, D's logit estimates
        :math:`\log p_\text{data}(x) / p_g(x)`, so a proposal ``x ~ p_g`` accepted with probability
        :math:`\exp(l(x) - l_\max)` is a sample of :math:`p_\text{data}` where the estimate is right.
        The bound :math:`l_\max` is the ``quantile`` of the logits of 10,000 burn-in proposals
        (Azadi et al. shift the acceptance by a percentile in the same way): proposals above it
        are always accepted, a small bias that keeps a peaked estimate from accepting nothing."""
        gen = None if seed is None else torch.Generator().manual_seed(seed)
        if rejection is None:  # by default when the method fitted a ratio estimate
            rejection = self.ratio is not None
        if not rejection:
            return self.G.sample(n, gen)
        if self.ratio is None:
            raise RuntimeError("call fit_ratio(data) first: rejection needs D's density-ratio estimate")
        kept: list[torch.Tensor] = []
        with torch.no_grad():
            proposals = self.G.sample(10_000, gen)  # (N, 2): the first batch also sets the bound
            logits = self.ratio(proposals)  # (N,)
            l_max = logits.quantile(quantile)  # burn-in estimate of max log p_data / p_g
            for _ in range(max_batches):
                u = torch.rand(len(logits), generator=gen)
                kept.append(proposals[u < torch.exp(logits - l_max)])  # above the bound: accepted
                if sum(len(k) for k in kept) >= n:
                    return torch.cat(kept)[:n]
                proposals = self.G.sample(10_000, gen)
                logits = self.ratio(proposals)
        got = sum(len(k) for k in kept)
        raise RuntimeError(f"rejection sampling accepted {got} of {max_batches * 10_000} proposals, fewer "
                           f"than the {n} asked for: the ratio estimate is too peaked (refit it, or sample "
                           "with rejection=False)")


def build_models(cfg: ToyGANConfig, data: torch.Tensor | None = None) -> tuple[ToyGenerator, ToyCritic]:
    """The generator and critic of ``cfg``; the offsets start at random rows of ``data``
    (zeros without data: for loading trained weights)."""
    offsets = None
    if cfg.offsets:
        offsets = torch.zeros(cfg.components, 2) if data is None else data[torch.randint(len(data), (cfg.components,))]
    G = ToyGenerator(cfg.latent_dim, cfg.hidden, cfg.depth, cfg.components, offsets)
    return G, ToyCritic(cfg.pack, cfg.hidden, cfg.depth, cfg.spectral_norm, cfg.fourier)


def _losses(cfg: ToyGANConfig):
    if cfg.loss == "ns":
        return d_loss, g_loss_nonsaturating
    if cfg.loss == "wgan":
        return S.wasserstein_d_loss, S.wasserstein_g_loss
    if cfg.loss == "hinge":
        return S.hinge_d_loss, S.hinge_g_loss
    raise ValueError(f"loss={cfg.loss!r}: choose 'ns', 'wgan' or 'hinge'")


def train_toy_gan(
    kind: str, seconds: float | None = None, seed: int = 0, method: str = "vanilla", *,
    steps: int | None = None, config: ToyGANConfig | None = None, n_data: int = 100_000,
    shipped: str | None = None, desc: str | None = None, snapshot_every: int = 0,
) -> ToyGAN:
    """Train ``method`` (a key of :data:`METHODS`, or ``config``) on the ``kind`` mixture
    (``"ring"`` or ``"grid"``, :func:`course_lib.data.toy_mixture`) for ``seconds`` of
    training time or ``steps`` generator steps (chapter 5). ``n_data`` training points are
    drawn once (seed ``seed``); ``shipped`` names shipped weights (:mod:`course_lib.pretrained`).
    ``snapshot_every = n > 0`` keeps 1,000 samples of G every n steps in ``run.extra["snapshots"]``
    (a list of ``(step, (1000, 2) tensor)``), to watch the training."""
    validate_budget(steps=steps, seconds=seconds)
    if config is None:
        if method not in METHODS:
            raise ValueError(f"method={method!r}: choose one of {sorted(METHODS)}")
        config = METHODS[method]
    cfg = config
    d_fn, g_fn = _losses(cfg)
    torch.manual_seed(seed)
    data = toy_mixture(kind, n_data, seed=seed).samples  # (n_data, 2)
    G, D = build_models(cfg, data)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=cfg.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=cfg.betas)
    ema = {"generator": EMA(G, cfg.ema)} if cfg.ema else {}
    run = Run({"generator": G, "discriminator": D}, {"g": opt_g, "d": opt_d}, ema=ema,
              config={**dataclasses.asdict(cfg), "kind": kind, "n_data": n_data}, seed=seed, shipped=shipped)
    run.resume()
    b = cfg.batch_size

    def step(batch):
        if cfg.lr_decay:  # the fraction of the budget spent: steps or seconds, whichever is ahead
            done = max(run.step / steps if steps else 0.0, run.elapsed / seconds if seconds else 0.0)
            for opt in (opt_g, opt_d):
                for group in opt.param_groups:
                    group["lr"] = cfg.lr * max(0.0, 1.0 - done)
        real_all = batch[0]  # (n_critic * b, 2)
        for i in range(cfg.n_critic):
            real = real_all[i * b : (i + 1) * b].requires_grad_(cfg.r1_gamma > 0)
            fake = G(G.sample_latent(b)).detach()
            real_scores = D(real)
            loss = d_fn(real_scores, D(fake))
            if cfg.gp:
                loss = loss + cfg.gp * S.gradient_penalty(D, real, fake)
            if cfg.r1_gamma:
                loss = loss + 0.5 * cfg.r1_gamma * r1_penalty(real_scores, real)
            optimizer_step(loss, opt_d, name="loss_d")
        fake = G(G.sample_latent(b))
        critic = S.unrolled_critic(D, d_fn, real.detach(), fake, cfg.unroll, cfg.unroll_lr) if cfg.unroll else D
        loss_g = g_fn(critic(fake))
        optimizer_step(loss_g, opt_g, name="loss_g")
        return {"loss_d": loss.item(), "loss_g": loss_g.item()}

    gan_seconds = seconds
    if seconds is not None and cfg.ratio_steps:  # the ratio's fit is part of the budget
        gan_seconds = GAN_SHARE * seconds
    snapshots = run.extra.setdefault("snapshots", [])

    def snapshot(i, history):
        snapshots.append((i + 1, G.sample(1000, torch.Generator().manual_seed(0))))

    run.fit(step, (data,), b * cfg.n_critic, steps=steps, seconds=gan_seconds,
            callback=snapshot if snapshot_every else None, callback_every=snapshot_every, desc=desc or f"{method} on {kind}")
    if ema:
        G = ema["generator"].module
    G.eval()
    model = ToyGAN(G, D, run, kind, method)
    if cfg.ratio_steps:
        model.fit_ratio(data, steps=cfg.ratio_steps, seed=seed,
                        seconds=None if seconds is None else seconds - gan_seconds)
    return model


def score(samples: torch.Tensor, kind: str) -> dict[str, float]:
    """The chapter's scores of ``samples (n, 2)`` of the ``kind`` mixture: modes captured and
    high-quality fraction (:func:`course_lib.metrics.mode_coverage`), spread and KL from uniform
    (:func:`course_lib.metrics.mode_statistics`; NaN when no sample is of high quality)."""
    from . import metrics

    mix = toy_mixture(kind, 1)
    cov = metrics.mode_coverage(samples, mix.centres, mix.std)
    try:
        spread, kl = metrics.mode_statistics(samples, mix.centres, mix.std)
    except ValueError:  # no high-quality sample: no spread, no histogram
        spread, kl = math.nan, math.nan
    return {"modes": cov.modes, "high quality": cov.high_quality, "spread": spread, "KL": kl}


def load_benchmark(path: str | Path = BENCHMARK) -> dict:
    """The samples ``benchmarks/bench_toy_gan.py --save`` kept: ``{"runs": {"kind/method/seed":
    {"samples": (2500, 2) float16, "steps": int, "seconds": float}}, "meta": {...}}`` (chapter 5
    scores them)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `python benchmarks/bench_toy_gan.py --save {path}`")
    return torch.load(path, weights_only=True)
