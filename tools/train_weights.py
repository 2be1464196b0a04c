"""Train the models the chapters train in full mode, and ship their weights with the package.

    python tools/train_weights.py               # every entry (an hour or so on 2 CPU cores)
    python tools/train_weights.py ch07_z2       # some of them (their chapters run once each)

The training is the chapter's own: the tool executes the chapter's notebook in full mode with
``COURSE_RETRAIN=<the names asked for>`` and ``COURSE_SHIP_DIR`` set, so each named run
(``shipped="..."`` in the notebook) trains from scratch and writes its finished weights there
(``pretrained.export_weights``: no optimiser states); runs not asked for load their shipped weights.
The tool then copies each file to ``course_lib/assets/weights/<name>.pt``, loads it into the
entry's model (below), measures the entry's metric, and records in
``course_lib/assets/weights/manifest.json``: the file, its SHA-256, this command, the run's
config, seed and steps, its training time and the metric with the tolerance
``tests/test_pretrained.py`` re-measures it to. The notebook's own asserts check the full-mode
results on the way.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from course_lib import (
    attacks,
    data,
    denoisers,
    features,
    metrics,
    pretrained,
    questions,
    recipes,
    robust,
    toy_gan,
    utils,
    vae_bugs,
)
from course_lib import diffusion_train as DT
from course_lib import restoration as R
from course_lib import translation as TR
from course_lib import vae as V
from course_lib.pretrained import export_weights

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Entry:
    """A shipped run: its chapter, its model(s) as the chapter builds them, and its metric."""

    chapter: str
    build: Callable[[], dict[str, nn.Module]]  # the run's modules, by the names the run gives them
    measure: Callable[[dict[str, nn.Module]], float]
    metric: str
    tolerance: float  # relative


def load(name: str, entry: Entry | None = None) -> dict[str, nn.Module]:
    """The shipped run ``name`` loaded into its entry's modules (``weights_only=True``); where
    the run keeps an average of a module's weights (EMA), the average is what is loaded."""
    entry = entry or ENTRIES[name]
    state = utils.load_checkpoint(pretrained.WEIGHTS_DIR / f"{name}.pt")
    modules = entry.build()
    for key, module in modules.items():
        module.load_state_dict(state["ema"].get(key, state["modules"][key]))
        module.eval()
    return modules


# --- metrics ------------------------------------------------------------------------------------

def _test() -> torch.Tensor:
    return data.load_mnist("test").data  # (1000, 1, 28, 28) in [0, 1]


def gan_fid(modules: dict[str, nn.Module], n_classes: int = 0) -> float:
    """Chapter 4's number: classifier-FID of 1,000 samples against the 1,000 test digits."""
    clf = features.load_mnist_classifier()
    labels = torch.arange(1000) % 10 if n_classes else None
    return metrics.generator_fid(modules["generator"], features.extract(clf, _test()), clf, n=1000,
                                 seed=1, labels=labels)


def recipe_gan_fid(modules: dict[str, nn.Module]) -> float:
    """The GAN recipe's number: its generator sampled with the shares of the clusters it was
    trained on, which the shipped run keeps (``extra["clusters"]``)."""
    from course_lib.gan_clusters import ClusterConditioned

    clusters = utils.load_checkpoint(pretrained.WEIGHTS_DIR / "ch04_recipe.pt")["extra"]["clusters"].long()
    counts = torch.bincount(clusters, minlength=recipes.MNIST_GAN_CONFIG.clusters)
    return gan_fid({"generator": ClusterConditioned(modules["generator"], counts).eval()})


def neg_elbo(modules: dict[str, nn.Module], x: Callable[[], torch.Tensor] = _test) -> float:
    """Test -ELBO in nats (one posterior sample, seeded; chapter 7)."""
    return V.evaluate(modules["model"], x())["neg_elbo"]


def _binarised_test() -> torch.Tensor:
    return torch.bernoulli(_test(), generator=torch.Generator().manual_seed(123))


