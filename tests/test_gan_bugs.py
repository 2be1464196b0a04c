"""The broken GAN steps of chapter 3 fail the way the chapter says they do."""

import functools

import pytest
import torch

from course_lib import gan, gan_bugs
from course_lib.data import load_mnist

LR, BATCH = 2e-3, 32  # chapter 3's settings


@functools.cache
def _mnist(n=1024):
    return load_mnist("train").data[:n]


def _classic(seed=0):
    torch.manual_seed(seed)
    return gan.MLPGenerator(), gan.MLPDiscriminator()


def _nets(seed=0, hidden=(32,)):
    torch.manual_seed(seed)
    G = gan.MLPGenerator(latent_dim=8, hidden=hidden)
    D = gan.MLPDiscriminator(hidden=hidden)
    return G, D


def _real(n=16):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 28, 28, generator=g)


def _grads(model):
    return torch.cat([p.grad.flatten() if p.grad is not None else torch.zeros(p.numel()) for p in model.parameters()])


def _clean_grads(G, D, real, seed, d_first=True):
    """Gradients of L_G w.r.t. G and of L_D w.r.t. D, each alone, for the z drawn after seed."""
    torch.manual_seed(seed)
    fake = G(G.sample_latent(len(real)))
    G.zero_grad(), D.zero_grad()
    gan.d_loss(D(real), D(fake.detach())).backward()
    gd = _grads(D)
    G.zero_grad(), D.zero_grad()
    gan.g_loss_nonsaturating(D(fake)).backward()
    gg = _grads(G)
    G.zero_grad(), D.zero_grad()
    return gg, gd


def _sgd(G, D):
    return torch.optim.SGD(G.parameters(), lr=0.0), torch.optim.SGD(D.parameters(), lr=0.0)


def test_no_detach_on_shared_logits_crashes_either_way():
    """Both losses on one undetached forward, D stepped between the backwards: chapter 3's errors."""
    G, D = _nets()
    for retain, message in ((False, "second time"), (True, "inplace operation")):
        opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
        with pytest.raises(RuntimeError, match=message):
            gan_bugs.step_shared_logits(G, D, opt_g, opt_d, _real(8), retain_graph=retain)


def test_no_detach_crashes_without_retain_graph():
    G, D = _nets()
    opt_g, opt_d = _sgd(G, D)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        gan_bugs.step_no_detach(G, D, opt_g, opt_d, _real(), retain_graph=False)


def test_no_detach_pollutes_the_generator_gradient():
    """With retain_graph, G steps along grad(L_D + L_G) instead of grad L_G (lr 0: nothing moves)."""
    G, D = _nets()
    opt_g, opt_d = _sgd(G, D)
    real = _real()
    gg, _ = _clean_grads(G, D, real, seed=3)
    torch.manual_seed(3)
    fake = G(G.sample_latent(len(real)))
    G.zero_grad()
    gan.d_loss(D(real), D(fake)).backward()
    g_of_d_loss = _grads(G)
    torch.manual_seed(3)
    gan_bugs.step_no_detach(G, D, opt_g, opt_d, real)
    assert torch.allclose(_grads(G), gg + g_of_d_loss, atol=1e-6)
    assert not torch.allclose(_grads(G), gg, atol=1e-3)


def test_undetached_fakes_with_zeroed_generator_grads_make_the_correct_update():
    """No detach, but retain_graph and G's grads zeroed before its backward: the same step as gan_step."""
    real = _real()
    after = []
    for step_fn in (gan.gan_step, gan_bugs.step_undetached_zeroed, gan_bugs.step_no_detach):
        G, D = _nets()
        opt_g = torch.optim.SGD(G.parameters(), lr=0.1)
        opt_d = torch.optim.SGD(D.parameters(), lr=0.1)
        torch.manual_seed(5)
        step_fn(G, D, opt_g, opt_d, real)
        after.append((torch.cat([p.detach().flatten() for p in G.parameters()]),
                      torch.cat([p.detach().flatten() for p in D.parameters()])))
    (g_ref, d_ref), (g_zeroed, d_zeroed), (g_polluted, d_polluted) = after
    assert torch.allclose(g_zeroed, g_ref, atol=1e-7) and torch.allclose(d_zeroed, d_ref, atol=1e-7)
    assert torch.allclose(d_polluted, d_ref, atol=1e-7)  # D's step is right in the polluted loop too
    assert not torch.allclose(g_polluted, g_ref, atol=1e-4)  # G's is not: the missing zero_grad


