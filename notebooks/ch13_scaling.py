# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: nbgrader,tags,-all
#     notebook_metadata_filter: kernelspec,jupytext,-jupytext.text_representation.jupytext_version,-jupytext.text_representation.format_version
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 13 — Scaling up: exact resume, data parallelism, mixed precision, tracking
#
# Everything so far ran in one process on a laptop CPU. A learner who outgrows it wants the same
# code on a GPU, or eight, for full MNIST, CIFAR-10 and runs of hours. This chapter is about what
# changes and, mostly, about what must *not* change:
#
# * a **command line** for every recipe: `python -m course_lib.run vae --steps 300`;
# * what a **checkpoint** must hold so that a run killed at any moment continues as if nothing
#   had happened — shown by leaving each piece out and measuring how far the weights drift;
# * **data parallelism** as gradient averaging, derived, and PyTorch's own
#   `DistributedDataParallel` launched by `torchrun` on this CPU (the gloo backend), checked
#   against one process;
# * **mixed precision**: bfloat16 on CPUs that have the units for it, float16 with loss scaling
#   on GPUs, measured here;
# * **experiment tracking** with TensorBoard, read back from its own event files;
# * how to take the same command to a GPU or a cluster.
#
# Every run below is the VAE recipe of chapter 7 (`recipes.train_mnist_vae`), launched exactly
# as a user would launch it: through the command line, in this process or as new processes.

# %%
import json
import shutil
import signal
import subprocess
import time

import matplotlib.pyplot as plt
import torch

from course_lib import recipes, scaling, utils
from course_lib import run as cli
from course_lib.data import load_mnist, random_shift
from course_lib.tracking import read_events
from course_lib.utils import load_checkpoint, save_checkpoint

t_start = time.perf_counter()
FAST = utils.fast_mode()
STEPS = 60 if FAST else 300  # the length of every run in this chapter
RUNS = utils.checkpoint_dir() / "ch13_runs"
shutil.rmtree(RUNS, ignore_errors=True)  # each execution starts its runs afresh
utils.seed_everything(0)
results = {}  # name -> measured numbers, printed at the end
print("fast mode:", FAST, "| steps per run:", STEPS)
print("this machine:", scaling.describe_machine())


def train(*args: str) -> dict:
    """`python -m course_lib.run vae --steps STEPS ARGS`, in this process: final.pt"""
    final = cli.main(["vae", "--steps", str(STEPS), *args])
    return torch.load(final, weights_only=True)


def max_diff(a: dict, b: dict) -> float:
    """The largest absolute difference between two state_dicts' tensors."""
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


# %% [markdown]
# ## 13.1 The command line
#
# ```
# python -m course_lib.run RECIPE (--seconds S | --steps N) [--seed K]
#        [--data mnist|mnist-full|fashion|cifar10] [--root DIR] [--out DIR] [--resume]
#        [--amp] [--tensorboard DIR] [--batch-size B] [--save-every SECONDS]
# ```
#
# `RECIPE` is one of the course's recommended models: `vae` (chapter 7), `gan` (chapter 4),
# `robust` (chapter 10), `denoiser` (chapter 11) and `translator` (chapter 12). `--out DIR`
# holds the run: `last.pt`, written every `--save-every` seconds and at the end, is everything
# needed to continue; `final.pt` is written once the budget is spent and holds the trained
# model's `state_dict` under `"model"`, loadable with `torch.load(path, weights_only=True)`.
# An existing run is never overwritten: continuing it takes `--resume`. `--data mnist-full`
# with `--root` pointing at a torchvision folder trains on all 60,000 digits (nothing is
# downloaded). `--steps` makes a run repeatable bit for bit on a CPU; `--seconds` is what a
# benchmark at equal time uses, and no two such runs are the same.
#
# The same function is `course_lib.run.main(argv)`; here it trains the reference run that
# every experiment below is compared with, and logs it to TensorBoard.

