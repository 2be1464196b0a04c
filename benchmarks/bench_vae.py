"""Benchmark: the course's MNIST VAEs against the classic MLP VAE, at equal wall time, with an ablation.

    python benchmarks/bench_vae.py                             # budget 120 s, seed 0, every model
    python benchmarks/bench_vae.py --budgets 35 120 --seeds 0 1 --iwae 200
    python benchmarks/bench_vae.py --models recipe classic     # some of the models

Every model trains on the embedded 4,000 MNIST training digits for the same wall-clock budget
and is scored on the 1,000 held-out digits by the test negative ELBO: Bernoulli likelihood on
[0, 1] pixels, one posterior sample, summed over pixels, averaged over images, in nats
(`course_lib.vae.evaluate`), with its two terms; `--iwae K` adds the importance-weighted
estimate of the negative log-likelihood with K samples (`course_lib.vae.iwae_nll`, chapter 7).
Lower is better.

* pixelvae: `train_mnist_vae(seconds, seed, config=recipes.MNIST_PIXELVAE_CONFIG)`: the recipe's
  encoder and conv decoder, whose features a masked-convolution stack reads with the pixels
  above and to the left of each pixel (`course_lib.vae.PixelCNNDecoder`), free bits 0.5;
* pixelvae, no free bits: the same without free bits (the ablation of that choice);
* recipe: `course_lib.recipes.train_mnist_vae(seconds, seed)`, the conv decoder alone, which maps
  a code to an image in one call (what chapters 10-14 build on);
* classic: the 784-400-20 ReLU MLP VAE of pytorch/examples (a variant of Kingma & Welling's
  500-unit tanh model), Adam 1e-3, batch 128, no tricks.

Targets, at 120 s, mean of the seeds: the likelihood recipe (pixelvae) <= 95 nats; the
one-call recipe <= 100 nats; both better than the classic at every budget. Wall-time budgets
depend on the machine and on its load: the script prints the CPU, the thread count and the
load average with the numbers. Run nothing else meanwhile (two torch jobs competing for two
cores can each be several times slower); --threads 1 pins torch to one thread.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

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


def classic(seconds: float, seed: int) -> V.VAE:
    seed_everything(seed)
    vae = V.mlp_vae(z_dim=20, hidden=(400,))
    vae.history = V.train_vae(vae, load_mnist("train").data, lr=1e-3, batch_size=128, seconds=seconds, seed=seed,
                              desc=f"classic {seconds:g}s")
    return vae.eval()


MODELS: dict[str, Callable[[float, int], V.VAE]] = {
    "pixelvae": lambda s, seed: recipes.train_mnist_vae(s, seed, config=recipes.MNIST_PIXELVAE_CONFIG,
                                                        desc=f"pixelvae {s:g}s"),
    "pixelvae, no free bits": lambda s, seed: recipes.train_mnist_vae(
        s, seed, config={"decoder": "pixelcnn", "free_bits": 0.0}, desc=f"pixelvae, no free bits {s:g}s"),
    "recipe": lambda s, seed: recipes.train_mnist_vae(s, seed, desc=f"recipe {s:g}s"),
    "classic": classic,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", type=float, nargs="+", default=[120.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS), metavar="MODEL",
                        help=f"any of {list(MODELS)} (default: all)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--iwae", type=int, default=0, metavar="K",
                        help="also the IWAE estimate of each model's test NLL with K samples (chapter 7)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    x_test = load_mnist("test").data
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; {load()}")
    rows = []
    for seconds in args.budgets:
        for seed in args.seeds:
            for name in args.models:
                t = time.perf_counter()
                vae = MODELS[name](seconds, seed)
                wall = time.perf_counter() - t
                res = V.evaluate(vae, x_test)
                torch.manual_seed(seed)
                nll = V.iwae_nll(vae, x_test, args.iwae) if args.iwae else float("nan")
                rows.append((seconds, seed, name, len(vae.history["loss"]), wall, res, nll, load()))
                print(f"[{seconds:g} s, seed {seed}] {name}: -ELBO {res['neg_elbo']:.2f} (rec {res['rec']:.2f} + "
                      f"KL {res['kl']:.2f}), IWAE NLL {nll:.2f}, {rows[-1][3]} steps | {load()}", flush=True)

    print("\nTest negative ELBO on the 1,000 held-out embedded MNIST digits (nats, lower is better)")
    print(f"{'budget':>7s} {'seed':>4s} | {'model':24s} | {'steps':>6s} | {'-ELBO':>7s} {'rec':>7s} {'KL':>6s} | "
          f"{'IWAE NLL':>8s} | load after")
    for seconds, seed, name, steps, _, res, nll, ld in rows:
        print(f"{seconds:6g}s {seed:4d} | {name:24s} | {steps:6d} | {res['neg_elbo']:7.2f} {res['rec']:7.2f} "
              f"{res['kl']:6.2f} | {nll:8.2f} | {ld.split()[-3]}")

    def mean(name: str, seconds: float) -> float | None:
        vals = [r[5]["neg_elbo"] for r in rows if r[2] == name and r[0] == seconds]
        return sum(vals) / len(vals) if vals else None

    print("\nMean over the seeds")
    for seconds in args.budgets:
        for name in args.models:
            print(f"{seconds:6g}s | {name:24s} | {mean(name, seconds):7.2f}")
    for seconds in args.budgets:
        cl = mean("classic", seconds)
        for name in ("pixelvae", "recipe"):
            m = mean(name, seconds)
            if m is not None and cl is not None:
                print(f"target, {name} better than classic at {seconds:g} s: {'met' if m < cl else 'NOT met'}")
    for name, goal in (("pixelvae", 95.0), ("recipe", 100.0)):
        m = mean(name, 120.0)
        if m is not None:
            print(f"target, {name} <= {goal:g} nats at 120 s, mean of the seeds: {'met' if m <= goal else 'NOT met'} "
                  f"({m:.2f})")


if __name__ == "__main__":
    main()
