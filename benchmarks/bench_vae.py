"""Benchmark: the course's MNIST VAE recipe against the classic MLP VAE, at equal wall time.

    python benchmarks/bench_vae.py                    # budgets 35 s and 120 s, seed 0
    python benchmarks/bench_vae.py --budgets 35 120 --seeds 0 1 --threads 1
    python benchmarks/bench_vae.py --budgets 120 --seeds 0 1 --iwae 1000   # with the IWAE estimate

Both models train on the embedded 4,000 MNIST training digits for the same wall-clock budget
and are scored on the 1,000 held-out digits by the test negative ELBO: Bernoulli likelihood on
[0, 1] pixels, one posterior sample, summed over pixels, averaged over images, in nats
(`course_lib.vae.evaluate`). Lower is better.

* recipe:  `course_lib.recipes.train_mnist_vae(seconds, seed)`
* classic: the 784-400-20 ReLU MLP VAE of pytorch/examples (a variant of Kingma & Welling's
  500-unit tanh model), Adam 1e-3, batch 128, no tricks.

Targets: the recipe beats the classic at both budgets, and reaches <= 100 nats at 120 s. The
script prints a table of both models' scores and step counts, and whether each target is met.
Wall-time budgets depend on the machine and on its load: the script prints the CPU, the
thread count and the load average with the numbers. On a busy machine both models get fewer
steps; two torch threads competing with other jobs for two cores can be several times slower
than one (try --threads 1).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from course_lib import recipes
from course_lib import vae as V
from course_lib.data import load_mnist
from course_lib.utils import seed_everything


def load() -> str:
    try:
        return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover - not on every OS
        return "load average n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", type=float, nargs="+", default=[35.0, 120.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--iwae", type=int, default=0, metavar="K",
                        help="also the IWAE estimate of the recipe's test NLL with K samples (chapter 7)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    x_train, x_test = load_mnist("train").data, load_mnist("test").data
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; {load()}")
    rows = []
    for seconds in args.budgets:
        for seed in args.seeds:
            t = time.perf_counter()
            rec = recipes.train_mnist_vae(seconds, seed=seed, desc=f"recipe {seconds:g}s")
            rec_steps, rec_wall = len(rec.history["loss"]), time.perf_counter() - t
            rec_score = V.evaluate(rec, x_test)["neg_elbo"]
            if args.iwae:
                nll = V.iwae_nll(rec, x_test, args.iwae)
                print(f"[{seconds:g} s, seed {seed}] recipe: -ELBO {rec_score:.2f}, IWAE NLL (k={args.iwae}) "
                      f"{nll:.2f} nats", flush=True)
            load_rec = load()
            t = time.perf_counter()
            seed_everything(seed)
            cl = V.mlp_vae(z_dim=20, hidden=(400,))
            hist = V.train_vae(cl, x_train, lr=1e-3, batch_size=128, seconds=seconds, seed=seed,
                               desc=f"classic {seconds:g}s")
            cl_steps, cl_wall = len(hist["loss"]), time.perf_counter() - t
            cl_score = V.evaluate(cl, x_test)["neg_elbo"]
            rows.append((seconds, seed, rec_score, rec_steps, rec_wall, cl_score, cl_steps, cl_wall, load_rec, load()))
            print(f"[{seconds:g} s, seed {seed}] recipe {rec_score:.2f} nats ({rec_steps} steps) | "
                  f"classic {cl_score:.2f} nats ({cl_steps} steps) | {load()}", flush=True)

    print("\nTest negative ELBO on the 1,000 held-out embedded MNIST digits (nats, lower is better)")
    print(f"{'budget':>7s} {'seed':>4s} | {'recipe':>8s} {'steps':>6s} | {'classic':>8s} {'steps':>6s} | "
          f"{'recipe - classic':>16s} | load after recipe / after classic")
    for seconds, seed, rs, rst, _, cs, cst, _, l1, l2 in rows:
        print(f"{seconds:6g}s {seed:4d} | {rs:8.2f} {rst:6d} | {cs:8.2f} {cst:6d} | {rs - cs:16.2f} | "
              f"{l1.split()[-3]} / {l2.split()[-3]}")
    better = all(rs < cs for _, _, rs, _, _, cs, *_ in rows)
    at120 = [rs for s, _, rs, *_ in rows if s == 120]
    print(f"\ntarget 1, recipe better than classic at every budget: {'met' if better else 'NOT met'}")
    if at120:
        mean120 = sum(at120) / len(at120)
        print(f"target 2, recipe <= 100 nats at 120 s: {'met' if mean120 <= 100 else 'NOT met'} ({mean120:.2f})")
        print(f"target 3, recipe <= 95 nats at 120 s, mean of the seeds: {'met' if mean120 <= 95 else 'NOT met'}")


if __name__ == "__main__":
    main()