# %%
t0 = time.perf_counter()
ref = train("--out", str(RUNS / "reference"), "--tensorboard", str(RUNS / "tb"))
seconds_one = time.perf_counter() - t0
print(
    f"one process: {STEPS} steps in {seconds_one:.1f} s;",
    f"final -ELBO {ref['history']['neg_elbo'][-1]:.1f} nats",
)
print("final.pt holds:", sorted(ref))
vae = recipes.mnist_vae(ref["config"])
vae.load_state_dict(ref["model"])  # "model" is the trained VAE's state_dict

# %% [markdown]
# ## 13.2 What a checkpoint must hold
#
# A run is a deterministic function of its seed *and of every piece of state that changes from
# step to step*. Stopping it and starting again continues the same run only if each of them is
# saved and restored:
#
# | piece | what it holds | lost, the resumed run … |
# |---|---|---|
# | weights | the model | starts over |
# | optimiser state | Adam's moment estimates $m_t, v_t$ and its step count | takes its next steps with fresh moments: large, badly scaled steps |
# | random generators | augmentation, reparameterisation noise, dropout | repeats the first steps' random draws |
# | data position | the epoch's permutation and where in it the run was | starts the epoch over: some batches twice, others never |
# | step and schedules | the learning-rate schedule's position, the budget spent | restarts the warm-up, trains too long |
#
# The classic tutorial snapshot holds the weights and the epoch number. The course's
# `train.Run` saves all of the above, atomically, and `python -m course_lib.run ... --resume`
# restores it. To see that it matters we kill a run — `SIGKILL`, as a machine that loses power:
# no handler runs — then resume a copy of what it left, once whole and once without each piece
# (`scaling.without`), and compare the weights at the end with the reference run's.

# %%
cmd = scaling.command(
    ["vae", "--steps", STEPS, "--out", RUNS / "killed", "--save-every", 0.2]
)
# killed about half-way: its first checkpoint, then 40 % of the reference training time
code = scaling.kill_after_checkpoint(
    cmd, RUNS / "killed" / "last.pt", delay=0.4 * ref["history"]["time"][-1]
)
left = load_checkpoint(RUNS / "killed" / "last.pt")
assert code == -signal.SIGKILL and 0 < left["step"] < STEPS, (code, left["step"])
pos, n, batch = left["data"]["pos"], left["data"]["n"], ref["config"]["batch_size"]
print(
    f"killed with status {code}; its last checkpoint is at step {left['step']}",
    f"(sample {pos} of epoch {left['data']['epoch']};",
    f"mid-epoch: {0 < pos < n // batch * batch})",
)

drift = {}
for piece in ("nothing", *scaling.PIECES):
    folder = RUNS / f"resumed-{piece}"
    shutil.copytree(RUNS / "killed", folder)
    if piece != "nothing":
        state = scaling.without(left, piece, seed=0)
        save_checkpoint(folder / "last.pt", state)
    done = train("--out", str(folder), "--resume")
    drift[piece] = max_diff(done["model"], ref["model"])
    print(
        f"resumed without {piece:10s}: max |weights - reference| = {drift[piece]:.3g}"
    )
results["resume, whole checkpoint: max |Δθ|"] = drift["nothing"]
for piece in scaling.PIECES:
    results[f"resume without {piece}: max |Δθ|"] = drift[piece]

# %% [markdown]
# The whole checkpoint gives the reference weights *exactly* (a difference of 0, not a small
# number: every operation is repeated in the same order). Each missing piece gives a different
# run. How different depends on how long the run continues after the resume; what matters is
# that it is no longer the run that was started, so a result cannot be reproduced and a
# comparison between two methods is no longer at equal training.

# %%
assert drift["nothing"] == 0.0, drift
for piece in scaling.PIECES:
    assert drift[piece] > 1e-4, (piece, drift[piece])

