r"""The appendix's experiments: the common questions about GANs and VAEs, answered by measurement.

The appendix (``notebooks/appendix_questions.py``) builds each experiment from the chapters'
code; this module holds the few pieces it adds:

* :func:`mlp_gan` -- chapter 3's MLP GAN with a width knob, for the capacity and data-size
  sweeps (one small model, many runs);
* :class:`HeldOutELBO` -- a training callback that records the −ELBO of held-out sets in the
  run's history, so the curves ship with the weights; :func:`early_stopping` reads them;
* :func:`code_gaussian_kl` -- how far an encoder's codes are from the N(0, I) that its decoder
  is sampled from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from .gan import MLPDiscriminator, MLPGenerator
from .gan_train import GANTrainer, StepFn
from .train import History
from .vae import VAE
from .vae_train import evaluate

GAN_LR, GAN_BATCH = 1e-3, 64  # Adam (betas 0.5, 0.999), the settings of every sweep run


def mlp_gan(
    width: int = 256, seed: int = 0, shipped: str | None = None, config: dict | None = None,
    step_fn: StepFn | None = None, checkpoint: str | os.PathLike | None = None,
) -> GANTrainer:
    """Chapter 3's MLP GAN scaled by ``width``: G is 64-w-2w-784, D is 784-2w-w-1 (``width=256``
    has chapter 3's hidden sizes), Adam at :data:`GAN_LR`.

    Weights are initialised from ``seed``; ``shipped`` names the run's shipped weights and
    ``config`` records what else describes the run (e.g. the training-set size); ``step_fn``
    replaces the training step (the appendix plugs in a broken loop of :mod:`course_lib.gan_bugs`);
    ``checkpoint``: load the run found there, else train and save it there.
    """
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    torch.manual_seed(seed)
    G = MLPGenerator(latent_dim=64, hidden=(width, 2 * width))
    D = MLPDiscriminator(hidden=(2 * width, width))
    return GANTrainer(G, D, lr_g=GAN_LR, lr_d=GAN_LR, betas=(0.5, 0.999), seed=seed, shipped=shipped, step_fn=step_fn,
                      checkpoint=checkpoint,
                      config={"width": width, "batch_size": GAN_BATCH, **(config or {})})


class HeldOutELBO:
    """A ``callback(step, history)`` for :func:`course_lib.vae.train_vae` that appends the
    test −ELBO (:func:`course_lib.vae.evaluate`, one seeded posterior sample) of each held-out
    set to the history: columns ``"<name>_neg_elbo"`` and ``"eval_step"``. The history is saved
    with the run (and shipped with its weights), so the curves come back with a loaded run.
    """

    def __init__(self, vae: VAE, sets: Mapping[str, torch.Tensor]):
        if not sets:
            raise ValueError("give at least one held-out set")
        self.vae, self.sets = vae, dict(sets)

    def __call__(self, step: int, history: History) -> None:
        for name, x in self.sets.items():
            history.setdefault(f"{name}_neg_elbo", []).append(evaluate(self.vae, x)["neg_elbo"])
        history.setdefault("eval_step", []).append(step + 1)  # steps taken so far
        self.vae.train()


def early_stopping(history: History, select: str = "val", report: str = "test") -> tuple[int, float]:
    """Early stopping read from a history of :class:`HeldOutELBO`: the step where the
    ``select`` curve is lowest, and the ``report`` curve's value there.

    Choosing the step on one held-out set and reporting on another keeps the reported number
    honest: the minimum of the test curve itself would be chosen on the test set.
    """
    chosen, shown = history.get(f"{select}_neg_elbo"), history.get(f"{report}_neg_elbo")
    if not chosen or not shown or len(chosen) != len(shown):
        raise ValueError(f"the history has no matching '{select}_neg_elbo' and '{report}_neg_elbo' "
                         "columns: train with HeldOutELBO and callback_every > 0")
    best = min(range(len(chosen)), key=chosen.__getitem__)
    return int(history["eval_step"][best]), float(shown[best])


def code_gaussian_kl(codes: torch.Tensor) -> float:
    r"""KL( N(m, S) || N(0, I) ) in nats for the mean m and covariance S of ``codes (N, d)``:

    .. math:: \tfrac12 \left( \operatorname{tr} S + m^\top m - d - \log\det S \right).

    Zero when the codes look like the N(0, I) a decoder is sampled from; large for an
    autoencoder, whose codes nothing constrains (appendix, the "VAE" listing's mistake 3).
    It compares two moments only: a small value is necessary, not sufficient.
    """
    if codes.ndim != 2 or len(codes) <= codes.shape[1]:
        raise ValueError(f"codes must be (N, d) with N > d, got {tuple(codes.shape)}")
    c = codes.double()
    m = c.mean(0)
    s = torch.cov(c.T).reshape(c.shape[1], c.shape[1])
    return float(0.5 * (s.trace() + m @ m - c.shape[1] - torch.linalg.slogdet(s).logabsdet))
