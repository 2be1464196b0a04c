"""Bad inputs to the core modules fail early with an error that says what was found and what to do.

Images outside the course's convention (float in [0, 1]), impossible training budgets,
checkpoints that could not be loaded back, damaged IDX files, empty feature arrays and a
tampered shipped classifier each get a clear error instead of a wrong number or a hang.
"""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from course_lib import data, features, metrics, utils
from course_lib.data import load_mnist
from course_lib.train import fit

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def clf():
    return features.load_mnist_classifier()


@pytest.fixture(scope="module")
def digits():
    return load_mnist("test").data[:120]  # (120, 1, 28, 28) float32 in [0, 1]


# --- images: dtype and range -----------------------------------------------------------------


def test_check_images_accepts_the_convention_and_names_the_fix():
    from course_lib.validate import check_images

    x = torch.rand(4, 1, 8, 8)
    assert check_images(x) is x
    assert check_images(x.numpy()).shape == (4, 1, 8, 8)
    with pytest.raises(ValueError, match=r"(?s)uint8 in 0\.\.255.*divide by 255"):
        check_images((x * 255).to(torch.uint8))
    with pytest.raises(ValueError, match=r"\[-1, 1\].*\(x \+ 1\) / 2"):
        check_images(2 * x - 1)
    with pytest.raises(ValueError, match=r"0\.\.255.*divide by 255"):
        check_images(x * 255)
    with pytest.raises(ValueError, match="NaN"):
        check_images(x * float("nan"))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\).*unsqueeze\(1\)"):
        check_images(x[:, 0])
    with pytest.raises(ValueError, match="3 channel"):
        check_images(x, channels=3)
    with pytest.raises(ValueError, match="no images"):
        check_images(x[:0])
    with pytest.raises(ValueError, match="fake"):
        check_images(x - 5, name="fake")


def test_fid_with_an_extractor_refuses_uint8_and_tanh_images(clf, digits):
    real = digits[:60]
    fake = digits[60:]
    with pytest.raises(ValueError, match=r"(?s)uint8 in 0\.\.255.*divide by 255"):
        metrics.fid((fake * 255).round().to(torch.uint8), real, extractor=clf)
    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        metrics.fid(2 * fake - 1, real, extractor=clf)


def test_other_metrics_and_extractors_refuse_images_off_the_convention(clf, digits):
    u8 = (digits * 255).round().to(torch.uint8)
    tanh = 2 * digits - 1
    with pytest.raises(ValueError, match="divide by 255"):
        metrics.kid(u8, digits, subset_size=50, extractor=clf)
    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        metrics.precision_recall(tanh, digits, extractor=clf)
    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        metrics.density_coverage(digits, tanh, extractor=clf)
    with pytest.raises(ValueError, match="divide by 255"):
        metrics.inception_score(u8, splits=2, classifier=clf)
    with pytest.raises(ValueError, match="divide by 255"):
        features.extract(clf, u8)
    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        features.probabilities(clf, tanh)
    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        clf.features(tanh)
    with pytest.raises(ValueError, match="divide by 255"):
        clf(u8.float())

    class _Net(nn.Module):  # the two attributes InceptionFeatures uses, at a fraction of the cost
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return x.mean((2, 3))

    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        features.InceptionFeatures(_Net()).features(tanh)


# --- training budgets ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("budget", "name"),
    [
        ({"seconds": float("nan"), "steps": 40}, "seconds"),
        ({"steps": -1}, "steps"),
        ({"seconds": 0}, "seconds"),
        ({"epochs": 0}, "epochs"),
        ({"steps": 2.5}, "steps"),
        ({"steps": True}, "steps"),
        ({"epochs": float("inf")}, "epochs"),
    ],
)
def test_fit_refuses_impossible_budgets(budget, name):
    x = torch.zeros(100, 1)
    with pytest.raises(ValueError, match=rf"^{name}="):
        fit(lambda b: {"v": 1.0}, x, 10, **budget)
    from course_lib.train import validate_budget

    with pytest.raises(ValueError, match=rf"^{name}="):
        validate_budget(**budget)