# %% [markdown]
# ## 13.3 Data parallelism is gradient averaging
#
# Training minimises the mean loss over a batch $B$ of $|B|$ examples. Split the batch between
# $W$ processes, process $r$ taking the examples $B_r$, $|B_r| = |B|/W$:
#
# $$
# \nabla_\theta \frac{1}{|B|}\sum_{i\in B}\ell_i(\theta)
# = \frac{1}{W}\sum_{r=1}^{W}\underbrace{\nabla_\theta\frac{1}{|B_r|}\sum_{i\in B_r}\ell_i(\theta)}_{g_r:\ \text{process } r\text{'s gradient}} .
# $$
#
# So if each process computes the gradient of the mean loss over its share and the processes
# then **average** their gradients (an *all-reduce*: every process ends with
# $\frac1W\sum_r g_r$), every process holds the gradient of the whole batch and takes the same
# optimiser step. The identity needs three things, each a classic bug when missing:
#
# 1. equal shares ($|B_r| = |B|/W$), or a weighted average;
# 2. a loss that is a sum over examples — batch normalisation {cite}`ioffe2015batchnorm` couples the examples of a batch,
#    so each process normalises with its own share's statistics (`SyncBatchNorm` fixes that);
# 3. the same randomness per example: example $i$ must get the same augmentation and the same
#    noise $\varepsilon_i$ whichever process it lands on. The course draws every random
#    number for the whole global batch in each process, with generators in the same state,
#    and each process keeps its rows (`scaling.global_randn`, `scaling.global_transform`).
#
# Below: the VAE's gradient on 128 digits, against the mean of the gradients of its two halves
# (rows 0, 2, 4, … and 1, 3, 5, …, as `DistributedSampler` splits them) — with the noise drawn
# for the global batch, and with each half drawing its own.

# %%
x = random_shift(load_mnist("train").data[:128], 1, torch.Generator().manual_seed(0))


def grads(loss: torch.Tensor) -> torch.Tensor:
    vae.zero_grad()
    loss.backward()
    return torch.cat([p.grad.flatten() for p in vae.parameters()])


eps = torch.randn(128, vae.z_dim, generator=torch.Generator().manual_seed(1))
g_full = grads(vae.loss(x, eps=eps)[0])
worlds = [scaling.World(rank, 2) for rank in range(2)]
g_avg = (
    sum(
        grads(vae.loss(scaling.shard(x, w), eps=scaling.shard(eps, w))[0])
        for w in worlds
    )
    / 2
)
own = [
    torch.randn(64, vae.z_dim, generator=torch.Generator().manual_seed(10 + r))
    for r in range(2)
]
g_own = (
    sum(grads(vae.loss(scaling.shard(x, w), eps=e)[0]) for w, e in zip(worlds, own)) / 2
)
rel = [float((g - g_full).norm() / g_full.norm()) for g in (g_avg, g_own)]
print(
    "|mean of the halves' gradients - gradient| / |gradient|:",
    f"shared noise {rel[0]:.2g},",
    f"each half its own noise {rel[1]:.2g}",
)
assert rel[0] < 1e-5 and rel[1] > 1e-2, rel

# %% [markdown]
# With shared noise the two agree to float32 rounding; with noise drawn per process the averaged
# gradient is another, equally valid, random estimate — fine for training, but then a run in two
# processes is not the run in one, and nothing can check the distributed code against the
# simple one. Batch normalisation breaks the identity for a different reason:

# %%
bn_net = torch.nn.Sequential(
    torch.nn.Flatten(),
    torch.nn.Linear(784, 32),
    torch.nn.BatchNorm1d(32),
    torch.nn.ReLU(),
    torch.nn.Linear(32, 1),
)


def bn_grads(xb: torch.Tensor) -> torch.Tensor:
    bn_net.zero_grad()
    bn_net(xb).square().mean().backward()
    return torch.cat([p.grad.flatten() for p in bn_net.parameters()])


