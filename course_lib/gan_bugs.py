r"""Broken GAN training steps: the classic mistakes, kept so chapter 3 can show them failing.

**Do not train with these.** Each function has the signature of
:func:`course_lib.gan.gan_step` so it plugs into :class:`course_lib.gan.GANTrainer`
(``step_fn=``), and each docstring states the mistake, what it does to the
gradients, and the signature it leaves in the history. ``tests/test_gan_bugs.py``
checks that each one fails the way chapter 3 says it does.

Notation: :math:`l_r = l(x)`, :math:`l_f = l(G(z))` are discriminator logits,
:math:`\mathcal L_D = \operatorname{softplus}(-l_r) + \operatorname{softplus}(l_f)` and
:math:`\mathcal L_G = \operatorname{softplus}(-l_f)` (non-saturating). On a fake logit,

.. math:: \frac{\partial (\mathcal L_D + \mathcal L_G)}{\partial l_f} = \sigma(l_f) - (1 - \sigma(l_f)) = 2 D(G(z)) - 1,

so a network that receives the gradient of *both* losses is pushed towards
:math:`D(G(z)) = \tfrac12` from either side instead of towards its own goal.
"""

from __future__ import annotations

import torch
from torch import nn

from .gan import Generator, d_loss, g_loss_nonsaturating

BUGS = ("no_detach", "one_backward", "joint_step_stale", "log_sigmoid", "wrong_sign")


def _logs(loss_d, loss_g, real_logits, fake_logits) -> dict[str, float]:
    return {
        "loss_d": loss_d.item(), "loss_g": loss_g.item(),
        "d_real": torch.sigmoid(real_logits).mean().item(),
        "d_fake": torch.sigmoid(fake_logits).mean().item(),
    }


def step_shared_logits(
    G: Generator, D: nn.Module, opt_g, opt_d, real, labels=None, *, retain_graph: bool = False, **_
) -> dict[str, float]:
    r"""MISTAKE: both losses on one undetached forward of D, ``opt_d.step()`` between the backwards.

    The version most tutorials start from. PyTorch refuses it at ``loss_g.backward()``:
    with ``retain_graph=False`` the graph was freed by ``loss_d.backward()``
    ("Trying to backward through the graph a second time"); with ``retain_graph=True``
    ``opt_d.step()`` has changed D's weights in place, which ``loss_g``'s graph still
    needs ("modified by an inplace operation"). The forum "fixes" that make the
    error go away lead to :func:`step_no_detach` and :func:`step_joint_stale`.
    """
    fake = G(G.sample_latent(len(real)), labels)
    real_logits, fake_logits = D(real, labels), D(fake, labels)  # BUG: one forward for both losses
    loss_d = d_loss(real_logits, fake_logits)
    loss_g = g_loss_nonsaturating(fake_logits)
    opt_d.zero_grad()
    loss_d.backward(retain_graph=retain_graph)
    opt_d.step()  # changes D's weights in place ...
    opt_g.zero_grad()
    loss_g.backward()  # ... which loss_g's graph still needs: RuntimeError
    opt_g.step()
    return _logs(loss_d, loss_g, real_logits, fake_logits)


def step_no_detach(
    G: Generator, D: nn.Module, opt_g, opt_d, real, labels=None, *, retain_graph: bool = True, **_
) -> dict[str, float]:
    r"""MISTAKE: the D step sees undetached fakes, and G's gradients are zeroed only at the top.

    ``loss_d.backward()`` then also fills G's ``.grad`` with
    :math:`\nabla_G \mathcal L_D` (the direction that helps D), and the G step adds
    :math:`\nabla_G \mathcal L_G` on top: G descends :math:`\mathcal L_D + \mathcal L_G`,
    whose logit gradient :math:`2D(G(z)) - 1` aims at *confusing* D
    (:math:`D(G(z)) = \frac12`), not at fooling it. The learning signal of G
    shrinks from :math:`1 - D(G(z))` to :math:`1 - 2D(G(z))`.

    Without ``retain_graph=True`` the G step crashes first with "Trying to
    backward through the graph a second time": that error is how this bug
    usually shows up, and ``retain_graph=True`` is the wrong fix.
    """
    opt_d.zero_grad(set_to_none=True)
    opt_g.zero_grad(set_to_none=True)
    fake = G(G.sample_latent(len(real)), labels)
    real_logits, fake_logits = D(real, labels), D(fake, labels)  # BUG: fake is not detached
    loss_d = d_loss(real_logits, fake_logits)
    loss_d.backward(retain_graph=retain_graph)  # also writes grad L_D into G's parameters
    opt_d.step()
    loss_g = g_loss_nonsaturating(D(fake, labels))
    loss_g.backward()  # BUG: adds to the stale grad L_D left in G
    opt_g.step()
    return _logs(loss_d, loss_g, real_logits, fake_logits)


