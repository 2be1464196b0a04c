"""The command line of the recipes (chapter 13).

    python -m course_lib.run RECIPE (--seconds S | --steps N) [--seed K] [--data NAME] [--root DIR]
                             [--out DIR] [--resume] [--amp] [--tensorboard DIR] [--batch-size B]

RECIPE is one of :data:`RECIPES`. ``--out DIR`` (default ``runs/RECIPE``) holds the run's
checkpoint ``last.pt`` (written every ``--save-every`` seconds and at the end: everything
:class:`course_lib.train.Run` needs to continue exactly) and, at the end, ``final.pt``: a
checkpoint that loads with ``torch.load(path, weights_only=True)`` and whose ``"model"`` entry is
the trained model's ``state_dict`` (for the GAN recipe, its cluster-conditioned sampler's,
:class:`course_lib.gan_clusters.ClusterConditioned`: the generator's weights under ``generator.``
and the clusters' shares under ``weights``; for the translator, its
:class:`course_lib.self_ensemble.SharpenedEnsemble`'s: the U-Net under ``model.`` and the
calibrated ``sharpness``; ``"image_shape"`` is the (C, H, W) it was trained on). ``--resume`` continues the run in ``DIR``; without it an existing run there is
an error, never overwritten.

The same command under ``torchrun --nproc_per_node=N -m course_lib.run ...`` trains in N
processes with ``DistributedDataParallel`` (gloo on a CPU, NCCL on CUDA): ``--batch-size`` is the
*global* batch, each process takes 1/N of it, and the updates are those of one process.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import data as DATA
from . import recipes
from .config import config_dict
from .scaling import World, close_world, init_world
from .tracking import log_to
from .train import saving_every
from .utils import save_checkpoint

FINAL_FORMAT = "course_lib.final/1"
DATASETS = ("mnist", "mnist-full", "fashion", "cifar10")


def load_data(name: str, root: str | os.PathLike | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Training images ``(N, C, H, W)`` in [0, 1] and labels ``(N,)`` of ``--data NAME``: the
    embedded 4,000 MNIST digits (``mnist``), or a torchvision folder ``root`` holding MNIST
    (``mnist-full``: 60,000), FashionMNIST (``fashion``) or CIFAR-10 (``cifar10``, (3, 32, 32))."""
    if name == "mnist":
        train = DATA.load_mnist("train")
        return train.data, train.targets
    if name not in DATASETS:
        raise ValueError(f"--data {name}: choose one of {', '.join(DATASETS)}")
    if root is None:
        raise ValueError(f"--data {name} reads a torchvision folder: give it with --root DIR "
                         "(nothing is downloaded)")
    loader = {"mnist-full": DATA.load_mnist, "fashion": DATA.load_fashion_mnist,
              "cifar10": DATA.load_cifar10}[name]
    ds = loader("train", root=root)
    raw = torch.as_tensor(ds.data)  # (N, 28, 28) uint8, or (N, 32, 32, 3) for CIFAR-10
    x = raw.unsqueeze(1) if raw.ndim == 3 else raw.permute(0, 3, 1, 2)
    return x.float().div(255).contiguous(), torch.as_tensor(ds.targets).long()


def _batch(args, cfg: dict) -> dict:
    return cfg if args.batch_size is None else {**cfg, "batch_size": args.batch_size}


def _vae(args, world: World, data, checkpoint: Path) -> tuple[nn.Module, dict]:
    cfg = recipes.vae_config(_batch(args, {"bf16": args.amp}))
    vae = recipes.train_mnist_vae(args.seconds, args.seed, steps=args.steps, images=data[0],
                                  checkpoint=checkpoint, config=cfg, device=world.device, world=world)
    return vae, config_dict(cfg)


def _gan(args, world: World, data, checkpoint: Path) -> tuple[nn.Module, dict]:
    cfg = recipes.gan_config(_batch(args, {}))
    G = recipes.train_mnist_gan(args.seconds, args.seed, steps=args.steps, images=data[0], config=cfg,
                                checkpoint=checkpoint, sample_every=500, device=world.device)
    return G, config_dict(cfg)


def _robust(args, world: World, data, checkpoint: Path) -> tuple[nn.Module, dict]:
    from . import robust as R

    cfg = R.robust_config(_batch(args, {"bf16": args.amp}), base=recipes.ROBUST_MNIST_CONFIG)
    model = R.train_robust(args.seconds, args.seed, steps=args.steps, config=cfg, images=data[0],
                           labels=data[1], checkpoint=checkpoint)
    return model, config_dict(cfg)


def _denoiser(args, world: World, data, checkpoint: Path) -> tuple[nn.Module, dict]:
    from . import denoisers as D

    cfg = D.denoiser_config(_batch(args, {"bf16": args.amp}), base=recipes.DENOISER_CONFIG)
    model = recipes.train_denoiser(args.seconds, seed=args.seed, steps=args.steps, config=cfg,
                                   checkpoint=checkpoint)
    return model, config_dict(cfg)


