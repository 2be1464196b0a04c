"""Chapter 12 benchmark: translators from scikit-learn's digits to MNIST's style.

Each method trains for the given seconds on the digits' ``train`` split and MNIST's training
digits (labels unused); all are scored on the 500 held-out digits (``digits_as_mnist("test")``):
the fraction read as the true label by scikit-learn's SVC fitted on MNIST (the independent
reader), by the course's CNN, and the classifier-FID against the held-out MNIST test digits.

    python benchmarks/bench_translation.py --methods paired cyclegan --seconds 150 300

``--pix2pix`` instead compares pix2pix with its L1-only baseline on the paired task (4x4 block
averages to 28x28 digits, :func:`course_lib.translation.paired_test`; ``--config '{"factor": 4}'``
for 7x7): L1 error and classifier-FID on held-out digits.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from course_lib import data
from course_lib import translation as T


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", nargs="+", default=["paired"], choices=T.METHODS)
    p.add_argument("--pix2pix", action="store_true", help="pix2pix against L1 only, on the paired task")
    p.add_argument("--seconds", nargs="+", type=float, default=[300.0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", type=json.loads, default=None, help="TranslatorConfig fields as JSON")
    args = p.parse_args()
    torch.set_num_threads(2)
    if args.pix2pix:
        print(f"{'method':14s} {'seconds':>7s} {'steps':>6s} {'l1':>7s} {'fid':>7s}")
        for seconds in args.seconds:
            for method in ("paired", "pix2pix"):
                cfg = {"pairs": "low-res", **(args.config or {}), "paired_loss": "l1"}
                G = T.train_translator(method, seconds=seconds, seed=args.seed, config=cfg)
                r = T.paired_test(G, cfg["pairs"], factor=T.translator_config(cfg).factor)
                name = "L1 only" if method == "paired" else method
                print(f"{name:14s} {seconds:7.0f} {len(G.history['step']):6d} {r['l1']:7.4f} {r['fid']:7.2f}",
                      flush=True)
        return
    x, y = data.digits_as_mnist("test")
    T.mnist_svc()  # fitted before any clock starts
    rows = [("untranslated", 0.0, 0, T.evaluate(x, y))]
    print(f"{'method':14s} {'seconds':>7s} {'steps':>6s} {'svc':>6s} {'cnn':>6s} {'fid':>7s}")
    print(f"{'untranslated':14s} {0:7.0f} {0:6d} {rows[0][3]['svc']:6.3f} {rows[0][3]['cnn']:6.3f} {rows[0][3]['fid']:7.2f}")
    for seconds in args.seconds:
        for method in args.methods:
            t0 = time.time()
            G = T.train_translator(method, seconds=seconds, seed=args.seed, config=args.config)
            r = T.evaluate(T.translate(G, x), y)
            steps = len(G.history["step"])
            rows.append((method, seconds, steps, r))
            print(f"{method:14s} {seconds:7.0f} {steps:6d} {r['svc']:6.3f} {r['cnn']:6.3f} {r['fid']:7.2f}"
                  f"   ({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
