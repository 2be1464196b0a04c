"""Benchmark: the diffusion recipe against the GAN and VAE recipes at equal training time.

    python benchmarks/bench_diffusion.py                       # 60, 150, 300 s: about 45 minutes
    python benchmarks/bench_diffusion.py --budgets 300         # the budget the target is set at
    python benchmarks/bench_diffusion.py --budgets 300 --save course_lib/assets/bench/diffusion.json

Every model trains on the embedded 4,000 MNIST training digits for the same wall-clock budget,
one after the other (never two at once), and is scored by chapter 9's classifier-FID of 1,000
samples against the 1,000 embedded test digits; the wall time of drawing those 1,000 samples is
printed beside it. The models:

* ``diffusion recipe``: :func:`course_lib.recipes.train_mnist_diffusion`, latent flow matching
  on chapter 7's VAE (10 Heun steps, 20 network calls);
* ``pixel flow`` and ``pixel DDPM``: :func:`course_lib.diffusion_train.train_diffusion` on the
  pixels with the 16-32-32 U-Net (flow: 10 Heun steps; DDPM: 20 DDIM steps; 20 calls each);
* ``GAN recipe``: :func:`course_lib.recipes.train_mnist_gan` (chapter 4: the DCGAN
  conditioned on spectral clusters of the digits);
* ``DCGAN (ch. 4)``: the same function with ``config=recipes.DCGAN_CONFIG``, no clusters;
* ``VAE recipe``: :func:`course_lib.recipes.train_mnist_vae` (chapter 7), prior samples.

Target: at 300 s the diffusion recipe's FID is below the GAN recipe's, and its 1,000 samples
take at most 30 s. ``--save`` writes the table (JSON) that chapter 14 prints.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from course_lib import diffusion_train as DT
from course_lib import features, metrics, recipes
from course_lib.data import load_mnist

MODELS = {
    "diffusion recipe": lambda s, seed: recipes.train_mnist_diffusion(s, seed, desc="diffusion recipe"),
    "pixel flow": lambda s, seed: DT.train_diffusion(load_mnist("train").data, s, seed, desc="pixel flow"),
    "pixel DDPM": lambda s, seed: DT.train_diffusion(load_mnist("train").data, s, seed, desc="pixel DDPM",
                                                     config={"kind": "ddpm", "sample_steps": 20}),
    "GAN recipe": lambda s, seed: recipes.train_mnist_gan(s, seed, desc="GAN recipe"),
    "DCGAN (ch. 4)": lambda s, seed: recipes.train_mnist_gan(s, seed, config=recipes.DCGAN_CONFIG,
                                                             desc="DCGAN"),
    "VAE recipe": lambda s, seed: recipes.train_mnist_vae(s, seed, desc="VAE recipe"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budgets", type=float, nargs="+", default=[60, 150, 300])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--save", type=Path, default=None, help="write the table as JSON (merged with the file's)")
    args = parser.parse_args()

    clf = features.load_mnist_classifier()
    test = features.extract(clf, load_mnist("test").data)
    command = shlex.join(["python", *sys.argv])
    print(f"# {command}")
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
          f"{platform.processor() or platform.machine()}")
    floor = metrics.fid(features.extract(clf, load_mnist("train").data[:1000]), test)
    print(f"# floor: 1,000 real training digits against the test digits: {floor:.1f}")
    print(f"{'budget s':>8}  {'model':18s} {'seed':>4} {'steps':>7} {'FID':>7} {'sample s':>8}  load avg")
    rows = []
    for budget in args.budgets:
        for seed in args.seeds:
            for name in args.models:
                model = MODELS[name](budget, seed)
                hist = model.history
                steps = sum(len(h["step"]) for h in hist.values()) if "flow" in hist else len(hist["step"])
                t0 = time.perf_counter()
                samples = model.sample(1000, generator=torch.Generator().manual_seed(seed + 1))
                sample_s = time.perf_counter() - t0
                fid = metrics.fid(features.extract(clf, samples), test)
                rows.append({"budget": budget, "model": name, "seed": seed, "steps": steps, "fid": fid,
                             "sample_seconds": sample_s})
                print(f"{budget:8g}  {name:18s} {seed:4d} {steps:7d} {fid:7.1f} {sample_s:8.1f}  "
                      f"{os.getloadavg()[0]:.2f}", flush=True)
    for budget in args.budgets:
        mean = {n: sum(r["fid"] for r in rows if r["budget"] == budget and r["model"] == n) / len(args.seeds)
                for n in args.models}
        if "diffusion recipe" in mean and "GAN recipe" in mean:
            worst = max(r["sample_seconds"] for r in rows if r["budget"] == budget and r["model"] == "diffusion recipe")
            met = mean["diffusion recipe"] < mean["GAN recipe"] and worst <= 30
            print(f"{budget:g} s: diffusion recipe {mean['diffusion recipe']:.1f} vs GAN recipe "
                  f"{mean['GAN recipe']:.1f}, sampling {worst:.1f} s: target {'met' if met else 'NOT met'}")
    if args.save:
        old = json.loads(args.save.read_text()) if args.save.exists() else {"rows": []}
        keep = [r for r in old["rows"] if (r["budget"], r["model"], r["seed"]) not in
                {(r["budget"], r["model"], r["seed"]) for r in rows}]
        if keep and old.get("command") and command not in old["command"].split(" && "):  # rows of both kept
            command = f"{old['command']} && {command}"
        elif keep and old.get("command"):
            command = old["command"]  # a rerun of one of its commands: the file's command is unchanged
        args.save.write_text(json.dumps({"command": command, "floor": floor, "rows": keep + rows}, indent=1) + "\n")
        print(f"saved {args.save}")


if __name__ == "__main__":
    main()
