"""FGSM and PGD against their definitions: the closed form on a linear model, the ε-ball and the
[0, 1] range, targeted attacks, restarts, and the errors on bad input (chapter 10)."""

import functools

import pytest
import torch
from torch import nn

from course_lib import attacks


def linear_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, -2.0, 0.5, 0.0], [-1.0, 1.0, 1.5, 3.0]]))
        model[1].bias.zero_()
    return model


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 10))


def test_fgsm_is_the_sign_of_the_loss_gradient_on_a_linear_model():
    model = linear_model()
    x = torch.full((3, 1, 2, 2), 0.5)
    y = torch.tensor([0, 1, 0])
    adv = attacks.fgsm(model, x, y, eps=0.1)
    w = model[1].weight.detach()
    # d CE / dx = p_other (w_other - w_y): its sign is that of w_other - w_y (where nonzero)
    expected = torch.stack([torch.sign(w[1 - int(t)] - w[int(t)]) for t in y]).view(3, 1, 2, 2)
    assert torch.allclose(adv, x + 0.1 * expected)


def test_attacks_stay_in_the_ball_and_in_the_image_range():
    model, gen = small_cnn(), torch.Generator().manual_seed(0)
    x = torch.rand(16, 1, 8, 8, generator=gen)
    x[:4] = 0.0  # images at the range's edges: the attack must clamp
    x[4:8] = 1.0
    y = torch.randint(10, (16,), generator=gen)
    for adv in (attacks.fgsm(model, x, y, 0.3), attacks.pgd(model, x, y, 0.3, 0.05, 10, generator=gen)):
        assert (adv - x).abs().max() <= 0.3 + 1e-6
        assert adv.min() >= 0 and adv.max() <= 1
    adv = attacks.pgd(model, x, y, 1.5, 0.3, 10, norm="l2", generator=gen)
    assert (adv - x).flatten(1).norm(dim=1).max() <= 1.5 + 1e-5
    assert adv.min() >= 0 and adv.max() <= 1


def test_pgd_raises_the_loss_more_than_fgsm_and_restarts_keep_the_best():
    model, gen = small_cnn(), torch.Generator().manual_seed(1)
    x, y = torch.rand(64, 1, 8, 8, generator=gen), torch.randint(10, (64,), generator=gen)
    loss = lambda a: nn.functional.cross_entropy(model(a), y, reduction="none").detach()  # noqa: E731
    fg = loss(attacks.fgsm(model, x, y, 0.1))
    one = attacks.pgd(model, x, y, 0.1, 0.02, 20, generator=torch.Generator().manual_seed(5))
    three = attacks.pgd(model, x, y, 0.1, 0.02, 20, restarts=3, generator=torch.Generator().manual_seed(5))
    assert loss(one).mean() > fg.mean() > loss(x).mean()
    assert (loss(three) >= loss(one) - 1e-5).all()  # the first restart is the single run


def test_targeted_pgd_raises_the_targets_logit_and_restores_the_model():
    model = small_cnn().train()
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(32, 1, 8, 8, generator=gen)
    target = torch.full((32,), 3)
    adv = attacks.pgd(model, x, target, 0.2, 0.02, 20, targeted=True, generator=gen)
    with torch.no_grad():
        assert (model(adv)[:, 3] - model(x)[:, 3]).mean() > 0
        assert (model(adv).argmax(1) == 3).float().mean() > (model(x).argmax(1) == 3).float().mean()
    assert model.training and all(p.grad is None for p in model.parameters())


def test_robust_accuracy_at_zero_eps_is_the_clean_accuracy():
    model, gen = small_cnn(), torch.Generator().manual_seed(3)
    x, y = torch.rand(50, 1, 8, 8, generator=gen), torch.randint(10, (50,), generator=gen)
    clean = attacks.accuracy(model, x, y)
    assert attacks.robust_accuracy(model, x, y, functools.partial(attacks.fgsm, eps=0.0), batch_size=16) == clean
    curve = attacks.accuracy_curve(model, x, y, attacks.pgd, [0.0, 0.3], alpha=lambda e: e / 4, steps=10)
    assert curve[0] == clean and curve[1] <= clean


def test_bad_inputs_are_clear_errors():
    model, x, y = small_cnn(), torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    with pytest.raises(ValueError, match="divide by 255"):
        attacks.fgsm(model, (x * 255).to(torch.uint8), y, 0.1)
    with pytest.raises(ValueError, match="int64 labels"):
        attacks.fgsm(model, x, y.float(), 0.1)
    with pytest.raises(ValueError, match="eps must be"):
        attacks.pgd(model, x, y, -0.1, 0.01, 5)
    with pytest.raises(ValueError, match="norm="):
        attacks.pgd(model, x, y, 0.1, 0.01, 5, norm="l1")


# --- against torchattacks (the reference implementation), on a small trained model ----------


