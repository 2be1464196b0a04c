"""Adversarial training (chapter 10): each loss against its paper's formula written out here,
the gradient-masking defence and its BPDA counter, exact resume, and the errors on bad input."""

import json
import os
import signal

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import attacks, recipes, robust


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(robust.Normalize(), nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def batch(seed: int = 0, n: int = 16):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 8, 8, generator=g)
    x[:3] = 0.0  # pixels on the range's edges: the clamp matters
    return x, torch.randint(10, (n,), generator=g)


def grad_of(model, x, y):
    x = x.clone().requires_grad_(True)
    return torch.autograd.grad(F.cross_entropy(model(x), y, reduction="sum"), x)[0]


def test_fgsm_rs_is_wongs_algorithm():
    model, (x, y) = small_model(), batch()
    eps, alpha = 0.3, 0.375
    out = robust.fgsm_rs_examples(model, x, y, eps, alpha, torch.Generator().manual_seed(7))
    delta0 = (torch.rand(x.shape, generator=torch.Generator().manual_seed(7)) * 2 - 1) * eps
    start = (x + delta0).clamp(0, 1)
    expected = (x + (start + alpha * grad_of(model, start, y).sign() - x).clamp(-eps, eps)).clamp(0, 1)
    assert torch.allclose(out, expected)
    assert (out - x).abs().max() <= eps + 1e-6