def step_undetached_zeroed(
    G: Generator, D: nn.Module, opt_g, opt_d, real, labels=None, **_
) -> dict[str, float]:
    r"""NOT A BUG, only wasteful: undetached fakes in the D step, G's gradients zeroed before G's backward.

    ``loss_d.backward(retain_graph=True)`` also runs backward through G (wasted
    work, and the graph of ``G(z)`` is kept in memory) and writes
    :math:`\nabla_G \mathcal L_D` into G's ``.grad``; ``opt_g.zero_grad()`` then clears
    it, and the G step uses a fresh forward of the updated D. The update is exactly
    that of :func:`course_lib.gan.gan_step`. So a missing ``detach`` alone is not what
    breaks a loop: :func:`step_shared_logits` crashes because it reuses D's forward
    across ``opt_d.step()``, :func:`step_no_detach` without ``retain_graph`` crashes
    because ``loss_d.backward()`` freed the graph of ``G(z)`` that the G step needs,
    and with ``retain_graph=True`` it is polluted because G's gradients are not
    zeroed between the two backwards.
    """
    fake = G(G.sample_latent(len(real)), labels)
    real_logits, fake_logits = D(real, labels), D(fake, labels)  # fake not detached
    loss_d = d_loss(real_logits, fake_logits)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward(retain_graph=True)  # keeps G(z)'s graph for the G step; wasted backward through G
    opt_d.step()
    loss_g = g_loss_nonsaturating(D(fake, labels))
    opt_g.zero_grad(set_to_none=True)  # clears the grad L_D that the D step left in G
    loss_g.backward()
    opt_g.step()
    return _logs(loss_d, loss_g, real_logits, fake_logits)


def step_one_backward(G: Generator, D: nn.Module, opt_g, opt_d, real, labels=None, **_) -> dict[str, float]:
    r"""MISTAKE: one backward through both networks, ``(loss_d + loss_g).backward()``, then both step.

    Each network descends :math:`\mathcal L_D + \mathcal L_G`. On the fakes both
    get the logit gradient :math:`2D(G(z)) - 1`: D stops learning to reject fakes
    (it now *helps* G) and both settle at :math:`D(G(z)) \approx \tfrac12`,
    where G's gradient vanishes. Signature: ``d_fake`` stays near 0.5 while
    ``d_real`` rises, and G never improves. (With the saturating G loss the fake
    terms cancel exactly and G's gradient is zero.)
    """
    fake = G(G.sample_latent(len(real)), labels)
    real_logits, fake_logits = D(real, labels), D(fake, labels)
    loss_d = d_loss(real_logits, fake_logits)
    loss_g = g_loss_nonsaturating(fake_logits)
    opt_d.zero_grad(set_to_none=True)
    opt_g.zero_grad(set_to_none=True)
    (loss_d + loss_g).backward()  # BUG: each net gets the gradient of both losses
    opt_d.step()
    opt_g.step()
    return _logs(loss_d, loss_g, real_logits, fake_logits)


