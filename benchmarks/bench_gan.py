"""Benchmark: the recommended MNIST GAN recipe against the classic MLP GAN, at equal wall time.

For each budget (default 60, 120 and 300 s) it trains ``recipes.train_mnist_gan``
(chapter 4's DCGAN conditioned on spectral clusters of the digits, with lazy R1:
:data:`course_lib.recipes.MNIST_GAN_CONFIG`) and the classic
100-256-512-784 MLP GAN trained correctly (chapter 3's settings,
:data:`course_lib.recipes.CLASSIC_MLP_GAN_CONFIG`) on the embedded 4,000 MNIST
training digits, then prints the classifier-FID (chapter 9: features of
``course_lib.features.load_mnist_classifier``) of 1,000 samples against the 1,000
embedded test digits. Lower is better. Beside it, improved precision and recall (chapter 9,
k = 3) of the same samples against the test digits: whether what is missing is quality or
diversity. The clustering counts in the recipe's budget. The
load average is printed with every row: wall-time budgets mean fewer steps on a busy machine.

    python benchmarks/bench_gan.py                     # 60, 120, 300 s: about 16 minutes
    python benchmarks/bench_gan.py --budgets 10 20     # a quick look
    python benchmarks/bench_gan.py --budgets 120 --seeds 0 1 --extra dcgan   # the README's table
    python benchmarks/bench_gan.py --budgets 120 --seeds 0 1 --extra lecam --only-extra --with-recipe  # LeCam
    python benchmarks/bench_gan.py --extra dcgan dcgan-r1-3 --only-extra --with-recipe   # what the clusters buy
    python benchmarks/bench_gan.py --extra kmeans k10 k100 --only-extra   # how and how many clusters
    python benchmarks/bench_gan.py --extra no-r1 r1-1 r1-eager --only-extra  # R1's weight and schedule
    python benchmarks/bench_gan.py --extra lr2e-4      # also the MLP with the usual lr 2e-4, batch 64
    python benchmarks/bench_gan.py --extra no-ema --only-extra   # what the weight average buys
    python benchmarks/bench_gan.py --extra fp32 --only-extra     # what bf16 autocast buys (bf16 units)
    python benchmarks/bench_gan.py --budgets 120 --seeds 0 1 --extra z100 --only-extra --with-recipe  # the code's size
    python benchmarks/bench_gan.py --budgets 120 --seeds 2 3 --only-extra --with-recipe \
        --config b96='{"batch_size": 96}' --config smooth='{"real_label": 0.9}'   # any recipe variant
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace

import torch

from course_lib import features, metrics, recipes
from course_lib.data import load_mnist

GAN = recipes.MNIST_GAN_CONFIG
DCGAN = recipes.DCGAN_CONFIG
EXTRA = {
    "dcgan": ("DCGAN, no clusters (ch. 4)", DCGAN),
    "dcgan-r1-3": ("DCGAN, no clusters, R1 gamma 3", replace(DCGAN, r1_gamma=3.0)),
    "kmeans": ("recipe with k-means clusters", replace(GAN, clustering="kmeans")),
    "k10": ("recipe with 10 clusters", replace(GAN, clusters=10)),
    "k100": ("recipe with 100 clusters", replace(GAN, clusters=100)),
    "no-r1": ("recipe without R1", replace(GAN, r1_gamma=0.0)),
    "r1-1": ("recipe with R1 gamma 1", replace(GAN, r1_gamma=1.0)),
    "r1-eager": ("recipe with R1 on every step", replace(GAN, r1_every=1)),
    "r1-3": ("recipe with R1 gamma 3", replace(GAN, r1_gamma=3.0)),
    "fp32": ("recipe in float32 (no bf16 autocast)", replace(GAN, bf16=False)),
    "no-ema": ("recipe without the EMA of G", replace(GAN, ema=0.0)),
    "lecam": ("recipe with LeCam, weight 0.1", replace(GAN, lecam=0.1)),
    "z100": ("recipe with a 100-number code", replace(GAN, latent_dim=DCGAN.latent_dim)),
    "lr2e-4": ("classic MLP, lr 2e-4, batch 64", replace(recipes.CLASSIC_MLP_GAN_CONFIG, lr_g=2e-4, lr_d=2e-4, batch_size=64)),
}


def variant(text: str) -> tuple[str, recipes.GANConfig]:
    """``NAME=JSON`` to a row: the recipe with the JSON's GANConfig changes (lists become tuples)."""
    name, sep, changes = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r}: give NAME=JSON, e.g. b96='{{\"batch_size\": 96}}'")
    try:
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(changes).items()}
        return f"recipe, {name}", recipes.gan_config(fields)
    except (ValueError, TypeError, AttributeError) as e:  # bad JSON, not a dict, an unknown field
        raise argparse.ArgumentTypeError(f"{text!r}: {e}") from e


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budgets", type=float, nargs="+", default=[60, 120, 300])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--with-recipe", action="store_true", help="with --only-extra: keep the recipe row")
    parser.add_argument("--n", type=int, default=1000, help="samples for the FID (test split has 1,000)")
    parser.add_argument("--extra", nargs="*", default=[], choices=sorted(EXTRA))
    parser.add_argument("--only-extra", action="store_true", help="run only the --extra (and --config) rows")
    parser.add_argument("--config", action="append", default=[], type=variant, metavar="NAME=JSON",
                        help="a row for the recipe with these GANConfig changes, e.g. b96='{\"batch_size\": 96}'")
    args = parser.parse_args()

    clf = features.load_mnist_classifier()
    test = load_mnist("test").data[: args.n]
    test_features = features.extract(clf, test)
    runs = [("recipe (clusters, ch. 4)", recipes.MNIST_GAN_CONFIG),
            ("classic MLP (ch. 3)", recipes.CLASSIC_MLP_GAN_CONFIG)] + [EXTRA[e] for e in args.extra] + args.config
    if args.only_extra:
        runs = runs[:1] + runs[2:] if args.with_recipe else runs[2:]

    print(f"# {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, {platform.processor() or platform.machine()}")
    train_features = features.extract(clf, load_mnist("train").data[: args.n])
    real_fid = metrics.fid(train_features, test_features)
    real_p, real_r = metrics.precision_recall(test_features, train_features)
    print(f"# reference: {args.n} real training digits vs the test digits: FID {real_fid:.1f}, "
          f"precision {real_p:.3f}, recall {real_r:.3f}")
    print(f"{'budget s':>8}  {'model':32s} {'steps':>7} {'FID':>8} {'prec':>6} {'recall':>6}  "
          "load avg (1 min) before/after")
    table = []
    for budget in args.budgets:
        for seed in args.seeds:  # seeds inside configs: the configs of one seed run back to back
            for name, config in runs:
                load0 = os.getloadavg()[0]
                t0 = time.perf_counter()
                G = recipes.train_mnist_gan(budget, seed=seed, config=config, desc=f"{name} {budget:g}s")
                train_s = time.perf_counter() - t0
                fid = metrics.generator_fid(G, test_features, clf, n=args.n, seed=seed + 1)
                # the same samples again (same seed): is the gap quality (precision) or diversity (recall)?
                fake = G.sample(args.n, generator=torch.Generator().manual_seed(seed + 1))
                prec, rec = metrics.precision_recall(test_features, features.extract(clf, fake))
                steps = len(G.history["step"])
                table.append((budget, name, steps, fid))
                print(f"{budget:8g}  {name:32s} {steps:7d} {fid:8.1f} {prec:6.3f} {rec:6.3f}  "
                      f"{load0:.2f}/{os.getloadavg()[0]:.2f}"
                      f"  (trained {train_s:.0f} s, seed {seed})", flush=True)
    print(f"\nmean over seeds {args.seeds} (floor: real digits {real_fid:.1f}; target 1.2 x floor = "
          f"{1.2 * real_fid:.1f})")
    for budget in args.budgets:
        for name, _ in runs:
            rows = [(s, f) for b, n, s, f in table if b == budget and n == name]
            mean_fid = sum(f for _, f in rows) / len(rows)
            mean_steps = sum(s for s, _ in rows) / len(rows)
            print(f"{budget:8g}  {name:32s} {mean_steps:7.0f} {mean_fid:8.1f}  ({mean_fid / real_fid:.2f} x floor)")
    if args.only_extra:
        return
    print()
    for budget in args.budgets:
        rows = {}
        for b, name, _, fid in table:
            if b == budget:
                rows.setdefault(name, []).append(fid)
        rows = {name: sum(v) / len(v) for name, v in rows.items()}
        recipe, classic = rows[runs[0][0]], rows[runs[1][0]]
        verdict = "recipe better" if recipe < classic else "CLASSIC BETTER"
        print(f"{budget:g} s: recipe {recipe:.1f} vs classic {classic:.1f} -> {verdict}")


if __name__ == "__main__":
    main()
