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