bn_full = bn_grads(x)
bn_avg = sum(bn_grads(scaling.shard(x, w)) for w in worlds) / 2
rel_bn = float((bn_avg - bn_full).norm() / bn_full.norm())
print(f"with batch normalisation: relative difference {rel_bn:.2g}")
assert rel_bn > 1e-3

# %% [markdown]
# ## 13.4 `torchrun` and `DistributedDataParallel`, on this CPU
#
# PyTorch's engine for data parallelism is `DistributedDataParallel` (DDP,
# {cite}`li2020ddp`): it broadcasts rank
# 0's weights when it is built, then all-reduces the gradients in buckets *while* `backward`
# runs, so communication overlaps computation. `torchrun` starts the processes and gives each
# its `RANK`, `WORLD_SIZE` and `LOCAL_RANK`. The course's command line, started by `torchrun`,
#
# * joins the process group with `scaling.init_world()`: the **gloo** backend on a CPU,
#   **NCCL** on CUDA, chosen from the hardware (a hard-coded `"nccl"` is why many tutorials
#   do not run without a GPU);
# * draws each epoch's order with `DistributedSampler` and calls `set_epoch` (forgotten, every
#   epoch repeats the first one's order);
# * treats `--batch-size` as the **global** batch: each process takes $1/W$ of it, so the same
#   command computes the same updates for any $W$;
# * logs the global batch's losses (averaged over the processes) and writes checkpoints from
#   rank 0 only; a checkpoint stores the position in the global order, so it reloads at any
#   world size.
#
# Two processes, launched from the notebook as one would from a shell:

# %%
cmd = scaling.command(["vae", "--steps", STEPS, "--out", RUNS / "ddp2"], procs=2)
print(" ".join(str(c) for c in cmd[1:]).replace("-m torch.distributed.run", "torchrun"))
t0 = time.perf_counter()
proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
seconds_two = time.perf_counter() - t0
assert proc.returncode == 0, proc.stderr[-2000:]
two = torch.load(RUNS / "ddp2" / "final.pt", weights_only=True)
ddp_diff = max_diff(two["model"], ref["model"])
print(
    f"two processes: {seconds_two:.1f} s",
    f"(one process: {seconds_one:.1f} s, in this kernel);",
    f"max |two - one| = {ddp_diff:.2g}",
)
results["DDP, 2 processes vs 1: max |Δθ|"] = ddp_diff
# rounding that Adam carries forward grows with the steps (tests/test_scaling.py holds
# 100 steps to 1e-5); a run whose processes drew their own noise is far outside this
assert two["world_size"] == 2 and ddp_diff <= 1e-4

# %% [markdown]
# The weights agree up to float32 rounding, not bit for bit: the all-reduce adds the two
# halves' gradients in another order than one process's backward pass adds all 128 examples,
# and Adam carries such last-bit differences forward, so they grow slowly with the number of
# steps (the tests check 100 steps to within $10^{-5}$). One process alone shows the same
# effect when it changes its number of threads, which splits the batch's sums differently:

# %%
threads = torch.get_num_threads()
torch.set_num_threads(1)
try:
    alone = train("--out", str(RUNS / "one-thread"))
finally:
    torch.set_num_threads(threads)
thread_diff = max_diff(alone["model"], ref["model"])
print(f"one process, 1 thread vs {threads}: max |Δθ| = {thread_diff:.2g}")
results[f"1 process, 1 thread vs {threads}: max |Δθ|"] = thread_diff
assert thread_diff <= 1e-4

