"""Chapter 13: the command line, DistributedDataParallel under torchrun (gloo on the CPU), exact
resume after SIGKILL for one process and for two, mixed precision and TensorBoard."""

import os
import random
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import torch

from course_lib import run as CLI
from course_lib import scaling
from course_lib.train import Run
from course_lib.utils import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
STEPS = 100  # the criterion: 100 steps, within 1e-5
# torch's default threads (an OMP_NUM_THREADS set for the test run, as `make unit` sets it, is
# dropped: one process's result depends on its thread count); torchrun gives each worker 1
ENV = {**{k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}, "COURSE_PROGRESS": "off"}


def _cmd(out: Path, procs: int, *extra: str, steps: int = STEPS) -> list[str]:
    return scaling.command(["vae", "--steps", steps, "--out", out, *extra], procs)


def _train(out: Path, procs: int, *extra: str, steps: int = STEPS) -> None:
    proc = subprocess.run(_cmd(out, procs, *extra, steps=steps), cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _same(a, b, where="state") -> None:
    """Equal bit for bit: every tensor torch.equal, everything else ==."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert set(a) == set(b), f"{where}: keys {sorted(a)} vs {sorted(b)}"
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


def _max_diff(a: dict, b: dict) -> float:
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """Uninterrupted runs of the same command in one process and in two."""
    base = tmp_path_factory.mktemp("straight")
    _train(base / "one", 1)
    _train(base / "two", 2)
    return base


def test_two_processes_compute_what_one_computes(straight, tmp_path):
    one = torch.load(straight / "one" / "final.pt", weights_only=True)
    two = torch.load(straight / "two" / "final.pt", weights_only=True)
    assert one["world_size"] == 1 and two["world_size"] == 2
    vae = CLI.recipes.mnist_vae(one["config"])
    vae.load_state_dict(one["model"])  # "model" is the trained model's state_dict
    diff = _max_diff(one["model"], two["model"])
    assert diff <= 1e-5, f"max |one - two| = {diff}"
    # the comparison can fail: a run of another seed is far away after a few steps
    _train(tmp_path / "seed1", 1, "--seed", "1", steps=20)
    other = torch.load(tmp_path / "seed1" / "final.pt", weights_only=True)
    early = _max_diff(one["model"], other["model"])
    assert early > 1e-3
    # the logged losses are the global batch's: the same in both runs
    for a, b in zip(one["history"]["neg_elbo"], two["history"]["neg_elbo"]):
        assert abs(a - b) < 1e-3 * abs(a)


def _kill_and_resume(out: Path, procs: int) -> dict:
    """Start the command, SIGKILL it (the whole process group: torchrun and its workers) at a
    random moment after its first checkpoint, and return the checkpoint it left."""
    code = scaling.kill_after_checkpoint(_cmd(out, procs, "--save-every", "0.2"), out / "last.pt",
                                         delay=random.uniform(0.0, 0.6), env=ENV)
    assert code == -signal.SIGKILL, "the run ended before it was killed"
    assert not (out / "final.pt").exists()
    state = load_checkpoint(out / "last.pt")
    assert 0 < state["step"] < STEPS
    return state


def test_sigkill_then_resume_is_bit_for_bit_in_one_process(straight, tmp_path):
    _kill_and_resume(tmp_path / "run", 1)
    _train(tmp_path / "run", 1, "--resume")
    done, ref = load_checkpoint(tmp_path / "run" / "last.pt"), load_checkpoint(straight / "one" / "last.pt")
    assert done["step"] == STEPS
    for key in ("modules", "optimizers", "rng", "data"):
        _same(done[key], ref[key], key)


def test_sigkill_then_resume_is_bit_for_bit_in_two_processes(straight, tmp_path):
    state = _kill_and_resume(tmp_path / "run", 2)
    shutil.copytree(tmp_path / "run", tmp_path / "alone")
    _train(tmp_path / "run", 2, "--resume")
    done, ref = load_checkpoint(tmp_path / "run" / "last.pt"), load_checkpoint(straight / "two" / "last.pt")
    for key in ("modules", "optimizers", "rng", "data"):
        _same(done[key], ref[key], key)
    # the two-process checkpoint reloads in one process and ends where the two-process run ends
    _train(tmp_path / "alone", 1, "--resume")
    alone = torch.load(tmp_path / "alone" / "final.pt", weights_only=True)
    assert _max_diff(alone["model"], ref["modules"]["model"]) <= 1e-5, state["step"]


def test_tensorboard_event_file_holds_losses_images_and_config(tmp_path):
    from course_lib.tracking import read_events

    _train(tmp_path / "run", 1, "--tensorboard", str(tmp_path / "tb"), steps=30)
    events = read_events(tmp_path / "tb")
    for tag in ("loss", "neg_elbo", "kl", "rec"):
        steps = [s for s, _ in events["scalars"][tag]]
        assert steps == list(range(0, 30, 10)), tag
    history = torch.load(tmp_path / "run" / "final.pt", weights_only=True)["history"]
    assert [v for _, v in events["scalars"]["loss"]] == pytest.approx(history["loss"][::10], rel=1e-6)
    step, grid = events["images"]["samples"][-1]
    assert step == 30 and grid.shape == (233, 233, 3) and grid.std() > 10  # 64 samples, not blank
    assert '"recipe": "vae"' in events["text"]["config"][0] and '"z_dim": 32' in events["text"]["run"][0]


def test_fit_writes_tensorboard(tmp_path):
    from course_lib.tracking import read_events
    from course_lib.train import fit

    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.1)

    def step(batch):
        loss = ((w - batch[0]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    fit(step, torch.ones(64, 1), 8, steps=25, tensorboard=tmp_path / "tb")
    assert len(read_events(tmp_path / "tb")["scalars"]["loss"]) == 3


# --- the command line refuses what it cannot do, before it trains ------------------------------


@pytest.mark.parametrize("argv, message", [
    (["vae", "--steps", "5", "--seconds", "3"], "not allowed with"),
    (["vae"], "one of the arguments --seconds --steps is required"),
    (["vae", "--steps", "0"], "positive budget"),
    (["gan", "--steps", "5", "--amp"], "no mixed-precision"),
    (["vae", "--steps", "5", "--data", "photos"], "not --data photos"),
    (["denoiser", "--steps", "5", "--data", "mnist"], "not --data mnist"),
    (["vae", "--steps", "5", "--resume"], "no run to continue"),
    (["nope", "--steps", "5"], "invalid choice"),
])
def test_bad_command_lines_exit_with_a_message(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        CLI.main([*argv, "--out", str(tmp_path / "out")])
    assert err.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_an_existing_run_is_never_overwritten(tmp_path, capsys):
    (tmp_path / "last.pt").write_bytes(b"a run")
    with pytest.raises(SystemExit):
        CLI.main(["vae", "--steps", "2", "--out", str(tmp_path)])
    assert "add --resume" in capsys.readouterr().err and (tmp_path / "last.pt").read_bytes() == b"a run"


def test_full_mnist_from_a_torchvision_folder(tmp_path, monkeypatch):
    import numpy as np
    from test_data import _write_idx

    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 300), ("t10k", 20)):
        _write_idx(raw, prefix, rng.integers(0, 256, (n, 28, 28)), np.arange(n) % 10)
    monkeypatch.setenv("COURSE_PROGRESS", "off")
    with pytest.raises(SystemExit):  # a folder is needed: nothing is downloaded
        CLI.main(["vae", "--steps", "2", "--data", "mnist-full", "--out", str(tmp_path / "x")])
    final = CLI.main(["vae", "--steps", "3", "--data", "mnist-full", "--root", str(tmp_path / "data"),
                      "--out", str(tmp_path / "out"), "--batch-size", "100"])
    state = torch.load(final, weights_only=True)
    assert state["data"] == "mnist-full" and state["config"]["batch_size"] == 100
    assert load_checkpoint(tmp_path / "out" / "last.pt")["data"]["n"] == 300


def test_cifar10_shapes_the_vae(tmp_path, monkeypatch):
    """CIFAR-10 (3, 32, 32) through the same command (the loader is stubbed: torchvision checks
    the real files' MD5 sums, and the course downloads nothing)."""
    fake = torch.rand(64, 3, 32, 32), torch.randint(0, 10, (64,))
    monkeypatch.setattr(CLI, "load_data", lambda name, root: fake if name == "cifar10" else None)
    monkeypatch.setenv("COURSE_PROGRESS", "off")
    final = CLI.main(["vae", "--steps", "2", "--data", "cifar10", "--root", str(tmp_path),
                      "--out", str(tmp_path / "out"), "--batch-size", "32"])
    state = torch.load(final, weights_only=True)
    assert state["image_shape"] == [3, 32, 32]
    vae = CLI.recipes.mnist_vae(state["config"], state["image_shape"])
    vae.load_state_dict(state["model"])
    assert vae.sample(2).shape == (2, 3, 32, 32)


# --- the pieces -------------------------------------------------------------------------------


def test_each_process_takes_its_rows_of_the_same_global_batches():
    """The union of the processes' batches is the one-process batch, for every step and epoch
    (DistributedSampler's split, with set_epoch reshuffling each epoch)."""
    x = torch.arange(50)
    one = Run(seed=3)
    ranks = [Run(seed=3, world=scaling.World(r, 2)) for r in range(2)]
    seen = []
    for _ in range(12):  # 5 batches of 10 per epoch: two epochs and a bit
        epoch, (b,) = one._batch((x,), 10)
        parts = [r._batch((x,), 10)[1][0] for r in ranks]
        assert torch.equal(b[0::2], parts[0]) and torch.equal(b[1::2], parts[1])
        seen.append((epoch, b))
    assert sorted(torch.cat([b for e, b in seen if e == 0]).tolist()) == list(range(50))
    assert not torch.equal(seen[0][1], seen[5][1])  # epoch 1 is reshuffled
    with pytest.raises(ValueError, match="does not split between 2"):
        ranks[0]._batch((x,), 9)


def test_global_draws_give_each_example_the_noise_of_one_process():
    world = [scaling.World(r, 2) for r in range(2)]
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    full = torch.randn((8, 3), generator=g())
    parts = [scaling.global_randn((4, 3), w, g()) for w in world]
    assert torch.equal(parts[0], full[0::2]) and torch.equal(parts[1], full[1::2])
    from course_lib.data import random_shift

    x = torch.rand(8, 1, 6, 6)
    shifted = random_shift(x, 1, g())
    for w in world:
        assert torch.equal(scaling.global_transform(lambda b: random_shift(b, 1, g()), x[w.rank::2], w),
                           shifted[w.rank::2])


def test_backend_and_precision_follow_the_hardware():
    assert scaling.backend("cpu") == "gloo" and scaling.backend("cuda:0") == "nccl"
    assert scaling.precision(True, "cpu") == scaling.Precision(torch.bfloat16)
    assert scaling.precision(True, "cuda") == scaling.Precision(torch.float16, scaled=True)
    assert scaling.precision(False, "cuda") == scaling.Precision()
    auto = scaling.precision("auto", "cpu")
    assert auto.dtype == (torch.bfloat16 if scaling.bf16_is_fast("cpu") else None)
    with pytest.raises(ValueError):
        scaling.precision("yes")


def test_grad_scaler_skips_an_overflowing_step_and_its_state_is_checkpointed(tmp_path):
    from course_lib.train import optimizer_step

    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([w], lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    optimizer_step((w * 1e36).sum(), opt, scaler=scaler)  # scaled gradient overflows: skipped
    assert torch.equal(w.detach(), torch.ones(3)) and scaler.get_scale() == 2.0**15
    optimizer_step((w**2).sum(), opt, scaler=scaler)  # a normal step: the gradient is unscaled
    assert torch.allclose(w.detach(), torch.full((3,), 0.8))
    run = Run({"w": torch.nn.Linear(1, 1)}, scalers={"opt": scaler}, path=tmp_path / "r.pt")
    run.save()
    fresh = torch.amp.GradScaler("cpu")
    Run({"w": torch.nn.Linear(1, 1)}, scalers={"opt": fresh}, path=tmp_path / "r.pt").resume()
    assert fresh.get_scale() == 2.0**15


def test_old_checkpoints_are_refused_with_a_reason(tmp_path):
    from course_lib.utils import save_checkpoint

    run = Run({"m": torch.nn.Linear(1, 1)}, path=tmp_path / "r.pt")
    save_checkpoint(tmp_path / "r.pt", {**run.state_dict(), "format": "course_lib.run/1"})
    with pytest.raises(RuntimeError, match="older course_lib"):
        run.resume()