def test_trades_loss_is_clean_ce_plus_beta_kl_at_the_kl_maximiser():
    model, (x, y) = small_model(), batch(1)
    eps, alpha, steps, beta = 0.2, 0.05, 3, 6.0
    value = robust.trades_loss(model, x, y, eps, alpha, steps, beta, torch.Generator().manual_seed(3))
    # the paper's inner loop, written out: start at x + 0.001 N(0, I), ascend KL(p(x) || p(x')) by signed steps
    p = F.softmax(model(x), 1).detach()
    adv = x + 0.001 * torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    adv = (x + (adv - x).clamp(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        a = adv.clone().requires_grad_(True)
        kl = (p * (p.log() - F.log_softmax(model(a), 1))).sum()
        (g,) = torch.autograd.grad(kl, a)
        adv = (x + (adv + alpha * g.sign() - x).clamp(-eps, eps)).clamp(0, 1)
    q_clean = F.softmax(model(x), 1)
    kl = (q_clean * (q_clean.log() - F.log_softmax(model(adv), 1))).sum(1).mean()
    expected = F.cross_entropy(model(x), y) + beta * kl
    assert torch.allclose(value, expected, rtol=1e-5)
    # the reversed KL, the classic slip, gives another number
    reversed_kl = (F.softmax(model(adv), 1) * (F.log_softmax(model(adv), 1) - q_clean.log())).sum(1).mean()
    assert not torch.allclose(value, F.cross_entropy(model(x), y) + beta * reversed_kl, rtol=1e-5)
    value.backward()  # the loss trains the model through both predictions
    assert all(q.grad is not None for q in model.parameters())


def test_pgd_loss_is_the_cross_entropy_at_pgds_examples():
    model, (x, y) = small_model(), batch(2)
    value = robust.pgd_loss(model, x, y, 0.1, 0.025, 5, torch.Generator().manual_seed(4))
    adv = attacks.pgd(model, x, y, 0.1, 0.025, 5, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(value, F.cross_entropy(model(adv), y))
    assert value > F.cross_entropy(model(x), y)


def test_quantisation_masks_the_gradient_and_bpda_sees_through_it():
    model, (x, y) = small_model(), batch(3, 64)
    masked, bpda = robust.Quantize(model, levels=8), robust.Quantize(model, levels=8, bpda=True)
    assert torch.equal(masked(x), bpda(x))  # the same forward pass
    assert grad_of(masked, x, y).abs().max() == 0  # rounding is flat: no gradient at all
    assert grad_of(bpda, x, y).abs().max() > 0
    assert torch.equal(attacks.fgsm(masked, x, y, 0.3), x)  # FGSM does not move
    loss = lambda m, a: F.cross_entropy(m(a), y).item()  # noqa: E731
    transferred = attacks.pgd(bpda, x, y, 0.3, 0.05, 10, generator=torch.Generator().manual_seed(0))
    assert loss(masked, transferred) > loss(masked, x)
    with pytest.raises(ValueError, match="levels"):
        robust.Quantize(model, levels=1)


def test_normalize_is_inside_the_model():
    net = robust.robust_cnn((4, 8), 16)
    assert isinstance(net[0], robust.Normalize)
    x = torch.full((2, 1, 28, 28), 0.1307)
    assert torch.allclose(net[0](x), torch.zeros_like(x), atol=1e-6)
    assert net(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert robust.robust_mlp(32, 3)(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def _data(n=300):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 28, 28, generator=g), torch.randint(10, (n,), generator=g)


TINY = {"channels": (4, 8), "hidden": 16, "batch_size": 20, "steps": 2, "bf16": False}


def test_an_interrupted_and_resumed_run_ends_with_the_same_weights(tmp_path, monkeypatch):
    x, y = _data()
    config = {**TINY, "max_shift": 1, "affine": True}  # every random generator in play
    straight = robust.train_robust(steps=6, config=config, images=x, labels=y)
    calls, real_step = [], robust.optimizer_step

    def ctrl_c_at_the_third_step(*args, **kwargs):  # Ctrl-C in the middle of the run
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(*args, **kwargs)

    path = tmp_path / "run.pt"
    monkeypatch.setattr(robust, "optimizer_step", ctrl_c_at_the_third_step)
    with pytest.raises(KeyboardInterrupt, match="after step 3"):
        robust.train_robust(steps=6, config=config, images=x, labels=y, checkpoint=path)
    monkeypatch.setattr(robust, "optimizer_step", real_step)
    resumed = robust.train_robust(steps=6, config=config, images=x, labels=y, checkpoint=path)
    assert resumed.run.step == 6
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("method", robust.METHODS)
def test_every_method_trains_and_records(method):
    x, y = _data()
    model = robust.train_robust(steps=4, config={**TINY, "method": method}, images=x, labels=y)
    assert len(model.history["loss"]) == 4 and not model.training
    assert model.history["eps"][-1] == pytest.approx(0.3)  # the warm-up ended within the budget


def test_the_monitor_records_and_the_early_stop_needs_it():
    x, y = _data()
    model = robust.train_robust(steps=20, config={**TINY, "method": "fgsm_rs", "monitor": 40}, images=x, labels=y)
    assert len(model.history["monitor"]) >= 2 and len(model.history["monitor"]) == len(model.history["monitor_step"])
    assert all(0 <= a <= 1 for a in model.history["monitor"])
    with pytest.raises(ValueError, match="monitor"):
        robust.train_robust(steps=2, config={**TINY, "early_stop": True}, images=x, labels=y)


def test_bad_settings_are_clear_errors():
    x, y = _data()
    with pytest.raises(ValueError, match="method"):
        robust.robust_config({"method": "free"})
    with pytest.raises(ValueError, match="arch"):
        robust.train_robust(steps=1, config={**TINY, "arch": "resnet"}, images=x, labels=y)
    with pytest.raises(ValueError, match="labels"):
        robust.train_robust(steps=1, config=TINY, images=x, labels=None)
    with pytest.raises(ValueError, match="seconds"):
        robust.train_robust(seconds=float("nan"), config=TINY, images=x, labels=y)
    with pytest.raises(ValueError, match="no setting"):
        robust.robust_config({"epsilon": 0.3})


def test_the_recipe_takes_eps_and_config_changes():
    model = recipes.train_robust_mnist(steps=2, eps=0.1, config={"channels": (4, 8), "hidden": 16, "bf16": False})
    assert model.run.config["eps"] == 0.1 and model.run.config["channels"] == [4, 8]
    assert recipes.ROBUST_MNIST_CONFIG.eps == 0.3


def test_the_benchmark_table_prints_every_saved_run(tmp_path):
    path = tmp_path / "robust.json"
    assert robust.benchmark_table(path) == ""
    runs = {"recipe/300": {"steps": 10, "clean": 0.981, "pgd40": 0.9, "autoattack": 0.871},
            "pgd/60": {"steps": 5, "clean": 0.9, "pgd40": 0.5}}
    path.write_text(json.dumps({"runs": runs, "meta": {"machine": "m", "eps": 0.3, "test digits": 1000}}))
    rows = robust.benchmark_table(path).splitlines()
    assert rows[2] == "| pgd | 60 | 5 | 90.0% | 50.0% | - |"  # sorted by budget
    assert rows[3] == "| recipe | 300 | 10 | 98.1% | 90.0% | 87.1% |"
    assert rows[-1].startswith("1000 test digits, eps 0.3; m")