ELBO = "test -ELBO in nats, 1000 test digits"
ENTRIES: dict[str, Entry] = {
    "ch04_dcgan": Entry("ch04_dcgan_cgan", lambda: dict(zip(("generator", "discriminator"), recipes.mnist_gan_models(recipes.DCGAN_CONFIG))),
                        gan_fid, "classifier-FID, 1000 samples vs 1000 test digits", 0.05),
    "ch04_recipe": Entry("ch04_dcgan_cgan",
                         lambda: dict(zip(("generator", "discriminator"), recipes.mnist_gan_models())),
                         recipe_gan_fid, "classifier-FID, 1000 samples vs 1000 test digits", 0.05),
    "ch04_cgan": Entry("ch04_dcgan_cgan",
                       lambda: dict(zip(("generator", "discriminator"), recipes.mnist_gan_models(n_classes=10))),
                       lambda m: gan_fid(m, n_classes=10), "classifier-FID, 1000 class-balanced samples vs 1000 test digits", 0.05),
    "ch07_mlp": Entry("ch07_vae_mnist", lambda: {"model": V.mlp_vae(z_dim=20, hidden=(400,))}, neg_elbo, ELBO, 0.01),
    "ch07_recipe": Entry("ch07_vae_mnist", lambda: {"model": recipes.mnist_vae()}, neg_elbo, ELBO, 0.01),
    "ch07_pixelvae": Entry("ch07_vae_mnist", lambda: {"model": recipes.mnist_vae(recipes.MNIST_PIXELVAE_CONFIG)},
                           neg_elbo, ELBO, 0.01),
    "ch07_z2": Entry("ch07_vae_mnist", lambda: {"model": V.mlp_vae(z_dim=2, hidden=(512,))}, neg_elbo, ELBO, 0.01),
    "ch07_binarised": Entry("ch07_vae_mnist", lambda: {"model": V.mlp_vae(z_dim=50, hidden=(200, 200), act=nn.Tanh)},
                            lambda m: neg_elbo(m, _binarised_test), "test -ELBO in nats, 1000 binarised test digits", 0.01),
    "ch07_grey": Entry("ch07_vae_mnist", lambda: {"model": V.mlp_vae(z_dim=50, hidden=(200, 200), act=nn.Tanh)},
                       neg_elbo, ELBO, 0.01),
    "ch07_nosample": Entry("ch07_vae_mnist", lambda: {"model": V.mlp_vae(z_dim=20, hidden=(400,))}, neg_elbo, ELBO, 0.01),
}


# --- chapter 8 -----------------------------------------------------------------------------------

def _small_test() -> torch.Tensor:
    return F.avg_pool2d(_test(), 2)  # (1000, 1, 14, 14): chapter 8's posterior-collapse digits


def _test_faces() -> torch.Tensor:
    faces = data.load_faces().data  # (100, 1, 25, 25)
    return faces[torch.randperm(100, generator=torch.Generator().manual_seed(0))[90:]]


def _collapse_vae(gru: bool) -> dict[str, nn.Module]:
    decoder = V.RowGRUDecoder((1, 14, 14), 16, 128) if gru else V.MLPDecoder((1, 14, 14), 16, (256,))
    return {"model": V.VAE(V.MLPEncoder((1, 14, 14), 16, (256,)), decoder)}


def _cvae_elbo(modules: dict[str, nn.Module]) -> float:
    test = data.load_mnist("test")
    return V.evaluate(modules["model"], test.data, test.targets)["neg_elbo"]


DEEP = (128,) * 8
CH08 = {
    **{f"ch08_beta_{b}": Entry("ch08_vae_variants", lambda: {"model": V.mlp_vae(z_dim=16, hidden=(200,))},
                               neg_elbo, ELBO, 0.01) for b in ("0_25", "1", "4", "16")},
    "ch08_cvae": Entry("ch08_vae_variants", lambda: {"model": V.mlp_vae(z_dim=8, hidden=(256,), n_classes=10)},
                       _cvae_elbo, "test -ELBO in nats given the labels, 1000 test digits", 0.01),
    **{f"ch08_pc_{name}": Entry("ch08_vae_variants", lambda gru=gru: _collapse_vae(gru),
                                lambda m: neg_elbo(m, _small_test), "test -ELBO in nats, 1000 test digits at 14x14", 0.01)
       for name, gru in (("factorised", False), ("gru", True), ("warmup", True), ("free_bits", True))},
    "ch08_deep_relu": Entry("ch08_vae_variants", lambda: {"model": V.mlp_vae(16, DEEP)}, neg_elbo, ELBO, 0.01),
    "ch08_deep_leaky": Entry("ch08_vae_variants", lambda: {"model": V.mlp_vae(16, DEEP, act=lambda: nn.LeakyReLU(0.2))},
                             neg_elbo, ELBO, 0.01),
    "ch08_deep_residual": Entry("ch08_vae_variants", lambda: {"model": V.mlp_vae(16, DEEP, residual=True)},
                                neg_elbo, ELBO, 0.01),
    **{f"ch08_clip_{name}": Entry("ch08_vae_variants", lambda: {"model": V.mlp_vae(20, (200,))}, neg_elbo, ELBO, 0.01)
       for name in ("sgd_50", "adam_0", "adam_50")},
    "ch08_faces": Entry("ch08_vae_variants",
                        lambda: {"model": V.conv_vae(z_dim=16, channels=(16, 32), hidden=128, shape=(1, 25, 25))},
                        lambda m: neg_elbo(m, _test_faces), "test -ELBO in nats, the 10 held-out faces", 0.01),
}
ENTRIES.update(CH08)


