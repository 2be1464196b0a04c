"""Chapter 5's losses and layers against their definitions, and the classic wrong versions
failing the same checks."""

import pytest
import torch
from torch import nn

from course_lib import gan_stabilise as S


def test_wasserstein_and_hinge_losses_are_the_papers_formulas():
    real, fake = torch.tensor([2.0, -0.5, 0.3]), torch.tensor([-3.0, 0.5, 1.5])
    assert torch.isclose(S.wasserstein_d_loss(real, fake), fake.mean() - real.mean())
    assert torch.isclose(S.wasserstein_g_loss(fake), -fake.mean())
    # hinge: only real scores below 1 and fake scores above -1 cost anything
    expected = (0 + 1.5 + 0.7) / 3 + (0 + 1.5 + 2.5) / 3
    assert torch.isclose(S.hinge_d_loss(real, fake), torch.tensor(expected))
    assert torch.isclose(S.hinge_g_loss(fake), -fake.mean())
    with pytest.raises(ValueError, match=r"shape \(B,\)"):
        S.wasserstein_d_loss(real[:, None], fake)


class Linear(nn.Module):
    """f(x) = w . x: its gradient is w at every point, so the penalty is (|w| - 1)^2 exactly."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return x.flatten(1) @ self.w


def test_gradient_penalty_of_a_linear_critic_is_closed_form_and_trains_the_critic():
    w = torch.tensor([3.0, 4.0, 0.0, 0.0])  # |w| = 5
    critic = Linear(w.clone())
    real, fake = torch.randn(16, 1, 2, 2), torch.randn(16, 1, 2, 2)
    gp = S.gradient_penalty(critic, real, fake)
    assert torch.isclose(gp, torch.tensor(16.0))  # (5 - 1)^2
    gp.backward()  # d/dw (|w| - 1)^2 = 2 (|w| - 1) w / |w|
    assert torch.allclose(critic.w.grad, 2 * 4 * w / 5)
    unit = Linear(torch.tensor([0.6, 0.8, 0.0, 0.0]))
    assert S.gradient_penalty(unit, real, fake) < 1e-10


def _wrong_norm(critic, real, fake, dim):
    eps = torch.rand((len(real),) + (1,) * (real.ndim - 1), generator=torch.Generator().manual_seed(0))
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    g = grad.flatten(1)
    norm = g.norm() if dim is None else g.norm(dim=dim)
    return (norm - 1).pow(2).mean()


def test_gradient_penalty_is_per_sample_and_the_wrong_dimension_gives_another_value():
    """The penalty must be E[(|grad_i| - 1)^2] with one norm per sample: for the critic
    f(x) = |x|^2 / 2 (gradient x) it is the mean of (|x_hat_i| - 1)^2; the norm over the
    batch dimension or over the whole batch gives other numbers."""

    class Square(nn.Module):
        def forward(self, x):
            return 0.5 * x.flatten(1).pow(2).sum(1)

    real, fake = torch.randn(32, 3) * 2, torch.randn(32, 3)
    gp = S.gradient_penalty(Square(), real, fake, generator=torch.Generator().manual_seed(0))
    eps = torch.rand(32, 1, generator=torch.Generator().manual_seed(0))
    mixed = eps * real + (1 - eps) * fake
    assert torch.isclose(gp, (mixed.norm(dim=1) - 1).pow(2).mean())
    for dim in (0, None):  # the classic bugs
        wrong = _wrong_norm(Square(), real, fake, dim)
        assert not torch.isclose(wrong, gp, rtol=0.05), dim


def test_spectral_normalise_makes_every_layer_1_lipschitz():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 64), nn.LeakyReLU(0.2), nn.Linear(64, 64), nn.LeakyReLU(0.2),
                        nn.Conv1d(1, 4, 3), nn.Flatten(), nn.Linear(248, 1))
    before = [torch.linalg.matrix_norm(m.weight.flatten(1), 2).item() for m in net if hasattr(m, "weight")]
    assert max(abs(s - 1) for s in before) > 0.2  # a plain layer is not normalised
    S.spectral_normalise(net)
    x = torch.randn(8, 2)
    for _ in range(30):  # power iterations run in training-mode forward passes
        h = net[:4](x)
        net[6](net[5](net[4](h[:, None, :])))
    after = [torch.linalg.matrix_norm(m.weight.flatten(1), 2).item() for m in net if hasattr(m, "weight")]
    assert len(after) == 4 and all(abs(s - 1) < 1e-2 for s in after), after


def test_clip_weights_bounds_every_parameter():
    net = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 1))
    S.clip_weights(net, 0.01)
    assert all(p.abs().max() <= 0.01 for p in net.parameters())
    with pytest.raises(ValueError, match="positive"):
        S.clip_weights(net, 0.0)


def test_pack_concatenates_consecutive_samples():
    x = torch.arange(12.0).reshape(6, 2)  # six 2-D samples
    packed = S.pack(x, 3)  # (2, 6)
    assert torch.equal(packed[0], torch.cat([x[0], x[1], x[2]]))
    assert torch.equal(packed[1], torch.cat([x[3], x[4], x[5]]))
    with pytest.raises(ValueError, match="multiple"):
        S.pack(x, 4)


def test_minibatch_std_appends_the_batch_spread():
    x = torch.randn(8, 5)
    out = S.MinibatchStd()(x)
    assert out.shape == (8, 6) and torch.equal(out[:, :5], x)
    assert torch.allclose(out[:, 5], x.std(0, unbiased=False).mean().expand(8), atol=1e-6)
    same = S.MinibatchStd()(torch.ones(8, 5))  # a collapsed batch has no spread
    assert same[:, 5].max() < 1e-3
    grouped = S.MinibatchStd(group=4)(x)
    assert torch.allclose(grouped[:4, 5], x[:4].std(0, unbiased=False).mean().expand(4), atol=1e-6)


def _tiny_critic():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1), nn.Flatten(0)).double()


def test_unrolled_critic_is_k_gradient_steps_and_leaves_the_critic_unchanged():
    from course_lib.gan import d_loss

    critic, real, fake = _tiny_critic(), torch.randn(16, 2).double(), torch.randn(16, 2).double()
    before = [p.clone() for p in critic.parameters()]
    f = S.unrolled_critic(critic, d_loss, real, fake, k=2, lr=0.1)
    stepped = _tiny_critic()  # the same critic, stepped twice by hand with SGD
    opt = torch.optim.SGD(stepped.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        d_loss(stepped(real), stepped(fake)).backward()
        opt.step()
    x = torch.randn(5, 2).double()
    assert torch.allclose(f(x), stepped(x))
    assert all(torch.equal(a, b) for a, b in zip(before, critic.parameters()))
    with pytest.raises(ValueError, match="k must be"):
        S.unrolled_critic(critic, d_loss, real, fake, k=0)


def test_unrolled_generator_gradient_goes_through_the_critics_response():
    """The generator's gradient is the derivative of the whole unrolled loss (checked by finite
    differences); unrolling on detached fakes (the classic bug) drops the look-ahead term."""
    from course_lib.gan import d_loss, g_loss_nonsaturating

    critic, real = _tiny_critic(), torch.randn(16, 2).double()
    fake = torch.randn(16, 2).double().requires_grad_(True)

    def loss(fakes, detach=False):
        f = S.unrolled_critic(critic, d_loss, real, fakes.detach() if detach else fakes, k=3, lr=0.5)
        return g_loss_nonsaturating(f(fakes))

    (grad,) = torch.autograd.grad(loss(fake), fake)
    numeric = torch.zeros_like(fake)
    for i in range(fake.shape[0]):
        for j in range(2):
            e = torch.zeros_like(fake)
            e[i, j] = 1e-6
            numeric[i, j] = (loss(fake + e) - loss(fake - e)).item() / 2e-6
    assert torch.allclose(grad, numeric, atol=1e-7)
    (wrong,) = torch.autograd.grad(loss(fake, detach=True), fake)
    assert not torch.allclose(wrong, numeric, atol=1e-4)
