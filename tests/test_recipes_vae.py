"""The VAE recipe: trains, respects its budgets, loads and resumes from a checkpoint."""

import torch

from course_lib import recipes
from course_lib import vae as V


def test_train_mnist_vae_small_budget_and_checkpoint(tmp_path):
    x = torch.rand(256, 1, 28, 28)
    cfg = {"channels": (4, 8), "hidden": 16, "z_dim": 4}
    path = tmp_path / "vae.pt"
    vae = recipes.train_mnist_vae(30, seed=0, images=x, checkpoint=path, config=cfg, max_steps=5)
    assert isinstance(vae, V.VAE) and not vae.training
    assert len(vae.history["loss"]) == 5 and path.is_file()
    again = recipes.train_mnist_vae(30, seed=0, images=x, checkpoint=path, config=cfg, max_steps=5)
    assert again.history == vae.history  # loaded, not retrained
    # an interrupted run (saved with done=False) resumes for the steps it has left
    state = torch.load(path, weights_only=True)
    state["done"] = False
    state["history"] = {k: v[:3] for k, v in state["history"].items()}
    torch.save(state, path)
    resumed = recipes.train_mnist_vae(30, seed=0, images=x, checkpoint=path, config=cfg, max_steps=5)
    assert resumed.history["step"] == [0, 1, 2, 3, 4]
    # a checkpoint written by another version of the model is not loaded: it trains again
    state = torch.load(path, weights_only=True)
    state["model"] = {k + "_old": v for k, v in state["model"].items()}
    torch.save(state, path)
    retrained = recipes.train_mnist_vae(30, seed=0, images=x, checkpoint=path, config=cfg, max_steps=5)
    assert len(retrained.history["loss"]) == 5


def test_train_mnist_vae_rejects_bad_input():
    import pytest

    with pytest.raises(ValueError, match="seconds"):
        recipes.train_mnist_vae(0)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        recipes.train_mnist_vae(1, images=torch.rand(4, 28, 28))


def test_cosine_schedule():
    peak = 1e-3
    assert recipes._cosine_lr(0.0, peak, 0.1) < 0.02 * peak
    assert abs(recipes._cosine_lr(0.1, peak, 0.1) - peak) < 1e-9
    assert abs(recipes._cosine_lr(0.55, peak, 0.1) - 0.5 * peak) < 1e-12
    assert abs(recipes._cosine_lr(1.0, peak, 0.1)) < 1e-12
