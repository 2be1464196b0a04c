"""Chapter 12 benchmark: translators from scikit-learn's digits to MNIST's style.

Each method trains for the given seconds on the digits' ``train`` split and MNIST's training
digits (labels unused); all are scored on the 500 held-out digits (``digits_as_mnist("test")``):
the fraction read as the true label by scikit-learn's SVC fitted on MNIST (the independent
reader), by the course's CNN, and the classifier-FID against the held-out MNIST test digits.

    python benchmarks/bench_translation.py --methods paired cyclegan --seconds 150 300

Each trained ``paired`` run is also scored as the course's translator applies it: sharpened
(:func:`course_lib.self_ensemble.sharpness_for_entropy`) and as a shift self-ensemble
(:class:`course_lib.self_ensemble.SharpenedEnsemble`). ``--shipped`` does that for the shipped
``ch12_recipe`` weights without training, on the held-out digits and on the scikit-learn
training digits (which the translator saw unlabelled, and on which no setting was chosen), and
prints the sharpness calibrated on 256 training digits and on all of them::

    python benchmarks/bench_translation.py --shipped

``--pix2pix`` instead compares pix2pix with its L1-only baseline on the paired task (4x4 block
averages to 28x28 digits, :func:`course_lib.translation.paired_test`; ``--config '{"factor": 4}'``
for 7x7): L1 error and classifier-FID on held-out digits.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from course_lib import data, recipes
from course_lib import self_ensemble as SE
from course_lib import translation as T


def applied(net: torch.nn.Module, calibration: int = recipes.DIGITS_TO_MNIST_CALIBRATION
            ) -> dict[str, torch.nn.Module]:
    """A trained translator network as is, sharpened, and as the course's translator applies it."""
    sources, mnist = data.digits_as_mnist("train")[0][:calibration], data.load_mnist("train").data
    out = {"network alone": net}
    for name, radius in (("sharpened", 0), ("shift-ensembled, sharpened", 1)):
        out[name] = SE.SharpenedEnsemble(net, radius)
        out[name].calibrate(sources, mnist)
    return out


def shipped() -> None:
    net = recipes.train_digits_to_mnist(seconds=300, shipped="ch12_recipe", radius=0, calibration=0).model
    train = data.digits_as_mnist("train")
    models = applied(net)
    k_all = SE.SharpenedEnsemble(net, 1).calibrate(train[0], data.load_mnist("train").data)
    print(f"sharpness of the shift ensemble, calibrated on {recipes.DIGITS_TO_MNIST_CALIBRATION} "
          f"training digits: {float(models['shift-ensembled, sharpened'].sharpness):.3f}; "
          f"on all {len(train[0])}: {k_all:.3f}")
    print(f"{'ch12_recipe':28s} {'split':>5s} {'k':>5s} {'svc':>6s} {'cnn':>6s} {'fid':>7s}")
    for split, (x, y) in (("test", data.digits_as_mnist("test")), ("train", train)):
        for name, model in models.items():
            r = T.evaluate(T.translate(model, x), y)
            k = float(getattr(model, "sharpness", 1.0))
            print(f"{name:28s} {split:>5s} {k:5.2f} {r['svc']:6.3f} {r['cnn']:6.3f} {r['fid']:7.2f}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", nargs="+", default=["paired"], choices=T.METHODS)
    p.add_argument("--pix2pix", action="store_true", help="pix2pix against L1 only, on the paired task")
    p.add_argument("--seconds", nargs="+", type=float, default=[300.0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", type=json.loads, default=None, help="TranslatorConfig fields as JSON")
    p.add_argument("--shipped", action="store_true", help="score the shipped ch12_recipe, applied three ways")
    args = p.parse_args()
    torch.set_num_threads(2)
    if args.shipped:
        return shipped()
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
            steps, took = len(G.history["step"]), time.time() - t0
            models = applied(G) if method == "paired" else {"": G}
            for name, model in models.items():
                r = T.evaluate(T.translate(model, x), y)
                rows.append((f"{method} {name}", seconds, steps, r))
                print(f"{method:14s} {seconds:7.0f} {steps:6d} {r['svc']:6.3f} {r['cnn']:6.3f} {r['fid']:7.2f}"
                      f"   {name or ''} ({took:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