@pytest.fixture(scope="module")
def mnist_mlp():
    """An MLP trained for 200 Adam steps on the embedded 4,000 training digits (~90% test
    accuracy, about 2 s), and 400 test digits: undefended, so attacks at ε ≈ 0.05 leave it
    in the middle of the accuracy range, where two attacks can disagree."""
    from course_lib.data import load_mnist

    train, test = load_mnist("train"), load_mnist("test")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        idx = torch.randint(len(train.data), (128,), generator=gen)
        loss = nn.functional.cross_entropy(model(train.data[idx]), train.targets[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval().requires_grad_(False)
    x, y = test.data[:400], test.targets[:400]
    assert attacks.accuracy(model, x, y) > 0.85
    return model, x, y


def _middle(acc: float) -> float:
    """Agreement at 0% or 100% accuracy is trivial: the comparison must be in the middle."""
    assert 0.1 < acc < 0.9, f"accuracy {acc} is too close to 0 or 1 for the comparison to mean anything"
    return acc


def test_fgsm_matches_torchattacks(mnist_mlp):
    torchattacks = pytest.importorskip("torchattacks")
    model, x, y = mnist_mlp
    for eps in (0.03, 0.05):
        ours = attacks.fgsm(model, x, y, eps)
        theirs = torchattacks.FGSM(model, eps=eps)(x, y)
        assert (ours - theirs).abs().max() <= 1e-6  # deterministic: the same images
        assert _middle(attacks.accuracy(model, ours, y)) == attacks.accuracy(model, theirs, y)


def test_pgd_linf_matches_torchattacks(mnist_mlp):
    torchattacks = pytest.importorskip("torchattacks")
    model, x, y = mnist_mlp
    eps, alpha, steps = 0.05, 0.0125, 10
    ours = attacks.pgd(model, x, y, eps, alpha, steps, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)  # torchattacks draws its random start from the global generator
    theirs = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=True)(x, y)
    assert (ours - x).abs().max() <= eps + 1e-6 and (theirs - x).abs().max() <= eps + 1e-6
    acc_ours, acc_theirs = _middle(attacks.accuracy(model, ours, y)), attacks.accuracy(model, theirs, y)
    assert abs(acc_ours - acc_theirs) <= 0.01
    assert acc_ours < attacks.accuracy(model, attacks.fgsm(model, x, y, eps), y)  # PGD is the stronger


def test_pgd_l2_matches_torchattacks(mnist_mlp):
    torchattacks = pytest.importorskip("torchattacks")
    model, x, y = mnist_mlp
    eps, alpha, steps = 1.0, 0.25, 10
    ours = attacks.pgd(model, x, y, eps, alpha, steps, norm="l2", generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    theirs = torchattacks.PGDL2(model, eps=eps, alpha=alpha, steps=steps, random_start=True)(x, y)
    assert (ours - x).flatten(1).norm(dim=1).max() <= eps + 1e-5
    # the random starts differ (ours uniform in the ball, theirs a uniform radius): a couple of points
    acc_ours, acc_theirs = _middle(attacks.accuracy(model, ours, y)), attacks.accuracy(model, theirs, y)
    assert abs(acc_ours - acc_theirs) <= 0.02


def test_autoattack_stays_in_the_ball_and_is_at_least_as_strong_as_pgd(mnist_mlp):
    pytest.importorskip("torchattacks")
    model, x, y = mnist_mlp
    x, y, eps = x[:20], y[:20], 0.03
    adv = attacks.autoattack(model, x, y, eps)
    assert adv.shape == x.shape and not adv.requires_grad
    assert (adv - x).abs().max() <= eps + 1e-6
    assert adv.min() >= 0 and adv.max() <= 1
    acc_pgd = attacks.accuracy(model, attacks.pgd(model, x, y, eps, eps / 4, 10,
                                                  generator=torch.Generator().manual_seed(0)), y)
    assert attacks.accuracy(model, adv, y) <= acc_pgd


# --- pgd's custom loss and starting point ---------------------------------------------------


def test_pgd_with_a_custom_loss_moves_the_output_to_a_target():
    model, gen = small_cnn(), torch.Generator().manual_seed(4)
    x = torch.rand(32, 1, 8, 8, generator=gen)
    with torch.no_grad():
        # (B, 10) per-sample targets, not labels: the outputs at other images within the ball
        target = model((x + 0.2 * torch.randn(x.shape, generator=gen).sign()).clamp(0, 1))

    def closeness(out, t):  # per sample (B,): PGD raises it, so the output nears the target
        return -(out - t).pow(2).sum(1)

    adv = attacks.pgd(model, x, target, 0.3, 0.05, 10, random_start=False, loss=closeness)
    with torch.no_grad():
        before, after = -closeness(model(x), target), -closeness(model(adv), target)
    assert (adv - x).abs().max() <= 0.3 + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    assert after.mean() < 0.5 * before.mean()
    assert (after < before).float().mean() > 0.85
    # a targeted attack with the same loss descends it: the output moves away
    away = attacks.pgd(model, x, target, 0.3, 0.05, 10, random_start=False, loss=closeness, targeted=True)
    with torch.no_grad():
        assert (-closeness(model(away), target)).mean() > before.mean()


def test_pgd_projects_a_starting_point_outside_the_ball():
    model, gen = small_cnn(), torch.Generator().manual_seed(6)
    x = torch.rand(16, 1, 8, 8, generator=gen)
    y = torch.randint(10, (16,), generator=gen)
    eps = 0.1
    outside = (x + 0.5 * torch.randn(x.shape, generator=gen).sign()).clamp(0, 1)  # up to 0.5 away
    assert (outside - x).abs().max() > eps
    start = attacks.pgd(model, x, y, eps, 0.02, 0, init=outside)
    assert torch.allclose(start, (x + (outside - x).clamp(-eps, eps)).clamp(0, 1))  # the projection
    for norm, dist in (("linf", lambda d: d.abs().flatten(1).amax(1)), ("l2", lambda d: d.flatten(1).norm(dim=1))):
        for steps in (0, 5):
            adv = attacks.pgd(model, x, y, eps, 0.02, steps, norm=norm, init=outside)
            assert dist(adv - x).max() <= eps + 1e-5 and adv.min() >= 0 and adv.max() <= 1
    inside = (x + 0.05 * torch.randn(x.shape, generator=gen).sign()).clamp(0, 1)
    assert torch.equal(attacks.pgd(model, x, y, eps, 0.02, 0, init=inside), inside)  # kept as it is