def _translator(args, world: World, data, checkpoint: Path) -> tuple[nn.Module, dict]:
    from . import translation as TR

    cfg = TR.translator_config(_batch(args, {"bf16": args.amp}), base=recipes.DIGITS_TO_MNIST_CONFIG)
    model = recipes.train_digits_to_mnist(args.seconds, args.seed, steps=args.steps, config=cfg,
                                          checkpoint=checkpoint)
    return model, config_dict(cfg)


Recipe = Callable[[Any, World, Any, Path], tuple[nn.Module, dict]]
# name: (train, the --data it accepts, runs under torchrun, has --amp)
RECIPES: dict[str, tuple[Recipe, tuple[str, ...], bool, bool]] = {
    "vae": (_vae, ("mnist", "mnist-full", "fashion", "cifar10"), True, True),
    "gan": (_gan, ("mnist", "mnist-full", "fashion"), False, False),
    "robust": (_robust, ("mnist", "mnist-full", "fashion"), False, True),
    "denoiser": (_denoiser, ("photos",), False, True),
    "translator": (_translator, ("digits",), False, True),
}
"""The recipes of the command line. The denoiser trains on the embedded photos and the
translator on pairs made from the embedded MNIST digits: ``--data`` does not apply to them."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m course_lib.run", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", choices=sorted(RECIPES))
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--seconds", type=float, help="training time (not repeatable exactly)")
    budget.add_argument("--steps", type=int, help="optimiser steps (repeatable bit for bit on a CPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=None, help=f"one of {', '.join(DATASETS)} (default: the embedded data)")
    p.add_argument("--root", default=None, help="a torchvision dataset folder (for mnist-full, fashion, cifar10)")
    p.add_argument("--out", default=None, help="the run's folder (default runs/RECIPE)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--amp", action="store_true",
                   help="mixed precision: bfloat16 on a CPU, float16 with loss scaling on CUDA")
    p.add_argument("--tensorboard", default=None, metavar="DIR", help="write TensorBoard logs to DIR")
    p.add_argument("--batch-size", type=int, default=None, help="the global batch (default: the recipe's)")
    p.add_argument("--save-every", type=float, default=30.0, help="seconds between checkpoints")
    return p


def main(argv: list[str] | None = None) -> Path:
    """Run the command line; return the path of ``final.pt``. Bad arguments exit with a message
    (status 2) before anything is trained or written."""
    p = parser()
    args = p.parse_args(argv)
    train, accepts, parallel, has_amp = RECIPES[args.recipe]
    if args.data is not None and args.data not in accepts:
        p.error(f"{args.recipe} trains on {' or '.join(accepts)}, not --data {args.data}")
    if args.data not in (None, "mnist") and args.root is None:
        p.error(f"--data {args.data} reads a torchvision folder: give it with --root DIR (nothing is downloaded)")
    if args.amp and not has_amp:
        p.error(f"{args.recipe} has no mixed-precision path: leave out --amp")
    if args.steps is not None and args.steps < 1 or args.seconds is not None and not args.seconds > 0:
        p.error("give a positive budget: --steps N >= 1 or --seconds S > 0")
    if args.batch_size is not None and args.batch_size < 1:
        p.error(f"--batch-size {args.batch_size}: give a positive global batch")
    out = Path(args.out or Path("runs") / args.recipe)
    last, final = out / "last.pt", out / "final.pt"
    if last.exists() and not args.resume:
        p.error(f"{out} holds a run: add --resume to continue it, or choose another --out")
    if args.resume and not last.exists():
        p.error(f"--resume: no run to continue in {out} (no last.pt)")
    world = init_world()
    try:
        if world.distributed and not parallel:
            names = [k for k, v in RECIPES.items() if v[2]]
            raise SystemExit(f"{args.recipe} runs in one process; under torchrun: {', '.join(names)}")
        if world.distributed and args.batch_size is not None and args.batch_size % world.size:
            raise SystemExit(f"--batch-size {args.batch_size} does not split between {world.size} processes")
        data = load_data(args.data or "mnist", args.root) if accepts[0] == "mnist" else None
        if world.is_main:
            out.mkdir(parents=True, exist_ok=True)
        settings = {"recipe": args.recipe, "data": args.data or accepts[0], "seed": args.seed,
                    "steps": args.steps, "seconds": args.seconds, "world_size": world.size}
        board = log_to(args.tensorboard, settings) if args.tensorboard and world.is_main else nullcontext()
        with board, saving_every(args.save_every):
            model, cfg = train(args, world, data, last)
        if world.is_main:
            shape = [] if data is None else list(data[0].shape[1:])
            state = {"format": FINAL_FORMAT, **settings, "config": cfg, "image_shape": shape,
                     "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                     "history": {k: list(map(float, v)) for k, v in getattr(model, "history", {}).items()}}
            save_checkpoint(final, state)
            print(f"{args.recipe}: trained, saved {final}", file=sys.stderr)
    finally:
        close_world(world)
    return final


if __name__ == "__main__":
    main()