@pytest.mark.parametrize("bug", ["one_backward", "joint_step_stale"])
def test_both_networks_get_both_gradients(bug):
    """D's first update carries grad_D L_G; G's carries grad_G L_D."""
    G, D = _nets()
    real = _real()
    gg, gd = _clean_grads(G, D, real, seed=5)
    torch.manual_seed(5)
    fake = G(G.sample_latent(len(real)))
    G.zero_grad(), D.zero_grad()
    fl = D(fake)
    (gan.d_loss(D(real), fl) + gan.g_loss_nonsaturating(fl)).backward()
    g_both, d_both = _grads(G), _grads(D)
    G.zero_grad(), D.zero_grad()

    seen = {}
    opt_g, opt_d = _sgd(G, D)
    orig = opt_d.step

    def spy():
        seen.setdefault("d", _grads(D).clone())  # the first D step
        seen["g"] = _grads(G).clone()
        return orig()

    opt_d.step = spy
    torch.manual_seed(5)
    gan_bugs.STEPS[bug](G, D, opt_g, opt_d, real)
    assert torch.allclose(seen["d"], d_both, atol=1e-5) and not torch.allclose(seen["d"], gd, atol=1e-3)
    assert torch.allclose(seen["g"], g_both, atol=1e-5) and not torch.allclose(seen["g"], gg, atol=1e-3)


def test_log_sigmoid_overflows_where_the_logit_form_does_not():
    """Same loss on paper; at a learning rate of 1e-2 the probability form hits log(0) at once."""
    x = _mnist()
    for seed in (0, 1):
        tr = gan.GANTrainer(*_classic(seed), lr_g=1e-2, lr_d=1e-2, step_fn=gan_bugs.step_log_sigmoid, seed=seed)
        start = [p.clone() for p in tr.D.parameters()]
        with pytest.raises(FloatingPointError, match="became (inf|nan)"):
            tr.train(x, batch_size=BATCH, steps=20)
        # the broken step wrote NaN into D before the loop saw the loss; the loop rolled it back
        assert all(torch.equal(a, b) for a, b in zip(start, tr.D.parameters()))
        tr = gan.GANTrainer(*_classic(seed), lr_g=1e-2, lr_d=1e-2, seed=seed)
        hist = tr.train(x, batch_size=BATCH, steps=20)  # the softplus form stays finite
        assert len(hist["loss_d"]) == 20


def test_wrong_sign_inverts_the_discriminator():
    tr = gan.GANTrainer(*_classic(), lr_g=LR, lr_d=LR, step_fn=gan_bugs.step_wrong_sign)
    hist = tr.train(_mnist(), batch_size=BATCH, steps=150)
    last = {k: sum(hist[k][-20:]) / 20 for k in ("d_real", "d_fake", "loss_d")}
    assert last["d_real"] < 0.01 and last["d_fake"] > 0.99, last  # real called fake and vice versa
    assert last["loss_d"] < -20 and hist["loss_d"][-1] < hist["loss_d"][len(hist["loss_d"]) // 2]  # unbounded


def test_one_backward_pins_d_of_fakes_at_one_half():
    tr = gan.GANTrainer(*_classic(), lr_g=LR, lr_d=LR, step_fn=gan_bugs.step_one_backward)
    hist = tr.train(_mnist(), batch_size=BATCH, steps=150)
    d_fake = torch.tensor(hist["d_fake"][-30:])
    d_real = torch.tensor(hist["d_real"][-30:])
    assert (d_fake - 0.5).abs().mean() < 0.03 and d_real.mean() > 0.95


STEPS = 200


@functools.cache
def _fid_after(bug: str | None) -> float:
    """Classifier-FID of 500 samples vs 500 test digits after STEPS steps of the classic MLP GAN."""
    tr = gan.GANTrainer(*_classic(), lr_g=LR, lr_d=LR, step_fn=gan_bugs.STEPS[bug] if bug else None)
    tr.train(load_mnist("train").data, batch_size=BATCH, steps=STEPS)
    return _fid_of(tr.G)


def _fid_of(G) -> float:
    from course_lib import features, metrics

    clf = features.load_mnist_classifier()
    real = features.extract(clf, load_mnist("test").data[:500])
    return metrics.generator_fid(G, real, clf, n=500, seed=1)


def _fid_after_init() -> float:
    return _fid_of(_classic()[0])


@pytest.mark.parametrize("bug", ["no_detach", "one_backward", "joint_step_stale", "wrong_sign"])
def test_broken_loops_learn_worse_than_the_correct_one(bug):
    """Chapter 3's claim: after the same number of steps every broken loop has a clearly worse FID."""
    correct, broken = _fid_after(None), _fid_after(bug)
    assert correct < 0.8 * _fid_after_init() and broken > 1.1 * correct, (bug, broken, correct)
