"""The VAE recipe: trains, respects its budgets, resumes exactly, refuses another run's file."""

import pytest
import torch

from course_lib import recipes
from course_lib import vae as V

CFG = {"channels": (4, 8), "hidden": 16, "z_dim": 4}


def test_train_mnist_vae_small_budget_and_checkpoint(tmp_path):
    x = torch.rand(256, 1, 28, 28)
    path = tmp_path / "vae.pt"
    vae = recipes.train_mnist_vae(seed=0, images=x, checkpoint=path, config=CFG, steps=5)
    assert isinstance(vae, V.VAE) and not vae.training
    assert len(vae.history["loss"]) == 5 and path.is_file()
    again = recipes.train_mnist_vae(seed=0, images=x, checkpoint=path, config=CFG, steps=5)
    assert again.history == vae.history  # loaded, not retrained


def test_train_mnist_vae_resumes_bit_for_bit(tmp_path):
    x = torch.rand(256, 1, 28, 28)
    straight = recipes.train_mnist_vae(images=x, config=CFG, steps=6)
    path = tmp_path / "vae.pt"
    # Ctrl-C in the middle of a step: the step is finished, saved, then the run stops
    import os
    import signal

    from course_lib import vae_train

    real_step = vae_train.optimizer_step
    calls = []

    def interrupted_step(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # arrives before this step's optimiser update
        return real_step(*args, **kwargs)

    vae_train.optimizer_step = interrupted_step
    try:
        with pytest.raises(KeyboardInterrupt, match="stopped after step 3"):
            recipes.train_mnist_vae(images=x, config=CFG, steps=6, checkpoint=path)
    finally:
        vae_train.optimizer_step = real_step
    torch.manual_seed(7)  # a fresh process would not share the global generator's state
    resumed = recipes.train_mnist_vae(images=x, config=CFG, steps=6, checkpoint=path)
    assert resumed.history["step"] == list(range(6))
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    # two identical runs agree: the schedule follows steps, not wall time
    again = recipes.train_mnist_vae(images=x, config=CFG, steps=6)
    assert all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(), again.state_dict().values()))


def test_another_runs_checkpoint_is_an_error(tmp_path):
    x = torch.rand(256, 1, 28, 28)
    path = tmp_path / "vae.pt"
    recipes.train_mnist_vae(images=x, config=CFG, steps=2, checkpoint=path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="z_dim: saved 4, this run 8"):
        recipes.train_mnist_vae(images=x, config={**CFG, "z_dim": 8}, steps=2, checkpoint=path)
    assert path.read_bytes() == before


def test_train_mnist_vae_rejects_bad_input():
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


def test_the_pixelcnn_config_builds_and_trains_a_pixel_vae_with_free_bits(monkeypatch):
    assert recipes.MNIST_PIXELVAE_CONFIG.decoder == "pixelcnn" and recipes.MNIST_PIXELVAE_CONFIG.free_bits > 0
    assert isinstance(recipes.mnist_vae().decoder, V.ConvDecoder)
    assert isinstance(recipes.mnist_vae(recipes.MNIST_PIXELVAE_CONFIG).decoder, V.PixelCNNDecoder)
    seen = []
    loss = V.VAE.loss

    def spy(self, x, y=None, beta=1.0, free_bits=0.0, eps=None):
        seen.append(free_bits)
        return loss(self, x, y, beta, free_bits, eps)

    monkeypatch.setattr(V.VAE, "loss", spy)
    vae = recipes.train_mnist_vae(images=torch.rand(128, 1, 12, 12), steps=2,
                                  config={**CFG, "decoder": "pixelcnn", "free_bits": 0.25})
    assert isinstance(vae.decoder, V.PixelCNNDecoder) and seen == [0.25, 0.25]
    for bad in [{"decoder": "pixel"}, {"free_bits": -1.0}]:
        with pytest.raises(ValueError):
            recipes.mnist_vae(bad)
