"""Train the models the chapters train in full mode, and ship their weights with the package.

    python tools/train_weights.py               # every entry (minutes each on 2 CPU cores)
    python tools/train_weights.py ch07_mlp      # some of them

Each entry below trains its run exactly as its chapter does in full mode, writes the
finished run's weights (``train.export_weights``: no optimiser states) to
``course_lib/assets/weights/<name>.pt``, measures its metric, and records in
``course_lib/assets/weights/manifest.json``: the file, its SHA-256, this command, the run's
config and seed, and the metric with the tolerance ``tests/test_pretrained.py`` re-measures
it to. A chapter then loads these weights in the default mode when its run's config and seed
are the recorded ones (:mod:`course_lib.pretrained`), and trains otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from course_lib import data, features, metrics, pretrained, recipes, utils
from course_lib import vae as V
from course_lib.train import export_weights


@dataclass
class Entry:
    """How a chapter trains a model in full mode (to a checkpoint), and how it is measured."""

    chapter: str
    train: Callable[[Path], dict[str, nn.Module]]  # checkpoint path -> the trained modules, by name
    measure: Callable[[dict[str, nn.Module]], float]
    metric: str
    tolerance: float  # relative


# --- chapter 4: the DCGAN recipe ----------------------------------------------------------------

DCGAN_STEPS = 6000  # notebooks/ch04_dcgan_cgan.py: steps in full mode


def dcgan(checkpoint: Path) -> dict[str, nn.Module]:
    trainer = recipes.mnist_gan_trainer(seed=0, checkpoint=checkpoint, shipped="ch04_dcgan")
    trainer.run.resume()  # as the chapter does: a checkpoint, else the shipped weights if they match
    trainer.fit(data.load_mnist("train").data, batch_size=64, steps=DCGAN_STEPS,
                sample_every=DCGAN_STEPS // 5, desc="DCGAN")
    return {"generator": trainer.generator}


def gan_fid(modules: dict[str, nn.Module]) -> float:
    """Chapter 4's number: classifier-FID of 1,000 samples against the 1,000 test digits."""
    clf = features.load_mnist_classifier()
    reference = features.extract(clf, data.load_mnist("test").data[:1000])
    return metrics.generator_fid(modules["generator"].eval(), reference, clf, n=1000, seed=1)


# --- chapter 7: the MLP VAE ---------------------------------------------------------------------

MLP_VAE_STEPS = 20_000  # notebooks/ch07_vae_mnist.py: steps in full mode


def mlp_vae(checkpoint: Path) -> dict[str, nn.Module]:
    vae = V.mlp_vae(z_dim=20, hidden=(400,))
    V.train_vae(vae, data.load_mnist("train").data, checkpoint=checkpoint, shipped="ch07_mlp", lr=1e-3,
                batch_size=128, steps=MLP_VAE_STEPS, desc="MLP VAE")
    return {"model": vae}


def vae_elbo(modules: dict[str, nn.Module]) -> float:
    """Chapter 7's number: the test -ELBO in nats (one posterior sample, seeded)."""
    return V.evaluate(modules["model"], data.load_mnist("test").data)["neg_elbo"]


RECIPE_VAE_STEPS = 18_000  # notebooks/ch07_vae_mnist.py: the recipe's steps in full mode


def recipe_vae(checkpoint: Path) -> dict[str, nn.Module]:
    return {"model": recipes.train_mnist_vae(steps=RECIPE_VAE_STEPS, seed=0, checkpoint=checkpoint,
                                             shipped="ch07_recipe")}


ENTRIES: dict[str, Entry] = {
    "ch04_dcgan": Entry("ch04_dcgan_cgan", dcgan, gan_fid, "classifier-FID, 1000 samples vs 1000 test digits", 0.05),
    "ch07_mlp": Entry("ch07_vae_mnist", mlp_vae, vae_elbo, "test -ELBO in nats, 1000 test digits", 0.01),
    "ch07_recipe": Entry("ch07_vae_mnist", recipe_vae, vae_elbo, "test -ELBO in nats, 1000 test digits", 0.01),
}


def ship(name: str) -> dict:
    """Train entry ``name`` from scratch, write its weights, and return its manifest entry."""
    entry = ENTRIES[name]
    utils.seed_everything(0)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / f"{name}.pt"
        t0 = time.perf_counter()
        modules = entry.train(checkpoint)
        seconds = time.perf_counter() - t0
        state = utils.load_checkpoint(checkpoint)
    pretrained.WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    path = pretrained.WEIGHTS_DIR / f"{name}.pt"
    utils.save_checkpoint(path, export_weights(state))
    value = entry.measure(modules)
    print(f"{name}: {state['step']} steps in {seconds:.0f} s, {entry.metric} = {value:.3f}, "
          f"{path.stat().st_size / 1e6:.1f} MB")
    return {
        "file": path.name, "sha256": pretrained.sha256(path), "chapter": entry.chapter,
        "command": f"python tools/train_weights.py {name}", "config": state["config"], "seed": state["seed"],
        "steps": state["step"], "train_seconds": round(seconds, 1),
        "metric": {"name": entry.metric, "value": value, "tolerance": entry.tolerance},
        "torch": torch.__version__,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"entries to train (default: all of {sorted(ENTRIES)})")
    args = parser.parse_args(argv)
    os.environ["COURSE_FAST"] = "0"  # full sizes: the weights the default mode loads
    os.environ["COURSE_RETRAIN"] = "1"  # never start from the weights being replaced
    unknown = sorted(set(args.names) - set(ENTRIES))
    if unknown:
        sys.exit(f"unknown entries {unknown}; the entries are {sorted(ENTRIES)}")
    found = pretrained.manifest()
    for name in args.names or sorted(ENTRIES):
        found[name] = ship(name)
        text = json.dumps(dict(sorted(found.items())), indent=1, sort_keys=True) + "\n"
        utils.atomic_write(pretrained.MANIFEST, lambda f, t=text: f.write(t.encode()))


if __name__ == "__main__":
    main()
