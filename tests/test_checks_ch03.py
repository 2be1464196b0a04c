"""The chapter 3 checks accept the reference steps, reject the classic mistakes and the stub."""

import pytest
import torch
import torch.nn.functional as F

from course_lib import gan
from course_lib.checks import CheckFailed
from course_lib.checks.ch03 import check_d_step, check_g_step


def d_step(G, D, opt_d, real):
    fake = G(G.sample_latent(len(real)))
    loss = gan.d_loss(D(real), D(fake.detach()))
    opt_d.zero_grad()
    loss.backward()
    opt_d.step()
    return loss.item()


def d_step_randn(G, D, opt_d, real):  # another correct answer: z from torch.randn, BCE with logits
    z = torch.randn(len(real), G.latent_dim)
    with torch.no_grad():
        fake = G(z)
    lr, lf = D(real), D(fake)
    loss = F.binary_cross_entropy_with_logits(lr, torch.ones_like(lr)) + F.binary_cross_entropy_with_logits(lf, torch.zeros_like(lf))
    opt_d.zero_grad()
    loss.backward()
    opt_d.step()
    return loss.item()


def d_no_detach(G, D, opt_d, real):
    fake = G(G.sample_latent(len(real)))
    loss = gan.d_loss(D(real), D(fake))
    opt_d.zero_grad()
    loss.backward()
    opt_d.step()
    return loss.item()


def d_no_zero_grad(G, D, opt_d, real):
    fake = G(G.sample_latent(len(real))).detach()
    loss = gan.d_loss(D(real), D(fake))
    loss.backward()
    opt_d.step()
    return loss.item()


def d_wrong_sign(G, D, opt_d, real):
    fake = G(G.sample_latent(len(real))).detach()
    loss = -gan.d_loss(D(real), D(fake))
    opt_d.zero_grad()
    loss.backward()
    opt_d.step()
    return -loss.item()


def d_swapped(G, D, opt_d, real):
    fake = G(G.sample_latent(len(real))).detach()
    loss = gan.d_loss(D(fake), D(real))
    opt_d.zero_grad()
    loss.backward()
    opt_d.step()
    return loss.item()


def d_no_step(G, D, opt_d, real):
    fake = G(G.sample_latent(len(real))).detach()
    loss = gan.d_loss(D(real), D(fake))
    opt_d.zero_grad()
    loss.backward()
    return loss.item()


def d_returns_tensor(G, D, opt_d, real):
    fake = G(G.sample_latent(len(real))).detach()
    loss = gan.d_loss(D(real), D(fake))
    opt_d.zero_grad()
    loss.backward()
    opt_d.step()
    return loss


def _d_step(loss_fn):
    def step(G, D, opt_d, real):
        fake = G(G.sample_latent(len(real))).detach()
        loss = loss_fn(D(real), D(fake))
        opt_d.zero_grad()
        loss.backward()
        opt_d.step()
        return loss.item()

    return step


def test_d_step_check_accepts_correct_answers(capsys):
    check_d_step(d_step)
    check_d_step(d_step_randn)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (d_no_detach, "did not detach"),
        (d_no_zero_grad, "zero_grad"),
        (d_wrong_sign, "wrong sign"),
        (d_swapped, "swapped"),
        (d_no_step, "opt_d.step"),
        (d_returns_tensor, "float"),
        (_d_step(lambda lr, lf: -(torch.log(torch.sigmoid(lr)).mean() + torch.log(1 - torch.sigmoid(lf)).mean())), "confident"),
        (_d_step(lambda lr, lf: -(torch.log(torch.sigmoid(lr).clamp(min=1e-7)).mean()
                                  + torch.log((1 - torch.sigmoid(lf)).clamp(min=1e-7)).mean())), "confident"),
    ],
)
def test_d_step_check_rejects_classic_mistakes(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        check_d_step(wrong)


def test_d_step_check_rejects_the_stub():
    def stub(G, D, opt_d, real):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not implemented"):
        check_d_step(stub)


def _g_step(loss_fn, detach=False, zero=True, step=True):
    def g_step(G, D, opt_g, batch_size):
        fake = G(G.sample_latent(batch_size))
        loss = loss_fn(D(fake.detach() if detach else fake))
        if zero:
            opt_g.zero_grad()
        loss.backward()
        if step:
            opt_g.step()
        return loss.item()

    return g_step


def test_g_step_check_accepts_the_reference():
    check_g_step(_g_step(gan.g_loss_nonsaturating))
    check_g_step(_g_step(lambda lf: F.binary_cross_entropy_with_logits(lf, torch.ones_like(lf))))


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_g_step(gan.g_loss_saturating), "saturating"),
        (_g_step(lambda lf: -gan.g_loss_nonsaturating(lf)), "wrong sign"),
        (_g_step(gan.g_loss_nonsaturating, zero=False), "zero_grad"),
        (_g_step(gan.g_loss_nonsaturating, detach=True), "detach"),
        (_g_step(gan.g_loss_nonsaturating, step=False), "did not change"),
        (_g_step(lambda lf: -torch.log(torch.sigmoid(lf)).mean()), "confident"),
        (_g_step(lambda lf: -torch.log(torch.sigmoid(lf).clamp(min=1e-7)).mean()), "confident"),
        (_g_step(lambda lf: -torch.log(torch.sigmoid(lf) + 1e-8).mean()), "confident"),
    ],
)
def test_g_step_check_rejects_classic_mistakes(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        check_g_step(wrong)


def test_g_step_check_rejects_a_step_that_moves_d():
    def moves_d(G, D, opt_g, batch_size):
        opt_d = torch.optim.SGD(D.parameters(), lr=0.1)
        loss = gan.g_loss_nonsaturating(D(G(G.sample_latent(batch_size))))
        opt_g.zero_grad()
        opt_d.zero_grad()
        loss.backward()
        opt_g.step()
        opt_d.step()
        return loss.item()

    with pytest.raises(CheckFailed, match="only G may move"):
        check_g_step(moves_d)


def test_g_step_check_rejects_the_stub():
    def stub(G, D, opt_g, batch_size):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not implemented"):
        check_g_step(stub)
