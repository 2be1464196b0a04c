"""Benchmark: chapter 5's methods on the ring and the grid, scored with the PacGAN/VEEGAN protocol.

    python benchmarks/bench_toy_gan.py                                  # every method, 5 seeds, 60 s each
    python benchmarks/bench_toy_gan.py --methods vanilla r1 --seeds 0 1 --seconds 30
    python benchmarks/bench_toy_gan.py --save course_lib/assets/bench/toy_gan.pt   # keep the samples (toy_gan.BENCHMARK)

``--save`` adds each run's 2,500 samples, steps and settings to a file (merged with what it
holds), which chapter 5 scores with the same metrics to print its table.

Each run trains ``course_lib.toy_gan.train_toy_gan(kind, seconds, seed, method)`` and draws
2,500 samples. ``metrics.mode_coverage``: a sample is high quality within 3 sigma of its
nearest centre, a mode is captured with at least one high-quality sample;
``metrics.mode_statistics``: the spread of the high-quality samples around their centres in
units of sigma (0.974 for the true mixture) and the KL of the mode histogram from uniform. The
table is mean ± standard error over seeds.

Targets (chapter 5): the course's recipe scores ring 8/8 modes with >= 98 % high quality and grid
25/25 with >= 97 %, spread within 0.8-1.25; the vanilla GAN misses modes on the grid (< 22 modes
or < 70 % high quality). For reference (other sigma, other budgets; never one column):
PacGAN4 (Lin et al., 2018) ring 7.8 modes / 95.9 %, grid 24.8 / 93.6 %; VEEGAN
(Srivastava et al., 2017) ring 8 / 52.9 %, grid 24.6 / 40 %.
"""

from __future__ import annotations

import argparse
import math
import os
import platform

import numpy as np
import torch

from course_lib import toy_gan


def score(kind: str, method: str, seconds: float, seed: int, saved: dict | None = None):
    model = toy_gan.train_toy_gan(kind, seconds=seconds, seed=seed, method=method, desc=f"{method} {kind} s{seed}")
    x = model.sample(2500, seed=10_000 + seed)
    if saved is not None:
        saved[f"{kind}/{method}/{seed}"] = {"samples": x.half(), "steps": model.run.step, "seconds": seconds}
    s = toy_gan.score(x, kind)
    return s["modes"], s["high quality"], s["spread"], s["KL"], model.run.step


def mean_se(values: list[float]) -> str:
    v = np.asarray(values, dtype=float)
    se = v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else math.nan
    return f"{v.mean():.3g} ± {se:.2g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="*", default=sorted(toy_gan.METHODS))
    parser.add_argument("--kinds", nargs="*", default=["ring", "grid"])
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--save", default=None, help="add the samples to this file (chapter 5 reads it)")
    args = parser.parse_args()
    saved = None
    if args.save:
        saved = torch.load(args.save, weights_only=True)["runs"] if os.path.exists(args.save) else {}
    torch.set_num_threads(args.threads)
    print(f"{platform.processor() or platform.machine()}, {args.threads} torch threads, "
          f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}; {args.seconds:g} s per run")
    print(f"{'method':10s} {'data':5s} {'modes':>12s} {'high quality':>14s} {'spread/sigma':>14s} "
          f"{'KL(modes||U)':>14s} {'steps':>8s}")
    results = {}
    for kind in args.kinds:
        for method in args.methods:
            rows = [score(kind, method, args.seconds, s, saved) for s in args.seeds]
            if saved is not None:  # after each row, atomically: an interrupted run keeps what it made
                os.makedirs(os.path.dirname(os.path.abspath(args.save)), exist_ok=True)
                meta = {"machine": f"{platform.machine()}, {args.threads} torch threads", "sample_seed": "10000 + seed"}
                torch.save({"runs": saved, "meta": meta}, args.save + ".tmp")
                os.replace(args.save + ".tmp", args.save)
            results[kind, method] = rows
            cols = list(zip(*rows))
            print(f"{method:10s} {kind:5s} {mean_se(cols[0]):>12s} {mean_se(cols[1]):>14s} "
                  f"{mean_se(cols[2]):>14s} {mean_se(cols[3]):>14s} {np.mean(cols[4]):8.0f}", flush=True)
    if ("grid", "vanilla") in results:
        modes, hq = (np.mean(c) for c in list(zip(*results["grid", "vanilla"]))[:2])
        print(f"vanilla collapses on the grid (< 22 modes or < 70 % high quality): "
              f"{'PASS' if modes < 22 or hq < 0.7 else 'FAIL'}")
    for kind, modes_needed, hq_needed in (("ring", 8, 0.98), ("grid", 25, 0.97)):
        if (kind, "recipe") in results:
            modes, hq, spread = (np.mean(c) for c in list(zip(*results[kind, "recipe"]))[:3])
            ok = modes == modes_needed and hq >= hq_needed and 0.8 <= spread <= 1.25
            print(f"recipe on the {kind}: {modes_needed} modes, >= {hq_needed:.0%} high quality, "
                  f"spread 0.8-1.25: {'PASS' if ok else 'FAIL'}")
    if not any(m == "recipe" for _, m in results):
        print("the recipe was not among --methods: its targets were not checked")


if __name__ == "__main__":
    main()