def _toy_models(method: str) -> dict[str, nn.Module]:
    G, D = toy_gan.build_models(toy_gan.METHODS[method])
    return {"generator": G, "discriminator": D}


def _toy_high_quality(kind: str) -> Callable[[dict[str, nn.Module]], float]:
    def measure(modules: dict[str, nn.Module]) -> float:
        x = modules["generator"].eval().sample(2500, torch.Generator().manual_seed(10_000))
        mix = data.toy_mixture(kind, 1)
        return metrics.mode_coverage(x, mix.centres, mix.std).high_quality

    return measure


ENTRIES.update({
    f"ch05_{method}_{kind}": Entry("ch05_mode_collapse", lambda method=method: _toy_models(method),
                                   _toy_high_quality(kind), "high-quality fraction of 2500 samples", 0.02)
    for method in ("recipe",) for kind in ("ring", "grid")  # the vanilla runs train in the chapter
})


# --- chapter 10 ----------------------------------------------------------------------------------

def _robust_pgd40(modules: dict[str, nn.Module]) -> float:
    """Chapter 10's number: accuracy under PGD-40 (step 0.01, random start, seeded) at eps 0.3 on
    the first 500 embedded test digits."""
    test = data.load_mnist("test")
    x, y = test.data[:500], test.targets[:500]
    attack = functools.partial(attacks.pgd, eps=0.3, alpha=0.01, steps=40, generator=torch.Generator().manual_seed(0))
    return attacks.robust_accuracy(modules["model"], x, y, attack)


PGD40 = "accuracy under PGD-40 at eps 0.3, 500 test digits"
ENTRIES.update({
    f"ch10_{name}": Entry("ch10_adversarial",
                          lambda c=config: {"model": robust.robust_model(robust.robust_config(c))},
                          _robust_pgd40, PGD40, 0.02)
    for name, config in robust.CHAPTER_RUNS.items()
})
ENTRIES["ch10_recipe"] = Entry("ch10_adversarial", lambda: {"model": robust.robust_model(recipes.ROBUST_MNIST_CONFIG)},
                               _robust_pgd40, PGD40, 0.02)


# --- chapter 11 -----------------------------------------------------------------------------------

