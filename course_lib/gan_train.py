r"""Training a GAN (chapters 3 and 4): :class:`GANTrainer`, on :class:`course_lib.train.Run`.

Also importable as ``course_lib.gan.GANTrainer``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import config_dict
from .gan import G_LOSSES, Generator, gan_step
from .optim import EMA
from .tracking import active
from .train import History, Run, validate_budget
from .validate import check_images

StepFn = Callable[..., dict[str, float]]


class GANTrainer:
    r"""Trains a GAN with :func:`course_lib.gan.gan_step` on :class:`course_lib.train.Run` (chapters 3, 4).

    Holds the two networks, their Adam optimisers, the ``history`` (``loss_d``,
    ``loss_g``, ``d_real``, ``d_fake`` per step) and ``snapshots``: a list of
    ``(step, images)`` sample grids drawn from fixed latent codes every
    ``sample_every`` steps, to watch training progress. ``save``/``load`` write
    and resume a checkpoint of the whole run (weights, optimiser states, EMA, random
    generators, data order, history, snapshots): a resumed run continues exactly.

    ``step_fn`` replaces :func:`course_lib.gan.gan_step` (chapter 3 plugs in the broken
    loops of :mod:`course_lib.gan_bugs` here); it has the same signature.

    ``r1_gamma`` weighs the R1 penalty of :func:`course_lib.gan.gan_step`; ``r1_every = k``
    applies it lazily, k times as strong on every k-th step (:meth:`r1_gamma_now`).
    ``lecam > 0`` weighs the LeCam regulariser (:func:`course_lib.gan.lecam_penalty`); its two
    moving averages are part of the run (saved and resumed with it).

    ``ema > 0`` also keeps an exponential moving average of the generator's weights
    (:class:`course_lib.optim.EMA`: Yazıcı et al., 2019; Karras et al., 2018).
    ``benchmarks/bench_gan.py --extra no-ema`` prints the FID of the average,
    ``G_ema``, against that of the last iterate for the chapter 4 recipe;
    :attr:`generator` returns the average, and snapshots are drawn from it.

    ``config`` (a recipe's dataclass or dict) is recorded with the trainer's own settings
    and the ``seed``: :meth:`load` of a checkpoint trained with other settings is an error
    naming them. ``checkpoint`` is a path the run saves to every ``save_every`` seconds
    and at the end of :meth:`fit` / :meth:`train`. ``shipped`` names the run's shipped weights
    (:mod:`course_lib.pretrained`), which ``trainer.run.resume()`` loads when they match.
    ``autocast`` (e.g. ``torch.bfloat16``) runs each step's forward passes in mixed precision
    (:func:`course_lib.scaling.precision`; the weights and optimisers stay in float32).
    """

    def __init__(
        self, G: Generator, D: nn.Module, *, lr_g: float = 2e-4, lr_d: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999), g_loss: str = "non_saturating",
        real_label: float = 1.0, r1_gamma: float = 0.0, r1_every: int = 1, lecam: float = 0.0,
        n_snapshot: int = 64, seed: int = 0,
        step_fn: StepFn | None = None, ema: float = 0.0, config: Any = None,
        checkpoint: str | os.PathLike | None = None, save_every: float = 30.0,
        shipped: str | None = None, autocast: torch.dtype | None = None,
    ):
        if g_loss not in G_LOSSES:
            raise ValueError(f"g_loss={g_loss!r}: choose one of {sorted(G_LOSSES)}")
        if not 0.0 < real_label <= 1.0:
            raise ValueError(f"real_label must be in (0, 1], got {real_label}")
        if getattr(D, "n_classes", 0) != G.n_classes:
            raise ValueError(f"G has n_classes={G.n_classes} but D has {getattr(D, 'n_classes', 0)}")
        if not 0.0 <= ema < 1.0:
            raise ValueError(f"ema must be in [0, 1), got {ema}")
        self.opt_g = torch.optim.Adam(G.parameters(), lr=lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(D.parameters(), lr=lr_d, betas=betas)
        if not isinstance(r1_every, int) or r1_every < 1:
            raise ValueError(f"r1_every must be a positive int, got {r1_every!r}")
        self.settings = {"g_loss": g_loss, "real_label": real_label, "r1_gamma": r1_gamma}
        self.r1_every = r1_every
        if not 0.0 <= lecam < float("inf"):
            raise ValueError(f"lecam must be a finite weight >= 0, got {lecam}")
        self.lecam = lecam
        # the schedule is part of the penalty: recorded with it, and only where there is one;
        # so is LeCam's weight (runs without it keep the records they were saved with)
        lazy = {"r1_every": r1_every} if r1_gamma else {}
        lecam_record = {"lecam": lecam} if lecam else {}
        recorded = {**config_dict(config), "lr_g": lr_g, "lr_d": lr_d, "betas": list(betas),
                    **self.settings, **lazy, **lecam_record, "ema": ema}
        self._ema = EMA(G, ema) if ema else None
        self.step_fn = step_fn or gan_step
        self.autocast = autocast
        self.run = Run(
            {"generator": G, "discriminator": D}, {"g": self.opt_g, "d": self.opt_d},
            ema={"generator": self._ema} if self._ema else {}, config=recorded, seed=seed,
            path=checkpoint, save_every=save_every, shipped=shipped,
        )
        gen = torch.Generator().manual_seed(seed)
        fixed_z = torch.randn(n_snapshot, G.latent_dim, generator=gen)  # (n_snapshot, latent_dim)
        self.run.extra = {"snapshots": [], "fixed_z": fixed_z}
        if lecam:  # (alpha_R, alpha_F); NaN until the first step sets them
            self.run.extra["lecam_anchors"] = torch.full((2,), float("nan"))
        self.fixed_labels = torch.arange(n_snapshot) % G.n_classes if G.n_classes else None

    @property
    def G(self) -> Generator:
        return self.run.modules["generator"]

    @G.setter
    def G(self, module: Generator) -> None:
        self.run.modules["generator"] = module

    @property
    def D(self) -> nn.Module:
        return self.run.modules["discriminator"]

    @D.setter
    def D(self, module: nn.Module) -> None:
        self.run.modules["discriminator"] = module

    @property
    def config(self) -> dict[str, Any]:
        """The settings recorded in the checkpoint (the trainer's and the recipe's)."""
        return self.run.config

    @property
    def history(self) -> History:
        return self.run.history

    @property
    def snapshots(self) -> list[tuple[int, torch.Tensor]]:
        return [(int(s), x) for s, x in self.run.extra["snapshots"]]

    @property
    def fixed_z(self) -> torch.Tensor:
        return self.run.extra["fixed_z"]

    @property
    def steps_done(self) -> int:
        return self.run.step

    @property
    def G_ema(self) -> Generator | None:
        return self._ema.module if self._ema is not None else None

    @property
    def generator(self) -> Generator:
        """The generator to sample from: the weight average ``G_ema`` if ``ema > 0``, else ``G``."""
        return self.G_ema if self.G_ema is not None else self.G

    def snapshot(self) -> torch.Tensor:
        """Store and return samples from the fixed latent codes, ``(n_snapshot, C, H, W)``."""
        device = next(self.G.parameters()).device
        was_training = self.generator.training
        images = self.generator.sample(len(self.fixed_z), self.fixed_labels, z=self.fixed_z.to(device)).cpu()
        self.generator.train(was_training)
        self.run.extra["snapshots"].append([self.steps_done, images])
        if (board := active()) is not None:  # inside tracking.log_to (chapter 13)
            board.images(self.steps_done, "samples", images)
        return images

    def _check_data(self, images: torch.Tensor, labels: torch.Tensor | None, batch_size: int) -> None:
        shape = tuple(self.G.image_shape)
        if images.ndim != 4 or tuple(images.shape[1:]) != shape:
            raise ValueError(f"images must be (N, {', '.join(map(str, shape))}), got {tuple(images.shape)}")
        if len(images) < batch_size:
            raise ValueError(f"{len(images)} images are fewer than one batch of {batch_size}")
        check_images(images, "images")
        if self.G.n_classes and labels is None:
            raise ValueError("a conditional GAN needs labels")
        if not self.G.n_classes and labels is not None:
            raise ValueError("labels given to an unconditional GAN: pass n_classes to the models")
        if labels is not None and (len(labels) != len(images) or labels.min() < 0 or labels.max() >= self.G.n_classes):
            raise ValueError(f"labels must be {len(images)} ints in [0, {self.G.n_classes})")

    def _step(self, batch: tuple[torch.Tensor, ...]) -> dict[str, float]:
        real = batch[0]
        y = batch[1] if len(batch) > 1 else None
        with torch.autocast(real.device.type, dtype=self.autocast or torch.bfloat16,
                            enabled=self.autocast is not None):
            # read from the run each step: load() replaces run.extra
            lecam = {"lecam": self.lecam, "lecam_anchors": self.run.extra["lecam_anchors"]} if self.lecam else {}
            return self.step_fn(self.G, self.D, self.opt_g, self.opt_d, real, y,
                                **{**self.settings, "r1_gamma": self.r1_gamma_now()}, **lecam)

    def r1_gamma_now(self) -> float:
        """The R1 weight of the next step: ``r1_gamma`` on every step, or with lazy regularisation
        (``r1_every = k > 1``; Karras et al., 2020) ``k * r1_gamma`` on every k-th step and 0 on
        the others: the same average penalty, and k - 1 of k steps without its double backward."""
        if self.run.step % self.r1_every:
            return 0.0
        return self.settings["r1_gamma"] * self.r1_every

    def fit(
        self, images: torch.Tensor, labels: torch.Tensor | None = None, *, batch_size: int = 64,
        epochs: float | None = None, steps: int | None = None, seconds: float | None = None,
        sample_every: int = 0, desc: str = "GAN",
    ) -> History:
        """Train until the *run's* first budget is spent (see :meth:`course_lib.train.Run.fit`).

        The budgets count from the start of the run, so after :meth:`load` of an interrupted
        run the same call finishes it. ``images`` are ``(N, C, H, W)`` in [0, 1]; ``labels``
        ``(N,)`` ints for a conditional GAN. Takes a snapshot before the first step and every
        ``sample_every`` steps.
        """
        self._check_data(images, labels, batch_size)
        device = next(self.G.parameters()).device
        tensors = (images,) if labels is None else (images, labels)
        self.G.train()
        self.D.train()
        if not self.run.extra["snapshots"]:
            self.snapshot()
        try:
            self.run.fit(
                self._step, tensors, batch_size, epochs=epochs, steps=steps, seconds=seconds,
                callback=lambda s, h: self.snapshot(), callback_every=sample_every, desc=desc,
                device=device,
            )
        finally:
            self.G.eval()
            self.D.eval()
        return self.history

    def train(
        self, images: torch.Tensor, labels: torch.Tensor | None = None, *, batch_size: int = 64,
        epochs: float | None = None, steps: int | None = None, seconds: float | None = None,
        sample_every: int = 0, desc: str = "GAN",
    ) -> History:
        """Train for a budget counted from this call: calling ``train`` again (or after
        :meth:`load`) trains further. Otherwise as :meth:`fit`."""
        validate_budget(steps=steps, epochs=epochs, seconds=seconds)
        if epochs is not None:
            by_epochs = max(1, int(epochs * (len(images) // batch_size)))
            steps = by_epochs if steps is None else min(steps, by_epochs)
        return self.fit(
            images, labels, batch_size=batch_size,
            steps=None if steps is None else self.run.step + steps,
            seconds=None if seconds is None else self.run.elapsed + seconds,
            sample_every=sample_every, desc=desc,
        )

    def state_dict(self) -> dict:
        return self.run.state_dict()

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the run's checkpoint atomically (to ``path``, or the trainer's ``checkpoint``)."""
        return self.run.save(path)

    def load(self, path: str | os.PathLike | None = None) -> GANTrainer:
        """Resume from a checkpoint written by :meth:`save` (safe load, ``weights_only=True``).

        The whole checkpoint is checked before anything is copied: a network that does not
        fit, or settings or a seed that differ from this trainer's, raise an error naming
        them, and the trainer is left as it was.
        """
        target = Path(path) if path is not None else self.run.path
        if target is None or not self.run.resume(target):
            raise FileNotFoundError(f"No checkpoint at {target}. Train first, or check the path.")
        return self

