"""recipes.train_mnist_gan: typed config, budgets, checkpoints (exact resume, no overwrite), conditioning."""

import dataclasses

import pytest
import torch

from course_lib import gan, recipes
from course_lib.data import load_mnist


@pytest.fixture(scope="module")
def small():
    train = load_mnist("train")
    return train.data[:256], train.targets[:256]


def test_recipe_trains_and_returns_an_eval_generator(small):
    images, _ = small
    G = recipes.train_mnist_gan(60, images=images, steps=3)
    assert isinstance(G, gan.DCGenerator) and not G.training
    assert len(G.history["step"]) == 3 and G.snapshots
    x = G.sample(5)
    assert x.shape == (5, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    assert recipes.MNIST_GAN_CONFIG.ema > 0  # the returned generator is the weight average
    mlp = recipes.train_mnist_gan(60, images=images, steps=2, config=recipes.CLASSIC_MLP_GAN_CONFIG)
    assert isinstance(mlp, gan.MLPGenerator) and len(mlp.history["step"]) == 2
    fast = recipes.train_mnist_gan(0.5, images=images)  # the time budget alone stops it
    assert fast.history["time"][-1] < 5
    with pytest.raises(ValueError, match="positive|> 0"):
        recipes.train_mnist_gan(0)
    with pytest.raises(ValueError, match="arch"):
        recipes.mnist_gan_models({"arch": "vit"})


def test_config_is_typed_and_unknown_settings_are_errors():
    cfg = recipes.MNIST_GAN_CONFIG
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr_g = 1.0
    with pytest.raises(ValueError, match=r"no setting \['lr'\].*'lr_g', 'lr_d'"):
        recipes.mnist_gan_trainer({"lr": 1e-3})
    with pytest.raises(ValueError, match="no setting"):
        recipes.train_mnist_vae(1, config={"learning_rate": 1e-3})
    assert recipes.gan_config({"lr_g": 1e-3}).lr_g == 1e-3
    variant = dataclasses.replace(cfg, channels=8)
    assert recipes.gan_config(variant) is variant


def test_recipe_resume_is_exact_and_a_finished_run_loads(tmp_path, small):
    images, _ = small
    straight = recipes.train_mnist_gan(images=images, steps=6)
    ck = tmp_path / "gan.pt"
    recipes.train_mnist_gan(images=images, steps=3, checkpoint=ck)  # an interrupted run, in effect
    torch.manual_seed(99)  # a fresh process would not share the global generator's state
    resumed = recipes.train_mnist_gan(images=images, steps=6, checkpoint=ck)
    assert resumed.history["step"] == list(range(6))
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    loaded = recipes.train_mnist_gan(images=images, steps=6, checkpoint=ck)  # finished: no training
    assert loaded.history["time"] == resumed.history["time"]


def test_another_runs_checkpoint_is_an_error_and_is_not_overwritten(tmp_path, small):
    images, _ = small
    ck = tmp_path / "gan.pt"
    recipes.train_mnist_gan(images=images, steps=2, checkpoint=ck)
    before = ck.read_bytes()
    with pytest.raises(ValueError, match="seed: saved 0, this run 1"):
        recipes.train_mnist_gan(images=images, steps=2, seed=1, checkpoint=ck)
    with pytest.raises(ValueError, match="lr_g: saved 0.0005, this run 0.001"):
        recipes.train_mnist_gan(images=images, steps=2, config={"lr_g": 1e-3}, checkpoint=ck)
    assert ck.read_bytes() == before


def test_conditional_recipe(small):
    images, labels = small
    G = recipes.train_mnist_gan(60, images=images, labels=labels, n_classes=10, steps=2)
    assert G.n_classes == 10 and G.sample(10).shape == (10, 1, 28, 28)
    with pytest.raises(ValueError, match="needs labels"):
        recipes.train_mnist_gan(60, images=images, n_classes=10, steps=1)


def test_conditional_recipe_adds_r1_and_config_overrides_it():
    """Chapter 4: the conditional recipe is the unconditional one plus R1 (gamma = 1)."""
    assert recipes.mnist_gan_trainer(seed=0).config["r1_gamma"] == 0.0
    assert recipes.mnist_gan_trainer(n_classes=10, seed=0).config["r1_gamma"] == 1.0
    assert recipes.mnist_gan_trainer({"r1_gamma": 0.0}, n_classes=10, seed=0).config["r1_gamma"] == 0.0
    assert recipes.MNIST_CGAN_CONFIG == dataclasses.replace(recipes.MNIST_GAN_CONFIG, r1_gamma=1.0)


def test_a_budget_too_short_for_one_more_step_ends_the_run(small, tmp_path):
    """When the seconds left are too few for one step, the loop must end, not ask again forever."""
    import signal

    def hung(signum, frame):
        raise TimeoutError("train_mnist_gan did not return: the budget loop spins")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        G = recipes.train_mnist_gan(1e-9, images=small[0])  # one step overruns a nanosecond
        G2 = recipes.train_mnist_gan(1e-9, images=small[0], checkpoint=tmp_path / "g.pt")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert len(G.history["step"]) == 1 and G2.sample(2).shape == (2, 1, 28, 28)