def step_joint_stale(G: Generator, D: nn.Module, opt_g, opt_d, real, labels=None, **_) -> dict[str, float]:
    r"""MISTAKE: both optimisers stepped together, then D trained a second time on stale fakes.

    Typical "fix" of the in-place error that ``opt_d.step()`` between two
    backwards raises: backward both losses on the same undetached fakes, step
    both optimisers, then, to "train D more", a second D step on the same fakes
    ``fake.detach()`` made by the generator *before* its update. The first D
    update carries :math:`\nabla_D \mathcal L_G` (D helps G); G's update carries
    :math:`\nabla_G \mathcal L_D` (G helps D), as in :func:`step_one_backward`.
    """
    fake = G(G.sample_latent(len(real)), labels)
    real_logits, fake_logits = D(real, labels), D(fake, labels)
    loss_d = d_loss(real_logits, fake_logits)
    loss_g = g_loss_nonsaturating(fake_logits)
    opt_d.zero_grad(set_to_none=True)
    opt_g.zero_grad(set_to_none=True)
    loss_d.backward(retain_graph=True)
    loss_g.backward()  # BUG: accumulates grad L_G into D and grad L_D into G
    opt_d.step()
    opt_g.step()
    loss_d2 = d_loss(D(real, labels), D(fake.detach(), labels))  # BUG: stale fakes from the old G
    opt_d.zero_grad(set_to_none=True)
    loss_d2.backward()
    opt_d.step()
    return _logs(loss_d, loss_g, real_logits, fake_logits)


def step_log_sigmoid(G: Generator, D: nn.Module, opt_g, opt_d, real, labels=None, **_) -> dict[str, float]:
    r"""MISTAKE: losses written as ``torch.log`` of probabilities ``torch.sigmoid(logits)``.

    Mathematically the same as :func:`course_lib.gan.gan_step`, numerically not:
    in float32 :math:`\sigma(l)` rounds to exactly 1 for :math:`l \gtrsim 16.6`
    and to 0 for :math:`l \lesssim -103`, so :math:`\log(1 - D)` or :math:`\log D` becomes
    :math:`-\infty` and its gradient ``inf * 0 = nan``. Signature: a loss turns
    ``inf``/``nan`` as soon as D is confident enough; ``fit`` stops with
    :class:`FloatingPointError`. The softplus form never does.
    """
    fake = G(G.sample_latent(len(real)), labels)
    p_real = torch.sigmoid(D(real, labels))  # BUG: probabilities, then log
    p_fake = torch.sigmoid(D(fake.detach(), labels))
    loss_d = -(torch.log(p_real).mean() + torch.log(1 - p_fake).mean())
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    loss_g = -torch.log(torch.sigmoid(D(fake, labels))).mean()
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    return {"loss_d": loss_d.item(), "loss_g": loss_g.item(),
            "d_real": p_real.mean().item(), "d_fake": p_fake.mean().item()}


def step_wrong_sign(G: Generator, D: nn.Module, opt_g, opt_d, real, labels=None, **_) -> dict[str, float]:
    r"""MISTAKE: the discriminator loss with the wrong sign, ``loss_d = log D(x) + log(1 - D(G(z)))``.

    D *minimises* :math:`V` instead of maximising it: it learns to call real
    images fake and fakes real, without bound (the loss falls like
    :math:`l_f - l_r` towards :math:`-\infty`). G's non-saturating loss is then already near
    0 and its gradient :math:`1 - D(G(z))` vanishes. Signature: ``d_real``
    falls to 0, ``d_fake`` rises to 1, ``loss_d`` keeps falling, and G never improves.
    """
    fake = G(G.sample_latent(len(real)), labels)
    real_logits, fake_logits = D(real, labels), D(fake.detach(), labels)
    loss_d = -d_loss(real_logits, fake_logits)  # BUG: sign flipped
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    loss_g = g_loss_nonsaturating(D(fake, labels))
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    return _logs(loss_d, loss_g, real_logits, fake_logits)


STEPS = {
    "no_detach": step_no_detach,
    "one_backward": step_one_backward,
    "joint_step_stale": step_joint_stale,
    "log_sigmoid": step_log_sigmoid,
    "wrong_sign": step_wrong_sign,
}