def _photos() -> dict[str, torch.Tensor]:
    """Chapter 11's four held-out test photos, cut to a multiple of 8, each (1, 1, H, W)."""
    return {k: v[None, :, : v.shape[-2] // 8 * 8, : v.shape[-1] // 8 * 8] for k, v in data.load_photos("test").items()}


def _denoise_psnr(modules: dict[str, nn.Module]) -> float:
    model = modules["model"]
    return R.evaluate(lambda y: model(y, 25 / 255), _photos(), lambda x, g: R.add_noise(x, 25 / 255, g))["psnr"]


def _sr_psnr(modules: dict[str, nn.Module]) -> float:
    return R.evaluate(modules["model"], _photos(), lambda x, g: R.Downsample(4)(x))["psnr"]


def _inpaint_psnr(modules: dict[str, nn.Module]) -> float:
    masks = {}

    def observe(x, g):
        masks["m"] = R.random_mask(x.shape, 0.2, g)
        return masks["m"] * x

    return R.evaluate(lambda y: modules["model"](y, masks["m"]), _photos(), observe)["psnr"]


DENOISE = "PSNR in dB at sigma 25/255, chapter 11's 4 test photos"
ENTRIES.update({
    f"ch11_{key}": Entry("ch11_restoration",
                         lambda c=cfg: {"model": denoisers.build_denoiser(
                             denoisers.denoiser_config(c, base=recipes.DENOISER_CONFIG))},
                         _denoise_psnr, DENOISE, 0.002)
    for key, cfg in denoisers.CHAPTER_RUNS.items()
})
ENTRIES["ch11_denoiser"] = Entry("ch11_restoration",
                                 lambda: {"model": denoisers.build_denoiser(recipes.SHIPPED_DENOISER_CONFIG)},
                                 _denoise_psnr, DENOISE, 0.002)
ENTRIES["ch11_espcn"] = Entry("ch11_restoration", lambda: {"model": denoisers.ESPCN(4)}, _sr_psnr,
                              "PSNR in dB of x4 super-resolution (area downsampling), chapter 11's 4 test photos", 0.002)
ENTRIES["ch11_inpainter"] = Entry("ch11_restoration", lambda: {"model": denoisers.Inpainter()}, _inpaint_psnr,
                                  "PSNR in dB with 20 % of the pixels kept, chapter 11's 4 test photos", 0.002)


# --- chapter 12 -----------------------------------------------------------------------------------

def _translator() -> dict[str, nn.Module]:
    """A run's translator G (its other modules, discriminators and CycleGAN's F, are not needed)."""
    cfg = recipes.DIGITS_TO_MNIST_CONFIG
    return {"model": TR.Translator(cfg.channels, cfg.blocks)}


def _low_res_fid(modules: dict[str, nn.Module]) -> float:
    return TR.paired_test(modules["model"], "low-res")["fid"]


def _digits_fid(modules: dict[str, nn.Module]) -> float:
    x, y = data.digits_as_mnist("test")
    return TR.evaluate(TR.translate(modules["model"], x), y)["fid"]


ENTRIES.update({
    f"ch12_{key}": Entry("ch12_translation", _translator, _low_res_fid,
                         "classifier-FID of the 1,000 test digits translated back from 4x4 averages", 0.002)
    for key in ("l1", "pix2pix")
})
ENTRIES.update({
    f"ch12_{key}": Entry("ch12_translation", _translator, _digits_fid,
                         "classifier-FID of the 500 held-out scikit-learn digits, translated", 0.002)
    for key in ("cyclegan", "recipe")
})


# --- chapter 14 -----------------------------------------------------------------------------------

def _flow(config: dict, shape: tuple[int, ...], n_classes: int = 0) -> Callable[[], dict[str, nn.Module]]:
    """A chapter-14 run's network (its EMA is what is loaded), built as the chapter builds it."""
    return lambda: {"net": DT.build_model(DT.diffusion_config(config), shape, n_classes).net}


def _toy_flow_high_quality(kind: str) -> Callable[[dict[str, nn.Module]], float]:
    def measure(modules: dict[str, nn.Module]) -> float:
        model = DT.DiffusionModel(modules["net"], DT.diffusion_config({"batch_size": 512}), (2,))
        return toy_gan.score(model.sample(2500, steps=100, generator=torch.Generator().manual_seed(1)), kind)[
            "high quality"]

    return measure


def _pixel_fid(kind: str) -> Callable[[dict[str, nn.Module]], float]:
    def measure(modules: dict[str, nn.Module]) -> float:
        model = DT.DiffusionModel(modules["net"], DT.diffusion_config({"kind": kind}), (1, 28, 28))
        steps = 10 if kind == "flow" else 20  # 20 network calls either way
        clf = features.load_mnist_classifier()
        x = model.sample(1000, steps=steps, generator=torch.Generator().manual_seed(1))
        return metrics.fid(features.extract(clf, x), features.extract(clf, _test()))

    return measure


def _latent(flow_net: nn.Module, n_classes: int = 0) -> DT.LatentDiffusion:
    """The recipe's model from the shipped VAE and a shipped flow network."""
    vae = load("ch14_recipe_vae")["model"]
    cfg = DT.LATENT_CONFIG
    codes = DT.latent_codes(vae, data.load_mnist("train").data, cfg.shifts, 0)
    flow = DT.DiffusionModel(flow_net, cfg, (vae.z_dim,), n_classes)
    return DT.LatentDiffusion(vae, flow, codes.mean(0), codes.std(0))


def _recipe_fid(modules: dict[str, nn.Module]) -> float:
    clf = features.load_mnist_classifier()
    x = _latent(modules["net"]).sample(1000, generator=torch.Generator().manual_seed(1))
    return metrics.fid(features.extract(clf, x), features.extract(clf, _test()))


def _guided_accuracy(modules: dict[str, nn.Module]) -> float:
    want = torch.arange(1000) % 10
    x = _latent(modules["net"], 10).sample(1000, labels=want, guidance=3.0, generator=torch.Generator().manual_seed(1))
    return features.accuracy(features.load_mnist_classifier(), x, want)


FID14 = "classifier-FID, 1000 samples vs 1000 test digits"
ENTRIES.update({
    **{f"ch14_flow_{kind}": Entry("ch14_diffusion", _flow({"batch_size": 512}, (2,)), _toy_flow_high_quality(kind),
                                  "high-quality fraction of 2500 samples, 100 Heun steps", 0.02)
       for kind in ("ring", "grid")},
    **{f"ch14_pixel_{kind}": Entry("ch14_diffusion", _flow({"kind": kind}, (1, 28, 28)), _pixel_fid(kind),
                                   FID14 + ", 20 network calls", 0.05) for kind in ("flow", "ddpm")},
    "ch14_recipe_vae": Entry("ch14_diffusion", lambda: {"model": recipes.mnist_vae()}, neg_elbo, ELBO, 0.01),
    "ch14_recipe_flow": Entry("ch14_diffusion", lambda: {"net": DT.build_model(DT.LATENT_CONFIG, (32,)).net},
                              _recipe_fid, FID14 + ", 10 Heun steps", 0.05),
    "ch14_cond_flow": Entry("ch14_diffusion", lambda: {"net": DT.build_model(DT.LATENT_CONFIG, (32,), 10).net},
                            _guided_accuracy, "read as the requested class, 1000 samples, guidance w = 3", 0.02),
})


# --- appendix -------------------------------------------------------------------------------------
APPENDIX = "appendix_questions"


def _sweep_gan(width: int) -> Callable[[], dict[str, nn.Module]]:
    return lambda: dict(zip(("generator", "discriminator"), (lambda t: (t.G, t.D))(questions.mlp_gan(width))))


def _sweep_vae() -> dict[str, nn.Module]:
    return {"model": V.mlp_vae(z_dim=16, hidden=(256,))}


def _listing_fid(modules: dict[str, nn.Module]) -> float:
    clf = features.load_mnist_classifier()
    model = modules["model"]
    g = torch.Generator().manual_seed(1)
    x = model.sample(1000, g) if isinstance(model, vae_bugs.ListingAE) else model.sample(1000, generator=g)
    return metrics.fid(features.extract(clf, vae_bugs.from_cifar(x)), features.extract(clf, _test()))


ENTRIES.update({
    **{f"app_gan_n{n}": Entry(APPENDIX, _sweep_gan(128), gan_fid, FID14, 0.05) for n in (500, 1000, 2000, 4000)},
    **{f"app_gan_w{w}": Entry(APPENDIX, _sweep_gan(w), gan_fid, FID14, 0.05) for w in (32, 128, 512)},
    "app_gan_joint_step_stale": Entry(APPENDIX, _sweep_gan(128), gan_fid, FID14, 0.05),
    **{f"app_vae_n{n}": Entry(APPENDIX, _sweep_vae, neg_elbo, ELBO, 0.01) for n in (500, 1000, 2000, 4000)},
    **{f"app_vae_n500_{v}": Entry(APPENDIX, _sweep_vae, neg_elbo, ELBO, 0.01) for v in ("shift", "wd")},
    "app_vanilla_grid": Entry(APPENDIX, lambda: _toy_models("vanilla"), _toy_high_quality("grid"),
                              "high-quality fraction of 2500 samples", 0.02),
    "app_listing_ae": Entry(APPENDIX, lambda: {"model": vae_bugs.ListingAE(fixed=True, logits=True)}, _listing_fid,
                            FID14 + " (samples from N(0, I))", 0.05),
    "app_listing_vae": Entry(APPENDIX, lambda: {"model": vae_bugs.repaired_vae()}, _listing_fid, FID14, 0.05),
})


def run_chapter(chapter: str, names: list[str], out: Path) -> float:
    """Execute ``notebooks/<chapter>.ipynb`` in full mode, training ``names``; return seconds."""
    env = {**os.environ, "COURSE_FAST": "0", "COURSE_RETRAIN": ",".join(names),
           pretrained.SHIP_ENV: str(out), "COURSE_CHECKPOINTS": str(out / "checkpoints"),
           "COURSE_PROGRESS": "text"}
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
         "--ExecutePreprocessor.timeout=7200", "--output-dir", str(out), str(ROOT / "notebooks" / f"{chapter}.ipynb")],
        env=env, check=True,
    )
    return time.perf_counter() - t0


