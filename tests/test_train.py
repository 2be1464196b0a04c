import pytest
import torch

from course_lib.train import fit, smooth


def test_fit_learns_a_linear_map_and_records_history():
    torch.manual_seed(0)
    x = torch.randn(512, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def step(batch):
        xb, yb = batch
        loss = ((model(xb) - yb) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    calls = []
    hist = fit(step, (x, y), 64, epochs=5, callback=lambda s, h: calls.append(s), callback_every=8)
    assert len(hist["loss"]) == 40 and hist["step"] == list(range(40))
    assert hist["loss"][-1] < 0.01 * hist["loss"][0]
    assert calls == [7, 15, 23, 31, 39]
    # continuing a history keeps counting
    hist = fit(step, (x, y), 64, steps=3, history=hist)
    assert hist["step"][-3:] == [40, 41, 42] and len(hist["time"]) == 43


def test_fit_budgets_and_nan_guard():
    x = torch.zeros(100, 1)
    with pytest.raises(ValueError, match="budget"):
        fit(lambda b: {}, x, 10)
    hist = fit(lambda b: {"v": 1.0}, x, 10, seconds=0.2)
    assert 1 <= len(hist["v"]) and hist["time"][-1] < 1.0
    counter = iter(range(10))
    with pytest.raises(FloatingPointError, match="loss became nan at step 3"):
        fit(lambda b: {"loss": float("nan") if next(counter) == 3 else 1.0}, x, 10, steps=9)


def test_smooth():
    assert smooth([1, 2, 3, 4], window=2) == [1, 1.5, 2.5, 3.5]


# --- exact resume ------------------------------------------------------------------------------
# A small model whose step draws from every random source a training step may use: torch's
# global generator (dropout and noise), NumPy's and Python's, and a named generator (as data
# augmentation does); with Adam, an EMA and a shuffled data order, all of which a checkpoint
# must hold for a resumed run to end bit for bit where an uninterrupted one does.
RUN_SCRIPT = r'''
import random, sys
import numpy as np, torch
from course_lib.train import EMA, Run
from course_lib.utils import seed_everything

def build(path, seed=0):
    seed_everything(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Dropout(0.2), torch.nn.Linear(16, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(seed + 1)
    run = Run({"model": model}, {"opt": opt}, ema={"model": EMA(model, 0.9)}, generators={"aug": gen},
              config={"lr": 1e-2}, seed=seed, path=path, save_every=0.0)

    def step(batch):
        x, y = batch
        x = x + 0.1 * torch.randn(x.shape, generator=gen) + float(np.random.randn()) * 0.01
        x = x * (1 + 0.01 * random.random())
        loss = ((model(x) - y) ** 2).mean() + 1e-3 * torch.randn(()).abs()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    return run, step

def data():
    g = torch.Generator().manual_seed(123)
    x = torch.randn(100, 4, generator=g)
    return x, x.sum(1, keepdim=True)

if __name__ == "__main__":
    run, step = build(sys.argv[1])
    run.resume()
    run.fit(step, data(), 16, steps=int(sys.argv[2]), desc="child",
            callback=lambda s, h: print("step", s, flush=True), callback_every=1)
    print("done", flush=True)
'''


def _child(script, path, steps):
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, str(script), str(path), str(steps)], stdout=subprocess.PIPE, text=True,
        stderr=subprocess.DEVNULL,
    )


def _final_state(path):
    from course_lib.utils import load_checkpoint

    state = load_checkpoint(path)
    return {"modules": state["modules"], "optimizers": state["optimizers"], "ema": state["ema"]}


def _assert_same(a, b):
    import torch

    def flat(tree, prefix=""):
        if isinstance(tree, dict):
            for k, v in tree.items():
                yield from flat(v, f"{prefix}/{k}")
        elif isinstance(tree, (list, tuple)):
            for i, v in enumerate(tree):
                yield from flat(v, f"{prefix}/{i}")
        else:
            yield prefix, tree

    fa, fb = dict(flat(a)), dict(flat(b))
    assert fa.keys() == fb.keys()
    for k in fa:
        if isinstance(fa[k], torch.Tensor):
            assert torch.equal(fa[k], fb[k]), k
        else:
            assert fa[k] == fb[k], k


def test_a_run_killed_by_sigkill_resumes_bit_for_bit(tmp_path):
    """A real SIGKILL of a child process at a random step, then a resume, ends with every
    parameter, optimiser moment and EMA weight identical to an uninterrupted run's."""
    import os
    import random
    import signal

    script = tmp_path / "child.py"
    script.write_text(RUN_SCRIPT)
    steps = 40
    straight = _child(script, tmp_path / "straight.pt", steps)
    assert straight.wait(120) == 0
    kill_at = random.Random().randint(3, steps - 5)
    killed = _child(script, tmp_path / "killed.pt", steps)
    for line in killed.stdout:
        if line.startswith("step") and int(line.split()[1]) >= kill_at:
            os.kill(killed.pid, signal.SIGKILL)
            break
    killed.wait(60)
    assert killed.returncode == -signal.SIGKILL, f"the child finished before step {kill_at}"
    resumed = _child(script, tmp_path / "killed.pt", steps)
    out = resumed.communicate(timeout=120)[0]
    assert resumed.returncode == 0 and "done" in out
    first = int(out.split("step ")[1].split()[0])
    assert 0 < first <= kill_at + 1, f"resumed at step {first}, killed at {kill_at}"
    _assert_same(_final_state(tmp_path / "straight.pt"), _final_state(tmp_path / "killed.pt"))
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".partial")]  # no temporary left