def test_validate_budget_accepts_real_budgets():
    from course_lib.train import validate_budget

    validate_budget(steps=1)
    validate_budget(steps=np.int64(3), epochs=0.5, seconds=2)
    with pytest.raises(ValueError, match="give a budget"):
        validate_budget()


# --- checkpoints -----------------------------------------------------------------------------


def test_checkpoint_gets_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = utils.save_checkpoint(tmp_path / "ck.pt", {"w": torch.ones(2)})
        card = features.save_mnist_classifier(features.MNISTClassifier(), tmp_path / "clf.pt")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    assert card.with_suffix(".json").stat().st_mode & 0o777 == 0o644


def test_a_save_killed_mid_write_leaves_nothing_after_the_next_save(tmp_path):
    path = tmp_path / "ck.pt"
    script = textwrap.dedent(f"""
        import os, signal, torch
        from course_lib import utils

        def dying_save(obj, f, *args, **kwargs):
            f.write(b"half a checkpoint")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)

        torch.save = dying_save
        utils.save_checkpoint({str(path)!r}, {{"w": torch.ones(2)}})
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert [p.name for p in tmp_path.iterdir()] != []  # the killed save left its temporary behind
    utils.save_checkpoint(path, {"w": torch.zeros(2)})
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]
    assert torch.equal(utils.load_checkpoint(path)["w"], torch.zeros(2))


def test_save_refuses_what_load_could_not_read(tmp_path):
    path = tmp_path / "ck.pt"
    with pytest.raises(TypeError, match=r"(?s)state\['mean'\].*ndarray.*torch\.as_tensor"):
        utils.save_checkpoint(path, {"w": torch.ones(2), "mean": np.zeros(3)})
    with pytest.raises(TypeError, match=r"state\['opt'\]\['lr'\]\[1\].*float64"):
        utils.save_checkpoint(path, {"opt": {"lr": [1e-3, np.float64(2e-4)]}})
    assert list(tmp_path.iterdir()) == []
    state = {"w": nn.Parameter(torch.ones(2)), "shape": torch.Size([2]), "dtype": torch.float16,
             "tags": {"a", "b"}, "pair": (1, "x"), "none": None, "raw": b"\x00", "c": 1j}
    utils.save_checkpoint(path, state)
    loaded = utils.load_checkpoint(path)
    assert loaded["tags"] == {"a", "b"} and loaded["shape"] == torch.Size([2]) and loaded["c"] == 1j


# --- IDX files of a torchvision MNIST folder -------------------------------------------------


def _idx_folder(tmp_path, n_images=10, n_labels=10, image_bytes=None, image_magic=2051):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    pixels = np.zeros((n_images, 28, 28), np.uint8).tobytes()
    for prefix in ("train", "t10k"):
        body = pixels if image_bytes is None else image_bytes(pixels)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", image_magic, n_images, 28, 28) + body)
        labels = (np.arange(n_labels) % 10).astype(np.uint8).tobytes()
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n_labels) + labels)
    return raw


def test_truncated_idx_file_is_named(tmp_path):
    _idx_folder(tmp_path, image_bytes=lambda b: b[:-100])
    with pytest.raises(ValueError, match=r"(?s)train-images-idx3-ubyte.*truncated.*7856 bytes.*7756"):
        data.load_mnist("train", root=tmp_path)


def test_over_long_idx_file_is_named(tmp_path):
    _idx_folder(tmp_path, image_bytes=lambda b: b + b"\x00" * 5)
    with pytest.raises(ValueError, match=r"(?s)t10k-images-idx3-ubyte.*5 bytes"):
        data.load_mnist("test", root=tmp_path)


def test_idx_file_with_bad_magic_is_named(tmp_path):
    _idx_folder(tmp_path, image_magic=0x12345678)
    with pytest.raises(ValueError, match=r"(?s)train-images-idx3-ubyte.*magic number 0x12345678.*0x00000803"):
        data.load_mnist("train", root=tmp_path)


def test_idx_labels_must_match_images(tmp_path):
    _idx_folder(tmp_path, n_images=10, n_labels=7)
    with pytest.raises(ValueError, match=r"(?s)10 images.*7 labels"):
        data.load_mnist("train", root=tmp_path)


# --- empty and zero-dimensional features -----------------------------------------------------


def test_metrics_refuse_zero_dimensional_features():
    a, b = np.zeros((50, 0)), np.zeros((50, 0))
    for metric in (metrics.fid, lambda x, y: metrics.kid(x, y, subset_size=10), metrics.precision_recall,
                   metrics.density_coverage):
        with pytest.raises(ValueError, match=r"0 feature dimensions.*\(50, 0\)"):
            metric(a, b)
    with pytest.raises(ValueError, match="mu1 is empty"):
        metrics.frechet_distance(np.zeros(0), np.zeros((0, 0)), np.zeros(0), np.zeros((0, 0)))


def test_inception_score_refuses_empty_probabilities():
    with pytest.raises(ValueError, match=r"no samples.*\(0, 10\)"):
        metrics.inception_score(np.zeros((0, 10)))
    with pytest.raises(ValueError, match=r"0 classes.*\(10, 0\)"):
        metrics.inception_score(np.zeros((10, 0)), splits=1)


# --- the shipped classifier ------------------------------------------------------------------


def test_classifier_hash_is_pinned_in_the_source(tmp_path, monkeypatch):
    weights = tmp_path / "mnist_classifier.pt"
    shutil.copy(features.MNIST_CLASSIFIER_CARD, tmp_path / "mnist_classifier.json")
    torch.manual_seed(1)
    features.save_mnist_classifier(features.MNISTClassifier(), weights)  # new weights, card edited to match
    monkeypatch.setattr(features, "MNIST_CLASSIFIER_WEIGHTS", weights)
    monkeypatch.setattr(features, "MNIST_CLASSIFIER_CARD", weights.with_suffix(".json"))
    with pytest.raises(RuntimeError, match=r"(?s)modified.*git checkout.*MNIST_CLASSIFIER_SHA256"):
        features.load_mnist_classifier()
    mine = features.save_mnist_classifier(features.MNISTClassifier(), tmp_path / "mine.pt")
    assert not features.load_mnist_classifier(mine).training  # a user's own file: its card decides


@pytest.mark.parametrize("scale,fix", [(255.0, "divide by 255"), (None, r"\(x \+ 1\) / 2")])
def test_bernoulli_vae_refuses_pixels_outside_unit_range(scale, fix):
    """0..255 floats gave a loss of 1.5e22 and an ELBO of -6e13 with no error."""
    from course_lib.vae import mlp_vae

    torch.manual_seed(0)
    vae = mlp_vae(z_dim=2)
    x = torch.rand(4, 1, 28, 28)
    x = x * scale if scale else 2 * x - 1
    for call in (lambda: vae.elbo(x), lambda: vae.loss(x), lambda: vae.iwae_bound(x, 3)):
        with pytest.raises(ValueError, match=fix):
            call()
    assert torch.isfinite(vae.elbo(torch.rand(4, 1, 28, 28)).elbo).all()


def _small_gan(hidden=32, **kwargs):
    from course_lib.gan import GANTrainer, MLPDiscriminator, MLPGenerator

    torch.manual_seed(0)
    G = MLPGenerator(latent_dim=8, hidden=(hidden,), image_shape=(1, 4, 4))
    D = MLPDiscriminator(hidden=(hidden,), image_shape=(1, 4, 4))
    return GANTrainer(G, D, **kwargs)


def test_gan_load_checks_everything_before_copying(tmp_path):
    """A checkpoint whose D does not fit used to overwrite G before the error."""
    path = tmp_path / "gan.pt"
    _small_gan(hidden=32).save(path)
    other = _small_gan(hidden=32)
    other.D = _small_gan(hidden=16).D  # D of another size
    with torch.no_grad():
        next(other.G.parameters()).normal_()  # G differs from the file's
    before = {k: v.clone() for k, v in other.G.state_dict().items()}
    with pytest.raises(RuntimeError, match="architecture"):  # old and new wording; G decides
        other.load(path)
    assert all(torch.equal(v, other.G.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize(
    ("saved", "mine", "message"),
    [
        ({"r1_gamma": 1.0}, {"r1_gamma": 0.0}, "r1_gamma: saved 1.0, this run 0.0"),
        ({"g_loss": "saturating"}, {}, "g_loss: saved 'saturating', this run 'non_saturating'"),
        ({"real_label": 0.9}, {}, "real_label: saved 0.9, this run 1.0"),
    ],
)
def test_gan_load_refuses_other_settings(tmp_path, saved, mine, message):
    """Case 8: the constructor's r1_gamma, g_loss, real_label were silently replaced by the file's."""
    path = tmp_path / "gan.pt"
    _small_gan(**saved).save(path)
    with pytest.raises(ValueError, match=message):
        _small_gan(**mine).load(path)
    key, value = next(iter(saved.items()))
    assert _small_gan(**saved).load(path).config[key] == value


def test_a_diverging_gan_keeps_its_last_good_state(tmp_path):
    """lr=1e30: the NaN used to be caught after the optimiser step, and a later save wrote it."""
    tr = _small_gan(checkpoint=tmp_path / "gan.pt")
    x = torch.rand(64, 1, 4, 4)
    tr.fit(x, batch_size=16, steps=1)  # a good first step, checkpointed
    for opt in (tr.opt_g, tr.opt_d):
        opt.param_groups[0]["lr"] = 1e30
    good = [p.clone() for p in (*tr.G.parameters(), *tr.D.parameters())]
    with pytest.raises(FloatingPointError, match=r"at step \d+: training diverged.*back at step 1.*gan\.pt"):
        tr.fit(x, batch_size=16, steps=50)
    now = [*tr.G.parameters(), *tr.D.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(good, now)) and all(torch.isfinite(p).all() for p in now)
    assert not tr.G.training and not tr.D.training  # not left in train mode


def test_ctrl_c_between_the_d_and_g_updates_saves_a_step_boundary(tmp_path):
    """Ctrl-C between D's and G's updates left 2 steps in the history, D's Adam at 3, G's at 2."""
    import os
    import signal

    from course_lib import gan

    real_step, calls = gan.optimizer_step, []

    def step_then_interrupt(loss, opt, **kwargs):
        calls.append(kwargs.get("name"))
        if len(calls) == 5:  # the D update of the third step
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(loss, opt, **kwargs)

    tr = _small_gan(checkpoint=tmp_path / "gan.pt")
    gan.optimizer_step = step_then_interrupt
    try:
        with pytest.raises(KeyboardInterrupt, match="stopped after step 3"):
            tr.fit(torch.rand(64, 1, 4, 4), batch_size=16, steps=10)
    finally:
        gan.optimizer_step = real_step
    state = torch.load(tmp_path / "gan.pt", weights_only=True)
    adam_steps = {k: {int(s["step"]) for s in o["state"].values()} for k, o in state["optimizers"].items()}
    assert state["step"] == 3 and len(state["history"]["step"]) == 3 and adam_steps == {"g": {3}, "d": {3}}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: torch.randint(0, 256, (32, 1, 28, 28), dtype=torch.uint8), "divide by 255"),
        (lambda: torch.rand(32, 1, 28, 28) * 255, r"\[0, 1\].*divide by 255"),
    ],
    ids=["uint8", "float-0..255"],
)
def test_train_vae_refuses_images_off_the_convention(make, message):
    """Case 2: 0..255 floats to train_vae trained on a loss of 1.5e22 with no error (uint8
    failed inside the first Linear with a dtype error)."""
    from course_lib import vae as V

    torch.manual_seed(0)
    with pytest.raises(ValueError, match=message):
        V.train_vae(V.mlp_vae(z_dim=2, hidden=(8,)), make(), steps=1, batch_size=16)


# --- the same cases through the API the old code also had ----------------------------------
# (GANTrainer.train, train_vae, the recipes' seconds= budget: these tests ran against the code
# before the bad-input work and failed there on the behaviour, not on a missing name)


def test_trainers_refuse_a_nan_budget():
    """Case 3: seconds=nan to a trainer never stopped (here with steps=2, the old code ran 2 steps)."""
    from course_lib import vae as V

    tr = _small_gan()
    with pytest.raises(ValueError, match=r"^seconds=nan"):
        tr.train(torch.rand(64, 1, 4, 4), batch_size=16, seconds=float("nan"), steps=2)
    assert tr.steps_done == 0
    with pytest.raises(ValueError, match=r"^seconds=nan"):
        V.train_vae(V.mlp_vae(z_dim=2, hidden=(8,)), torch.rand(32, 1, 28, 28), batch_size=16,
                    seconds=float("nan"), steps=2)


def test_a_diverging_gan_without_a_checkpoint_keeps_finite_weights_and_eval_mode(tmp_path):
    """Case 5: lr=1e30 made the weights NaN before the error, a later save() wrote them, and the
    networks were left in train mode."""
    tr = _small_gan()
    x = torch.rand(64, 1, 4, 4)
    tr.train(x, batch_size=16, steps=2)
    for opt in (tr.opt_g, tr.opt_d):
        opt.param_groups[0]["lr"] = 1e30
    with pytest.raises(FloatingPointError, match="training diverged"):
        tr.train(x, batch_size=16, steps=50)
    assert all(torch.isfinite(p).all() for p in (*tr.G.parameters(), *tr.D.parameters()))
    assert not tr.G.training and not tr.D.training
    loaded = _small_gan().load(tr.save(tmp_path / "gan.pt"))
    assert all(torch.isfinite(p).all() for p in (*loaded.G.parameters(), *loaded.D.parameters()))


def test_a_diverging_vae_keeps_finite_weights_and_eval_mode():
    """Case 5: train_vae with lr=1e30 raised after the step, NaN weights, the VAE in train mode."""
    from course_lib import vae as V

    torch.manual_seed(0)
    vae = V.mlp_vae(z_dim=2, hidden=(8,))
    before = [p.clone() for p in vae.parameters()]
    with pytest.raises(FloatingPointError, match="diverged"):
        V.train_vae(vae, torch.rand(64, 1, 28, 28), lr=1e30, batch_size=16, steps=40)
    assert not vae.training
    assert all(torch.equal(a, b) for a, b in zip(before, vae.parameters()))  # back at the start


def test_ctrl_c_between_d_and_g_leaves_consistent_optimisers(tmp_path):
    """Case 6: Ctrl-C between D's and G's updates left D's Adam a step ahead of G's and of the
    history, and a save() then wrote that state."""
    tr = _small_gan()
    real_step, calls = tr.opt_d.step, []

    def d_step_then_interrupt(*args, **kwargs):
        out = real_step(*args, **kwargs)
        calls.append(1)
        if len(calls) == 3:  # D has stepped in the third step, G not yet
            os.kill(os.getpid(), signal.SIGINT)
        return out

    tr.opt_d.step = d_step_then_interrupt
    with pytest.raises(KeyboardInterrupt):
        tr.train(torch.rand(64, 1, 4, 4), batch_size=16, steps=10)
    loaded = _small_gan().load(tr.save(tmp_path / "gan.pt"))
    adam = {name: {int(s["step"]) for s in opt.state.values()}
            for name, opt in (("g", loaded.opt_g), ("d", loaded.opt_d))}
    assert adam == {"g": {3}, "d": {3}} and loaded.steps_done == 3 == len(loaded.history["step"])


def test_gan_recipe_refuses_another_seeds_checkpoint_and_keeps_it(tmp_path):
    """Case 9: train_mnist_gan(seed=1, checkpoint=p) on a seed-0 file retrained and overwrote it."""
    from course_lib import recipes

    images, ck = torch.rand(64, 1, 28, 28), tmp_path / "gan.pt"
    cfg = {"channels": 4, "latent_dim": 8, "batch_size": 16}
    recipes.train_mnist_gan(0.2, images=images, config=cfg, checkpoint=ck)
    before = ck.read_bytes()
    with pytest.raises(ValueError, match=r"another run.*seed: saved 0, this run 1"):
        recipes.train_mnist_gan(0.2, seed=1, images=images, config=cfg, checkpoint=ck)
    assert ck.read_bytes() == before


def test_vae_recipe_refuses_another_models_checkpoint_and_keeps_it(tmp_path):
    """Case 9: a VAE checkpoint of another model was retrained over and overwritten."""
    from course_lib import recipes

    images, ck = torch.rand(64, 1, 28, 28), tmp_path / "vae.pt"
    cfg = {"channels": (4, 8), "hidden": 16, "z_dim": 4, "batch_size": 16}
    recipes.train_mnist_vae(0.2, images=images, config=cfg, checkpoint=ck)
    before = ck.read_bytes()
    with pytest.raises(ValueError, match=r"another run.*z_dim: saved 4, this run 8"):
        recipes.train_mnist_vae(0.2, images=images, config={**cfg, "z_dim": 8}, checkpoint=ck)
    assert ck.read_bytes() == before


def test_train_vae_refuses_another_architectures_checkpoint_and_keeps_it(tmp_path):
    """Case 9: train_vae(checkpoint=) of a file another VAE wrote is an error, the file kept
    (the old train_or_load printed "does not fit this model", retrained and overwrote it)."""
    from course_lib import vae as V

    x, ck = torch.rand(32, 1, 28, 28), tmp_path / "vae.pt"
    V.train_vae(V.mlp_vae(z_dim=2, hidden=(8,)), x, batch_size=16, steps=1, checkpoint=ck)
    before = ck.read_bytes()
    with pytest.raises(RuntimeError, match="another architecture"):
        V.train_vae(V.mlp_vae(z_dim=2, hidden=(16,)), x, batch_size=16, steps=1, checkpoint=ck)
    assert ck.read_bytes() == before


def _toy_run(tmp_path=None, save_every: float = 1e9):
    torch.manual_seed(0)
    from course_lib.train import Run, optimizer_step

    model = nn.Linear(3, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    run = Run({"m": model}, {"opt": opt}, path=None if tmp_path is None else tmp_path / "r.pt",
              save_every=save_every)
    bad_from = [10**9]

    def step(batch):
        loss = model(batch[0]).pow(2).mean()
        if run.step >= bad_from[0]:
            loss = loss * float("nan")
        return {"loss": optimizer_step(loss, opt)}

    return run, model, bad_from, step


def test_divergence_in_a_later_call_rolls_back_to_that_calls_start():
    """A diverging second fit() without a checkpoint goes back to where that call began
    (step 2), whole: weights, optimiser, step and history, not to the run's first step."""
    run, model, bad_from, step = _toy_run()
    x = torch.randn(64, 3)
    run.fit(step, x, 8, steps=2)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    bad_from[0] = 4
    with pytest.raises(FloatingPointError, match=r"back at step 2 \(the start of this call\)"):
        run.fit(step, x, 8, steps=10)
    assert run.step == 2 and len(run.history["loss"]) == 2
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert run.optimizers["opt"].state_dict()["state"][0]["step"].item() == 2


def test_divergence_after_a_checkpoint_rolls_back_step_and_history_too(tmp_path):
    """With a checkpoint at step 2 and NaN at step 6, the run is back at step 2 whole, so a
    later save() writes a file whose step, history and weights agree."""
    run, model, bad_from, step = _toy_run(tmp_path)
    x = torch.randn(64, 3)
    run.fit(step, x, 8, steps=2)  # saved at the end: step 2
    bad_from[0] = 6
    with pytest.raises(FloatingPointError, match="back at step 2 .the last checkpoint"):
        run.fit(step, x, 8, steps=10)
    assert run.step == 2 and len(run.history["loss"]) == 2 and len(run.history["step"]) == 2
    run.save()
    saved = utils.load_checkpoint(tmp_path / "r.pt")
    assert saved["step"] == 2 and len(saved["history"]["loss"]) == 2
    assert all(torch.equal(saved["modules"]["m"][k], v) for k, v in model.state_dict().items())
