"""Re-train the course's MNIST classifier and write its weights into course_lib/assets/.

    python tools/train_mnist_classifier.py            # the shipped recipe (80 epochs, seed 0)
    python tools/train_mnist_classifier.py --out /tmp/clf.pt --epochs 5

Trains :class:`course_lib.features.MNISTClassifier` on the embedded 4,000 MNIST
training digits (``course_lib.data.load_mnist()``) with the recipe in
:func:`course_lib.features.train_mnist_classifier`, measures accuracy on the
embedded 1,000-digit test split, and writes ``<out>`` (weights, atomically) and
``<out>.json`` (SHA-256 checksum, recipe, accuracy) that
:func:`course_lib.features.load_mnist_classifier` verifies. Seeded: a rerun with
the same torch version and thread count gives the same weights.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from course_lib.data import load_mnist
from course_lib.features import (
    MNIST_CLASSIFIER_WEIGHTS,
    accuracy,
    save_mnist_classifier,
    train_mnist_classifier,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(MNIST_CLASSIFIER_WEIGHTS))
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-accuracy", type=float, default=0.98,
                        help="refuse to write weights below this test accuracy")
    args = parser.parse_args()

    t0 = time.perf_counter()
    model, history = train_mnist_classifier(epochs=args.epochs, seed=args.seed)
    seconds = time.perf_counter() - t0
    train, test = load_mnist("train"), load_mnist("test")
    acc_test = accuracy(model, test.data, test.targets)
    acc_train = accuracy(model, train.data, train.targets)
    print(f"trained in {seconds:.0f} s; accuracy: train {acc_train:.4f}, test {acc_test:.4f}")
    if acc_test < args.min_accuracy:
        raise SystemExit(f"test accuracy {acc_test:.4f} < {args.min_accuracy}; weights NOT written")
    card = {
        "model": "course_lib.features.MNISTClassifier",
        "data": "embedded MNIST (course_lib.data.load_mnist): 4,000 train / 1,000 test",
        "recipe": "course_lib.features.train_mnist_classifier: Adam lr 2e-3 wd 1e-4, one-cycle, "
                  "batch 128, random rotation 10 deg / zoom 10% / shift 2 px, dropout 0.3",
        "epochs": args.epochs,
        "seed": args.seed,
        "test_accuracy": round(acc_test, 4),
        "train_accuracy": round(acc_train, 4),
        "final_loss": round(sum(history["loss"][-30:]) / 30, 4),
        "train_seconds": round(seconds, 1),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "command": "python tools/train_mnist_classifier.py"
                   + (f" --epochs {args.epochs}" if args.epochs != 80 else "")
                   + (f" --seed {args.seed}" if args.seed else ""),
    }
    path = save_mnist_classifier(model, args.out, card)
    print(f"wrote {path} and {path.with_suffix('.json')}")


if __name__ == "__main__":
    main()