# %% [markdown]
# Two processes are not faster here: this machine has two cores, which the one-process run
# already uses (two threads), and the two processes also start Python and pass every gradient
# between them. Data parallelism pays when each process has its own GPU — or its own machine.
#
# ## 13.5 Mixed precision
#
# `torch.autocast` runs matrix products and convolutions in a 16-bit format and keeps the
# weights, the optimiser and the reductions in float32. The two formats differ in where they
# put their 16 bits:
#
# | format | exponent bits | mantissa bits | smallest normal | needs loss scaling |
# |---|---|---|---|---|
# | float32 | 8 | 23 | $1.2\times10^{-38}$ | — |
# | bfloat16 | 8 | 7 | $1.2\times10^{-38}$ | no |
# | float16 | 5 | 10 | $6.1\times10^{-5}$ | yes |
#
# A gradient of $10^{-8}$ is zero in float16 but not in bfloat16. Loss scaling
# {cite}`micikevicius2018mixed` multiplies the loss by a large $s$ before `backward`, so the gradients are $s$
# times larger and survive float16, and divides them by $s$ before the step; if they overflow,
# the step is skipped and $s$ halved. `torch.amp.GradScaler` does it; `--amp` uses it on CUDA
# and its state is in the checkpoint.

# %%
tiny = torch.tensor(1e-8)
print(
    "1e-8 in float16:",
    tiny.half().item(),
    "| in bfloat16:",
    tiny.bfloat16().item(),
    "| scaled by 2^16 in float16, then divided in float32:",
    (tiny * 2**16).half().float().item() / 2**16,
)
assert tiny.half().item() == 0.0 and tiny.bfloat16().item() > 0

# %% [markdown]
# On a CPU, bfloat16 is only fast with native units (AVX512-BF16 or AMX, on recent Xeons; most
# laptops have neither, and there it is *slower* than float32, being emulated). The recipe's
# default, `bf16="auto"`, asks oneDNN. Below: the VAE recipe's training speed in float32 and in
# bfloat16 on this machine, the two alternated so that both see the same load.

# %%
flags = scaling.cpu_flags()
print(
    "CPU flags:", {k: v for k, v in flags.items()}, "| bf16 fast:", utils.bf16_is_fast()
)
n_time = 20 if FAST else 100
per_step = {"float32": [], "bfloat16": []}
for _ in range(2):
    for name, bf16 in (("float32", False), ("bfloat16", True)):
        m = recipes.train_mnist_vae(steps=n_time, config={"bf16": bf16}, desc=name)
        t = m.history["time"]
        per_step[name].append((t[-1] - t[4]) / (len(t) - 5))  # after 5 warm-up steps
ms = {k: 1000 * min(v) for k, v in per_step.items()}
ratio = ms["float32"] / ms["bfloat16"]
print(
    f"ms per step: float32 {ms['float32']:.1f}, bfloat16 {ms['bfloat16']:.1f};",
    f"speed-up {ratio:.2f}x",
)
results["ms/step float32"], results["ms/step bfloat16"] = ms["float32"], ms["bfloat16"]
results["bf16 speed-up"] = ratio

# %% [markdown]
# ## 13.6 Tracking experiments with TensorBoard
#
# `--tensorboard DIR` (and `tensorboard=DIR` in `train.fit`) writes the logged losses against
# the step, the run's settings as text and sample grids, with PyTorch's own
# `torch.utils.tensorboard` writer; `tensorboard --logdir DIR` shows them in a browser. The
# files stay on this machine. Here the reference run's event file is read back with
# TensorBoard's own reader (`tracking.read_events`):

# %%
events = read_events(RUNS / "tb")
loss = events["scalars"]["neg_elbo"]
settings = json.loads(events["text"]["config"][0].strip("`\n"))
print("scalars:", sorted(events["scalars"]), "| images:", sorted(events["images"]))
print("settings:", settings)
fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
axes[0].plot([s for s, _ in loss], [v for _, v in loss])
axes[0].set(xlabel="step", ylabel="-ELBO (nats)", title="from the event file")
step, grid = events["images"]["samples"][-1]
axes[1].imshow(grid)
axes[1].set(title=f"samples at step {step}")
axes[1].axis("off")
plt.show()
logged = ref["history"]["neg_elbo"][::10]  # the event file holds one step in ten
assert settings["recipe"] == "vae" and step == STEPS and len(loss) == len(logged)
assert all(abs(a - b) <= 1e-5 * abs(b) for (_, a), b in zip(loss, logged))

