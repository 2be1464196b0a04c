"""Benchmark: the course's denoisers against BM3D and scikit-image's denoisers (chapter 11).

    python benchmarks/bench_restoration.py                      # sigma 15, 25, 50; 60, 150, 300 s
    python benchmarks/bench_restoration.py --sigmas 25 --seconds 300
    python benchmarks/bench_restoration.py --seconds --shipped  # no training: the shipped denoiser
    python benchmarks/bench_restoration.py --tune               # choose TV's weight on training photos
    python benchmarks/bench_restoration.py --save course_lib/assets/bench/restoration.json
    python benchmarks/bench_restoration.py --sigmas 15 50 --seconds 300 --save ... --append

Every method denoises the same noisy versions of the four held-out grey photos
(``data.load_photos("test")``: camera, astronaut, coffee, chelsea, whole, cut to a multiple of
8), with the true noise level given. Columns: mean PSNR and SSIM over the photos, and the wall
time of denoising all four. Classical methods: wavelet (BayesShrink), total variation
(Chambolle; weight ``restoration.TV_WEIGHT`` times σ, chosen on the training photos by
``--tune``), non-local means (scikit-image's documented h = 0.8σ) and BM3D (the ``bm3d``
package, free for non-commercial use only). Learned: ``recipes.train_denoiser(seconds, sigma)``
trained from scratch for each budget and σ on the 16 training photos (no test photo is ever a
training patch), and with ``--shipped`` the course's shipped denoiser
(``restoration.pretrained_denoiser``, one network for every σ up to 55/255).

Targets (chapter 11) at σ = 25: the recipe at 300 s at least 0.5 dB above the best scikit-image
denoiser; the shipped denoiser within 0.2 dB of BM3D or above it, and faster than BM3D. For
reference (other images and budgets, not a column of the table): DnCNN beats BM3D by 0.5-0.7 dB
on BSD68 and Set12 after hours of GPU training (Zhang et al., 2017).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from course_lib import data, recipes, utils
from course_lib import restoration as R


def photos(split: str = "test", side: int | None = None) -> dict[str, torch.Tensor]:
    """Grey photos as (1, 1, H, W), cut to a multiple of 8 (or ``side`` x ``side`` centre crops)."""
    out = {}
    for k, v in data.load_photos(split).items():
        h, w = v.shape[-2:]
        if side is not None:
            if min(h, w) < side:
                continue
            t, s = (h - side) // 2, (w - side) // 2
            out[k] = v[None, :, t : t + side, s : s + side]
        else:
            out[k] = v[None, :, : h - h % 8, : w - w % 8]
    return out


def noisy(sigma: float):
    return lambda x, g: R.add_noise(x, sigma, g)


def tune_tv() -> None:
    """Print the PSNR of TV denoising on crops of the training photos for weights c * sigma."""
    crops = photos("train", side=256)
    for level in (15, 25, 50):
        sigma = level / 255
        scores = {c: R.evaluate(lambda y, c=c, s=sigma: R.denoise_tv(y, s, weight=c * s), crops, noisy(sigma))["psnr"]
                  for c in (0.3, 0.5, 0.7, 0.9, 1.1, 1.4, 1.8)}
        best = max(scores, key=scores.get)
        print(f"sigma {level}: TV weight / sigma -> mean PSNR on {len(crops)} training crops: "
              + ", ".join(f"{c}: {v:.2f}" for c, v in scores.items()) + f"; best {best}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sigmas", nargs="*", type=float, default=[15, 25, 50], help="noise levels in 0-255 units")
    parser.add_argument("--seconds", nargs="*", type=float, default=[60.0, 150.0, 300.0])
    parser.add_argument("--shipped", action="store_true", help="also the shipped denoiser")
    parser.add_argument("--no-bm3d", action="store_true")
    parser.add_argument("--tune", action="store_true", help="only choose TV's weight on the training photos")
    parser.add_argument("--save", type=Path, default=None, help="write the table as JSON (chapter 11 prints it)")
    parser.add_argument("--append", action="store_true", help="add the rows to those already in --save")
    args = parser.parse_args()
    if args.tune:
        tune_tv()
        return
    machine = (f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
               f"{platform.processor() or platform.machine()}, bf16 autocast for training: {utils.bf16_is_fast('cpu')}")
    print(machine)
    test = photos()
    rows = []

    def record(level: float, method: str, restore, extra: dict | None = None) -> None:
        r = R.evaluate(restore, test, noisy(level / 255))
        row = {"sigma": level, "method": method, "psnr": round(r["psnr"], 3), "ssim": round(r["ssim"], 4),
               "seconds": round(r["seconds"], 2), **(extra or {})}
        rows.append(row)
        print(f"sigma {level:4.0f}  {method:28s} PSNR {row['psnr']:6.2f}  SSIM {row['ssim']:.4f}  "
              f"{row['seconds']:6.1f} s" + (f"  ({extra})" if extra else ""), flush=True)

    for level in args.sigmas:
        sigma = level / 255
        for name, fn in R.CLASSICAL_DENOISERS.items():
            if name == "bm3d" and args.no_bm3d:
                continue
            record(level, name, lambda y, fn=fn, s=sigma: fn(y, s))
        if args.shipped:
            model = R.pretrained_denoiser(sigma)
            record(level, "shipped denoiser", model)
        for seconds in args.seconds:
            t0 = time.perf_counter()
            model = recipes.train_denoiser(seconds, sigma=sigma, seed=0, desc=f"recipe {seconds:.0f} s")
            record(level, f"recipe, {seconds:.0f} s", model,
                   {"steps": model.run.step, "train_wall": round(time.perf_counter() - t0, 1)})
    if args.save:
        if args.append and args.save.is_file():
            rows = json.loads(args.save.read_text())["rows"] + rows
        text = json.dumps({"note": "python benchmarks/bench_restoration.py; 4 held-out photos, PSNR/SSIM means, "
                                   "seconds = wall time to denoise all four", "machine": machine, "rows": rows}, indent=1) + "\n"
        utils.atomic_write(args.save, lambda f: f.write(text.encode()))
        print(f"wrote {args.save}")


if __name__ == "__main__":
    main()
