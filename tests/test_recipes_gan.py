"""recipes.train_mnist_gan: budgets, checkpoints (finished: load; unfinished: resume), conditioning."""

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
    G = recipes.train_mnist_gan(60, images=images, max_steps=3)
    assert isinstance(G, gan.DCGenerator) and not G.training
    assert len(G.history["step"]) == 3 and G.snapshots
    x = G.sample(5)
    assert x.shape == (5, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    assert recipes.MNIST_GAN_CONFIG["ema"] > 0  # the returned generator is the weight average
    mlp = recipes.train_mnist_gan(60, images=images, max_steps=2, config=recipes.CLASSIC_MLP_GAN_CONFIG)
    assert isinstance(mlp, gan.MLPGenerator) and len(mlp.history["step"]) == 2
    fast = recipes.train_mnist_gan(0.5, images=images)  # the time budget alone stops it
    assert fast.history["time"][-1] < 5
    with pytest.raises(ValueError, match="positive"):
        recipes.train_mnist_gan(0)
    with pytest.raises(ValueError, match="arch"):
        recipes.mnist_gan_models({"arch": "vit"})


def test_recipe_checkpoint_loads_when_done_and_resumes_when_not(tmp_path, small):
    images, _ = small
    ck = tmp_path / "gan.pt"
    G1 = recipes.train_mnist_gan(60, images=images, max_steps=4, checkpoint=ck)
    G2 = recipes.train_mnist_gan(60, images=images, max_steps=4, checkpoint=ck)  # finished: loaded
    z = torch.randn(3, 100)
    assert torch.equal(G1.sample(3, z=z), G2.sample(3, z=z)) and len(G2.history["step"]) == 4
    # an interrupted run (saved with done=False after 2 of 4 steps) resumes for the steps it has left
    from course_lib.utils import load_checkpoint, save_checkpoint

    state = load_checkpoint(ck)
    state["done"] = False
    state["history"] = {k: v[:2] for k, v in state["history"].items()}
    save_checkpoint(ck, state)
    G3 = recipes.train_mnist_gan(60, images=images, max_steps=4, checkpoint=ck)
    assert G3.history["step"] == [0, 1, 2, 3]
    assert load_checkpoint(ck)["done"]
    G4 = recipes.train_mnist_gan(60, images=images, max_steps=3, checkpoint=ck)  # another budget: fresh run
    assert G4.history["step"] == [0, 1, 2]


def test_conditional_recipe(small):
    images, labels = small
    G = recipes.train_mnist_gan(60, images=images, labels=labels, n_classes=10, max_steps=2)
    assert G.n_classes == 10 and G.sample(10).shape == (10, 1, 28, 28)
    with pytest.raises(ValueError, match="needs labels"):
        recipes.train_mnist_gan(60, images=images, n_classes=10, max_steps=1)


def test_conditional_recipe_adds_r1_and_config_overrides_it():
    """Chapter 4: the conditional recipe is the unconditional one plus R1 (gamma = 1)."""
    assert recipes.mnist_gan_trainer(seed=0).config["r1_gamma"] == 0.0
    assert recipes.mnist_gan_trainer(n_classes=10, seed=0).config["r1_gamma"] == 1.0
    assert recipes.mnist_gan_trainer({"r1_gamma": 0.0}, n_classes=10, seed=0).config["r1_gamma"] == 0.0
    assert recipes.MNIST_CGAN_CONFIG == {**recipes.MNIST_GAN_CONFIG, "r1_gamma": 1.0}


def test_a_budget_too_short_for_one_more_step_ends_the_run(small, tmp_path):
    """Regression: when the seconds left were too few for one step, the loop asked again forever."""
    import signal

    def hung(signum, frame):
        raise TimeoutError("train_mnist_gan did not return: the budget loop spins")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        G = recipes.train_mnist_gan(1e-9, images=small[0])  # no step fits in a nanosecond
        G2 = recipes.train_mnist_gan(1e-9, images=small[0], checkpoint=tmp_path / "g.pt")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert G.history.get("step", []) == [] and G2.sample(2).shape == (2, 1, 28, 28)