# %% [markdown]
# Weights & Biases, MLflow and others receive the same numbers through their own loggers;
# TensorBoard is the one that needs no account and no network.
#
# ## 13.7 On a GPU, or several machines
#
# The same command runs unchanged where there is more hardware:
#
# ```
# # one GPU, mixed precision (float16 with loss scaling), full MNIST
# python -m course_lib.run vae --seconds 600 --amp --data mnist-full --root ~/data
# # all GPUs of one machine: one process per GPU, NCCL
# torchrun --standalone --nproc_per_node=gpu -m course_lib.run vae --steps 20000 --amp
# # two machines of 8 GPUs: run this on each, with its --node_rank
# torchrun --nnodes=2 --node_rank=0 --nproc_per_node=8 \
#     --rdzv_backend=c10d --rdzv_endpoint=HOST_OF_NODE_0:29400 \
#     -m course_lib.run vae --steps 20000 --amp --out /shared/runs/vae
# ```
#
# With `--steps` and the same `--batch-size`, each of these computes the updates of the
# one-process run (up to rounding); to use the extra hardware for a larger global batch, raise
# `--batch-size` and, as a rule of thumb, the learning rate with it {cite}`goyal2017imagenet`. On a
# cluster, give `--out` a folder every node sees: rank 0 writes there, and `--resume` after a
# pre-emption continues from it at any number of processes. Killing `torchrun` alone leaves
# its workers running (each is in a session of its own): stop a run with Ctrl-C, which
# `torchrun` passes on, or kill the whole tree as `scaling.kill_tree` does.
#
# ## Exercises
#
# **Exercise 1.** Write `average_gradients(params, world_size, all_reduce)`: what DDP does,
# by hand. `all_reduce(tensor)` replaces `tensor`, in place, by its sum over the processes (as
# `torch.distributed.all_reduce` does); after your function, every parameter's `.grad` must be
# the mean of the processes' gradients. Skip parameters without a gradient. (The check runs your
# function as process 0 of three, and simulates the other two.)


# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "ch13-ex1", "locked": false, "schema_version": 3, "solution": true, "task": false}
def average_gradients(params, world_size, all_reduce):
    ### BEGIN SOLUTION
    for p in params:
        if p.grad is not None:
            all_reduce(p.grad)
            p.grad /= world_size
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch13-ex1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from course_lib.checks.ch13 import check_average_gradients

check_average_gradients(average_gradients)

# %% [markdown]
# **Exercise 2.** Write `scaled_step(loss, opt, scale)`: one optimiser step with loss scaling.
# Backpropagate `scale * loss`; if any gradient is then inf or NaN, skip the step and return
# `scale / 2`; otherwise divide every gradient by `scale`, take the step and return `scale`.


# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "ch13-ex2", "locked": false, "schema_version": 3, "solution": true, "task": false}
import torch


def scaled_step(loss, opt, scale):
    ### BEGIN SOLUTION
    opt.zero_grad()
    (loss * scale).backward()
    params = [
        p for group in opt.param_groups for p in group["params"] if p.grad is not None
    ]
    if not all(torch.isfinite(p.grad).all() for p in params):
        return scale / 2
    for p in params:
        p.grad /= scale
    opt.step()
    return scale
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch13-ex2-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from course_lib.checks.ch13 import check_scaled_step

check_scaled_step(scaled_step)

# %% [markdown]
# ## Results
#
# Measured in this execution (`STEPS` steps of the VAE recipe per run; the machine is printed
# at the top). The README's "Scaling up" section holds the same table from a full-mode run.

# %%
width = max(map(len, results))
for name, value in results.items():
    print(f"{name:{width}s}  {value:.3g}")
print(f"chapter run time: {time.perf_counter() - t_start:.0f} s")
