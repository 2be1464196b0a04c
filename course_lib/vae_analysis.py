r"""Measurements on trained VAEs (chapters 7-8): what the bound is, and where it loses nats.

* :func:`beta_objectives` and :func:`beta_bound_facts`: the :math:`\beta`-objective
  :math:`\mathbb E_q\log p(x\mid z) - \beta\,\mathrm{KL}` is a lower bound on
  :math:`\log p(x)` for :math:`\beta \ge 1` (looser than the ELBO, since KL >= 0), while
  :math:`\beta < 1` can exceed :math:`\log p(x)` (Higgins et al., 2017; chapter 8).
* :func:`floor_excess`: nats of :math:`-\mathcal L(x)` above the entropy floor of the
  grey-level Bernoulli loss, the score that compares images with different grey levels (chapter 7).
* :func:`deterministic_elbo` and :func:`train_no_sampling`: the "VAE" that decodes
  :math:`z = \mu` instead of a sample, an autoencoder plus a penalty whose objective is not a bound
  (chapter 7).
* :func:`optimise_posterior` and :func:`inference_gaps`: the amortisation and
  approximation gaps of Cremer, Li & Duvenaud (2018), *Inference suboptimality in
  variational autoencoders* (chapter 7).

All quantities are per image, summed over pixels and latent dimensions, in nats.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

import torch

from .distributions import bernoulli_entropy, gaussian_kl
from .train import History, Run
from .vae import VAE

Posterior = tuple[torch.Tensor, torch.Tensor]  # (mu, logvar), each (B, z_dim)


def _batches(x: torch.Tensor, batch_size: int) -> Iterable[torch.Tensor]:
    for start in range(0, len(x), batch_size):
        yield x[start : start + batch_size]


# --- beta-objectives against the bound (chapter 8) -------------------------------------------


def beta_objective(log_px_z: torch.Tensor, kl: torch.Tensor, beta: float) -> torch.Tensor:
    r"""The :math:`\beta`-VAE objective :math:`\mathbb E_q\log p(x\mid z) - \beta\,\mathrm{KL}(q\,\|\,p)`, ``(B,)``.

    Higgins et al. (2017). ``beta = 1`` is the ELBO. Since KL >= 0 it is decreasing in
    beta: below the ELBO (a looser bound on :math:`\log p(x)`) for ``beta > 1``, above
    it for ``beta < 1``, where it can exceed :math:`\log p(x)` itself.
    """
    return log_px_z - beta * kl


@torch.no_grad()
def beta_objectives(
    vae: VAE, x: torch.Tensor, betas: Iterable[float], k: int, n_samples: int = 10, seed: int = 0,
    batch_size: int = 100,
) -> dict:
    r"""Mean :func:`beta_objective` over the images ``x`` for each beta, and the IWAE estimate (chapter 8).

    All on the *same* model and images: :math:`\mathbb E_q\log p(x\mid z)` from
    ``n_samples`` posterior samples per image, the closed-form KL, and
    ``"iwae"`` :math:`= \mathcal L_k`, the importance-weighted estimate of :math:`\log p(x)`
    (a lower bound that tightens with k, Burda et al., 2016). Returns
    ``{beta: value, ..., "iwae": value}``.
    """
    gen = torch.Generator().manual_seed(seed)
    vae.eval()
    rec, kl, iwae = [], [], []
    for xb in _batches(x.to(vae._device()), batch_size):
        terms = [vae.elbo(xb, generator=gen) for _ in range(n_samples)]
        rec.append(torch.stack([t.log_px_z for t in terms]).mean(0))  # (B,)
        kl.append(terms[0].kl)  # (B,): closed form, the same for every sample
        iwae.append(vae.iwae_bound(xb, k, generator=gen))
    rec_all, kl_all = torch.cat(rec), torch.cat(kl)
    out: dict = {float(b): float(beta_objective(rec_all, kl_all, b).mean()) for b in betas}
    out["iwae"] = float(torch.cat(iwae).mean())
    return out


def beta_bound_facts(objectives: Mapping, log_px: float | None = None) -> dict[str, bool]:
    r"""Which statements of chapter 8 a set of :func:`beta_objectives` supports.

    * ``"beta > 1 is below the ELBO"``: every objective with beta > 1 is <= the one at beta = 1;
    * ``"the ELBO is below log p(x)"``: objective(1) <= ``log_px`` (default ``objectives["iwae"]``);
    * ``"beta < 1 is above log p(x)"``: every objective with beta < 1 is > ``log_px``.

    The first two hold for any correct computation; the third holds only for a model
    whose code carries enough information (0.75 KL > the inference gap at beta = 1/4):
    a collapsed posterior (KL = 0) fails it. ``objectives`` needs the key ``1.0``.
    """
    log_px = objectives["iwae"] if log_px is None else log_px
    betas = [b for b in objectives if b != "iwae"]
    elbo = objectives[1.0]
    return {
        "beta > 1 is below the ELBO": all(objectives[b] <= elbo for b in betas if b > 1),
        "the ELBO is below log p(x)": elbo <= log_px,
        "beta < 1 is above log p(x)": all(objectives[b] > log_px for b in betas if b < 1),
    }


# --- a comparison that tests the model, not the grey levels (chapter 7) ----------------------


@torch.no_grad()
def floor_excess(vae: VAE, x: torch.Tensor, n_samples: int = 10, seed: int = 0) -> torch.Tensor:
    r"""Nats of :math:`-\mathcal L(x)` above the Bernoulli entropy floor :math:`\sum_i H(x_i)`, per image ``(B,)``.

    No Bernoulli decoder scores a grey image better than its binary entropies
    (:func:`~course_lib.distributions.bernoulli_entropy`, chapter 6), and that floor
    grows with the number of grey pixels: a cross-fade of two digits has about twice
    the grey of a digit. Comparing :math:`-\mathcal L` across images with different
    grey levels mostly compares floors; comparing the excess compares what the model knows.
    The ELBO is averaged over ``n_samples`` posterior samples.
    """
    gen = torch.Generator().manual_seed(seed)
    vae.eval()
    x = x.to(vae._device())
    elbo = torch.stack([vae.elbo(x, generator=gen).elbo for _ in range(n_samples)]).mean(0)  # (B,)
    return -elbo - bernoulli_entropy(x, dim=tuple(range(1, x.ndim)))


# --- the "VAE" that forgets to sample (chapter 7) -------------------------------------------


def deterministic_elbo(vae: VAE, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    r"""The objective of a VAE that decodes the mean code: :math:`\log p(x\mid z{=}\mu(x)) - \mathrm{KL}(q\,\|\,p)`, ``(B,)``.

    A classic seed error (chapter 7). It is an autoencoder's reconstruction plus the
    penalty :math:`\tfrac12\sum_j(\mu_j^2 + \sigma_j^2 - 1 - \log\sigma_j^2)`; it is not a
    lower bound on :math:`\log p(x)` (it can exceed it: for the linear-Gaussian model at the
    exact posterior it equals :math:`\log p(x) + \operatorname{tr}(W S W^\top)/2\sigma^2`).
    :math:`\sigma` reaches it only through the KL, whose optimum is :math:`\sigma = 1`.
    """
    mu, logvar = vae.encode(x, y)  # (B, z_dim) each
    c = y if vae.n_classes else None
    return vae.log_likelihood(x, vae.decode(mu, c, x)) - gaussian_kl(mu, logvar, dim=1)


def train_no_sampling(
    vae: VAE, x: torch.Tensor, *, lr: float = 1e-3, batch_size: int = 128, seed: int = 0,
    shipped: str | None = None, **budget
) -> History:
    """Train ``vae`` with Adam on ``-deterministic_elbo`` (the seed error of chapter 7) on a
    :class:`course_lib.train.Run`.

    The same loop as :func:`course_lib.vae.train_vae` with one line changed: no sample.
    ``budget``: ``steps=``, ``epochs=`` or ``seconds=`` (and ``desc=``...). Logs ``loss``
    (minus the deterministic objective) and ``kl``. ``shipped`` names shipped weights
    (:mod:`course_lib.pretrained`), loaded instead of training when they match.
    """
    opt = torch.optim.Adam(vae.parameters(), lr=lr)

    def step(batch):
        mu, logvar = vae.encode(batch[0])
        kl = gaussian_kl(mu, logvar, dim=1)  # (B,)
        loss = -(vae.log_likelihood(batch[0], vae.decode(mu, None, batch[0])) - kl).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item(), "kl": kl.mean().item()}

    run = Run({"model": vae}, {"opt": opt}, config={"lr": lr, "batch_size": batch_size, "objective": "no sampling"},
              seed=seed, shipped=shipped)
    run.resume()
    vae.train()
    try:
        run.fit(step, (x,), batch_size, device=vae._device(), **budget)
    finally:
        vae.eval()
    return run.history


# --- inference gaps (chapter 7; Cremer et al., 2018) -----------------------------------------


def elbo_of(vae: VAE, x: torch.Tensor, q: Posterior, n_samples: int = 1,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """The ELBO of ``x (B, ...)`` under the posterior ``q = (mu, logvar)``, averaged over ``n_samples`` samples, ``(B,)``."""
    return torch.stack([vae.elbo(x, generator=generator, q=q).elbo for _ in range(n_samples)]).mean(0)


def optimise_posterior(
    vae: VAE, x: torch.Tensor, steps: int, lr: float = 0.05, n_samples: int = 4, seed: int = 0,
) -> Posterior:
    r"""Fit :math:`q(z\mid x_b) = \mathcal N(\mu_b, \operatorname{diag}\sigma^2_b)` to each image by gradient ascent on its ELBO.

    The decoder is fixed; the free parameters ``(mu, logvar)`` of every image start at
    the encoder's output and follow Adam for ``steps`` steps on the reparameterised
    ELBO (``n_samples`` samples per step). The result is the best *diagonal Gaussian*
    the optimiser finds, with no encoder in between: Cremer et al. (2018). Returns
    ``(mu, logvar)``, each ``(B, z_dim)``, detached.
    """
    gen = torch.Generator().manual_seed(seed)
    vae.eval()
    with torch.no_grad():
        mu0, lv0 = vae.encode(x)
    mu, logvar = mu0.detach().clone().requires_grad_(True), lv0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([mu, logvar], lr=lr)
    for _ in range(steps):
        loss = -elbo_of(vae, x, (mu, logvar), n_samples, gen).sum()  # sum: each image's own step size
        grad_mu, grad_lv = torch.autograd.grad(loss, (mu, logvar))  # the decoder's weights get no gradient
        mu.grad, logvar.grad = grad_mu, grad_lv
        opt.step()
    return mu.detach(), logvar.detach()


class InferenceGaps(NamedTuple):
    """Means over images, in nats (Cremer et al., 2018): ``log_px - elbo_enc = approximation + amortisation``."""

    elbo_enc: float  # the ELBO with the encoder's q(z | x)
    elbo_opt: float  # the ELBO with q fitted to each image
    log_px: float  # IWAE estimate L_k of log p(x), with the fitted q as proposal
    amortisation: float  # elbo_opt - elbo_enc: lost because one network infers q for every image
    approximation: float  # log_px - elbo_opt: lost because q is a diagonal Gaussian
    amortisation_se: float  # standard error of `amortisation` over images
    approximation_se: float


@torch.no_grad()
def _bounds(vae: VAE, x: torch.Tensor, q: Posterior, n_samples: int, k: int, seed: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    return elbo_of(vae, x, q, n_samples, gen), vae.iwae_bound(x, k, generator=gen, q=q)


def inference_gaps(
    vae: VAE, x: torch.Tensor, steps: int, k: int, lr: float = 0.05, n_samples: int = 100, seed: int = 0,
    optimise: Callable[..., Posterior] = optimise_posterior,
) -> InferenceGaps:
    r"""The amortisation and approximation gaps of ``vae`` on images ``x`` (chapter 7; Cremer et al., 2018).

    .. math:: \log p(x) - \mathcal L_{\text{enc}} = \underbrace{\log p(x) - \mathcal L_{\text{opt}}}_{\text{approximation}}
              + \underbrace{\mathcal L_{\text{opt}} - \mathcal L_{\text{enc}}}_{\text{amortisation}}

    :math:`\mathcal L_{\text{opt}}` uses ``optimise(vae, x, steps, lr=lr, seed=seed)``
    (default :func:`optimise_posterior`); both ELBOs average ``n_samples`` samples per
    image with the same random numbers; :math:`\log p(x)` is the IWAE bound with ``k``
    samples of the fitted q. Standard errors are over images.
    """
    with torch.no_grad():
        q_enc = vae.encode(x)
    q_opt = optimise(vae, x, steps, lr=lr, seed=seed)
    elbo_enc, _ = _bounds(vae, x, q_enc, n_samples, 1, seed + 1)
    elbo_opt, log_px = _bounds(vae, x, q_opt, n_samples, k, seed + 1)
    amort, approx = elbo_opt - elbo_enc, log_px - elbo_opt  # (B,) each
    se = lambda t: float(t.std() / math.sqrt(len(t)))  # noqa: E731
    return InferenceGaps(float(elbo_enc.mean()), float(elbo_opt.mean()), float(log_px.mean()),
                         float(amort.mean()), float(approx.mean()), se(amort), se(approx))


def gaps_resolved(gaps: InferenceGaps, z: float = 4.0) -> dict[str, bool]:
    """Whether each gap exceeds ``z`` standard errors: an optimiser that does nothing fails the first."""
    return {
        "amortisation gap > noise": gaps.amortisation > z * gaps.amortisation_se,
        "approximation gap > noise": gaps.approximation > z * gaps.approximation_se,
    }


# --- is an IWAE estimate of the NLL consistent? (chapter 7) ----------------------------------


def iwae_facts(neg_elbo: float, nll_by_k: Mapping[int, float], nll_untrained: float | None = None,
               margin: float = 0.0) -> dict[str, bool]:
    r"""Which properties of the IWAE NLL estimates ``{k: -L_k}`` of one model hold (chapter 7).

    * ``"tightens with k"``: :math:`-\mathcal L_k` strictly decreases as k grows (Burda et al., 2016);
    * ``"below -ELBO"``: every :math:`-\mathcal L_k` with k > 1 is below ``neg_elbo``;
    * ``"learned"`` (if ``nll_untrained`` is given): the largest-k estimate is below the
      untrained model's NLL by more than ``margin`` nats.

    Averaging the log-weights (the ELBO again) fails the first; an untrained model the last.
    """
    ks = sorted(nll_by_k)
    vals = [nll_by_k[k] for k in ks]
    facts = {
        "tightens with k": all(b < a for a, b in zip(vals, vals[1:])),
        "below -ELBO": all(nll_by_k[k] < neg_elbo for k in ks if k > 1),
    }
    if nll_untrained is not None:
        facts["learned"] = vals[-1] < nll_untrained - margin
    return facts