def _scramble_global_rng():
    """What a fresh process has: global generators in another state than the run left them."""
    import random

    import numpy as np
    import torch

    torch.manual_seed(987)
    np.random.seed(987)
    random.seed(987)


@pytest.mark.parametrize("left_out", [None, "modules", "optimizers", "ema", "rng", "generators", "data"])
def test_resume_fails_if_any_piece_of_state_is_left_out(tmp_path, left_out):
    """The same check in one process: leave one piece out of what a resume restores, and the
    weights differ from an uninterrupted run's (so every piece is needed, and checked)."""
    import types

    ns = types.ModuleType("child")
    exec(RUN_SCRIPT, ns.__dict__)
    run, step = ns.build(tmp_path / "straight.pt")
    run.fit(step, ns.data(), 16, steps=12)
    run, step = ns.build(tmp_path / "split.pt")
    run.fit(step, ns.data(), 16, steps=7)
    _scramble_global_rng()
    run, step = ns.build(tmp_path / "split.pt", seed=0)
    from course_lib import train as T
    from course_lib.utils import load_checkpoint

    state = load_checkpoint(tmp_path / "split.pt")
    fresh = run.state_dict()
    if left_out in ("modules", "optimizers", "ema"):
        state[left_out] = fresh[left_out]
    elif left_out == "rng":
        state["rng"] = {**fresh["rng"], "generators": state["rng"]["generators"]}
    elif left_out == "generators":
        state["rng"]["generators"] = fresh["rng"]["generators"]
    elif left_out == "data":
        state["data"] = fresh["data"]
    T.save_checkpoint(tmp_path / "split.pt", state)
    run.resume()
    run.fit(step, ns.data(), 16, steps=12)
    if left_out is None:
        _assert_same(_final_state(tmp_path / "straight.pt"), _final_state(tmp_path / "split.pt"))
    else:
        with pytest.raises(AssertionError):
            _assert_same(_final_state(tmp_path / "straight.pt"), _final_state(tmp_path / "split.pt"))


def test_resume_refuses_another_run_and_keeps_its_file(tmp_path):
    import types

    ns = types.ModuleType("child")
    exec(RUN_SCRIPT, ns.__dict__)
    run, step = ns.build(tmp_path / "a.pt")
    run.fit(step, ns.data(), 16, steps=3)
    before = (tmp_path / "a.pt").read_bytes()
    other, _ = ns.build(tmp_path / "a.pt", seed=1)
    with pytest.raises(ValueError, match=r"another run \(seed: saved 0, this run 1\)"):
        other.resume()
    other.config = {"lr": 0.5}
    other.seed = 0
    with pytest.raises(ValueError, match="lr: saved 0.01, this run 0.5"):
        other.resume()
    assert (tmp_path / "a.pt").read_bytes() == before
    (tmp_path / "a.pt").write_bytes(before[: len(before) // 2])
    with pytest.raises(RuntimeError, match=r"a\.pt could not be read .* delete it"):
        run.resume()


def test_nan_is_caught_before_the_step_and_rolls_back(tmp_path):
    """A loss that turns NaN leaves the weights and optimiser at the last checkpoint."""
    import torch

    from course_lib.train import Run, optimizer_step

    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = Run({"m": model}, {"opt": opt}, path=tmp_path / "r.pt", save_every=1e9)
    x = torch.randn(64, 2)
    lr = {"v": 0.1}

    def step(batch):
        for g in opt.param_groups:
            g["lr"] = lr["v"]
        loss = (model(batch[0]) ** 2).mean() * (float("nan") if lr["v"] > 1 else 1.0)
        optimizer_step(loss, opt)
        return {"loss": loss.item()}

    run.fit(step, x, 16, steps=5)
    good = {k: v.clone() for k, v in model.state_dict().items()}
    lr["v"] = 1e30
    with pytest.raises(FloatingPointError, match=r"loss became nan at step 5.*back at step 5.*r\.pt"):
        run.fit(step, x, 16, steps=10)
    assert all(torch.equal(good[k], v) for k, v in model.state_dict().items())


def test_cosine_lr_warms_up_decays_and_keeps_its_floor():
    from course_lib.train import cosine_lr

    assert cosine_lr(0.05, 1.0, warmup=0.1) == pytest.approx(0.5)  # half-way up the warm-up
    assert cosine_lr(0.1, 2.0, warmup=0.1) == pytest.approx(2.0)  # the peak after it
    assert cosine_lr(0.55, 2.0, warmup=0.1) == pytest.approx(1.0)  # half-way down: cos(pi/2)
    assert cosine_lr(1.0, 2.0) == pytest.approx(0.0) and cosine_lr(7.0, 2.0) == pytest.approx(0.0)
    assert cosine_lr(1.0, 2.0, floor=0.05) == pytest.approx(0.1)
    assert cosine_lr(0.5, 2.0, floor=0.05) == pytest.approx(2.0 * (0.05 + 0.95 * 0.5))
    assert cosine_lr(-1.0, 2.0, floor=0.05) == pytest.approx(2.0)