def ship(name: str, found: Path, chapter_seconds: float) -> dict:
    """Copy run ``name``'s weights from ``found`` into the package, measure them, and return
    their manifest entry."""
    entry = ENTRIES[name]
    if not found.is_file():
        raise SystemExit(f"{entry.chapter} did not write {found.name}: does it still train a run "
                         f"with shipped={name!r} in full mode?")
    state = utils.load_checkpoint(found)
    path = pretrained.WEIGHTS_DIR / f"{name}.pt"
    pretrained.WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    utils.save_checkpoint(path, export_weights(state))  # atomic
    value = entry.measure(load(name, entry))
    print(f"{name}: {state['step']} steps in {state['elapsed']:.0f} s, {entry.metric} = {value:.3f}, "
          f"{path.stat().st_size / 1e6:.1f} MB")
    return {
        "file": path.name, "sha256": pretrained.sha256(path), "chapter": entry.chapter,
        "command": f"python tools/train_weights.py {name}", "config": state["config"], "seed": state["seed"],
        "steps": state["step"], "train_seconds": round(state["elapsed"], 1),
        "chapter_seconds": round(chapter_seconds, 1),
        "metric": {"name": entry.metric, "value": value, "tolerance": entry.tolerance},
        "torch": torch.__version__,
    }


def remeasure(name: str, entry: dict) -> dict:
    """Rewrite shipped run ``name`` in the current shipped format (``pretrained.export_weights``)
    without training, and measure it again: its manifest entry with the new SHA-256 and metric."""
    path = pretrained.WEIGHTS_DIR / entry["file"]
    utils.save_checkpoint(path, export_weights(utils.load_checkpoint(path)))
    value = ENTRIES[name].measure(load(name))
    print(f"{name}: {entry['metric']['value']:.3f} -> {value:.3f}, {path.stat().st_size / 1e6:.1f} MB")
    return {**entry, "sha256": pretrained.sha256(path), "metric": {**entry["metric"], "value": value},
            "torch": torch.__version__}


def _write(manifest: dict) -> None:
    text = json.dumps(dict(sorted(manifest.items())), indent=1, sort_keys=True) + "\n"
    utils.atomic_write(pretrained.MANIFEST, lambda f: f.write(text.encode()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"entries to train (default: all of {sorted(ENTRIES)})")
    parser.add_argument("--remeasure", action="store_true",
                        help="train nothing: rewrite the shipped files in the current format and measure them again")
    parser.add_argument("--keep", default=None, metavar="DIR",
                        help="train in DIR and keep it: a chapter that fails after training resumes "
                             "from the checkpoints there when the same command runs again")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(ENTRIES))
    if unknown:
        sys.exit(f"unknown entries {unknown}; the entries are {sorted(ENTRIES)}")
    names = args.names or sorted(ENTRIES)
    manifest = pretrained.manifest()
    if args.remeasure:
        for name in names:
            manifest[name] = remeasure(name, manifest[name])
            _write(manifest)
        return
    for chapter in sorted({ENTRIES[n].chapter for n in names}):
        todo = [n for n in names if ENTRIES[n].chapter == chapter]
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(args.keep) / chapter if args.keep else Path(tmp)
            out.mkdir(parents=True, exist_ok=True)
            seconds = run_chapter(chapter, todo, out)
            for name in todo:
                manifest[name] = ship(name, out / f"{name}.pt", seconds)
                _write(manifest)


if __name__ == "__main__":
    main()
