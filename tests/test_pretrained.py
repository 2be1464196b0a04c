"""Shipped weights: every manifest entry is there, intact, loads safely into its chapter's model
and still measures what the manifest says; fast mode never reads them; damage is an error."""

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from course_lib import pretrained, train

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location("train_weights", ROOT / "tools" / "train_weights.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_weights"] = module
    spec.loader.exec_module(module)
    return module


ENTRIES = sorted(pretrained.manifest())


def test_the_manifest_lists_every_entry_of_the_tool_and_stays_small():
    tool = _tool()
    assert ENTRIES == sorted(tool.ENTRIES), "run python tools/train_weights.py for the missing entries"
    total = sum((pretrained.WEIGHTS_DIR / e["file"]).stat().st_size for e in pretrained.manifest().values())
    # A guard against shipping something large by accident, not a quota: chapters 4-8 took 29.8 MB,
    # chapter 10's six classifiers about 9 MB, chapter 11's six restorers about 14 MB (its shipped
    # denoiser alone 8.5 MB in float16), chapter 12's four translators 6.6 MB, chapter 14's seven
    # networks about 12 MB, the appendix's seventeen small runs about 23 MB (its widest GAN 5.6 MB).
    # Weights for further chapters belong in a separate asset package rather than under a still
    # higher limit.
    assert total <= 100e6, f"shipped weights take {total / 1e6:.1f} MB"


@pytest.mark.parametrize("name", ENTRIES)
def test_each_shipped_entry_loads_and_measures_as_recorded(name):
    entry = pretrained.manifest()[name]
    path = pretrained.WEIGHTS_DIR / entry["file"]
    assert path.is_file() and pretrained.sha256(path) == entry["sha256"]
    state = torch.load(path, weights_only=True)
    assert state["format"] == train.WEIGHTS_FORMAT and state["config"] == entry["config"]
    assert state["done"] and state["step"] == entry["steps"] and "optimizers" not in state
    tool = _tool()
    value = tool.ENTRIES[name].measure(tool.load(name))  # strict load_state_dict into the chapter's model
    recorded = entry["metric"]
    assert abs(value - recorded["value"]) <= recorded["tolerance"] * abs(recorded["value"]), (value, recorded)


def _config_classes():
    from course_lib.denoisers import DenoiserConfig
    from course_lib.diffusion_train import DiffusionConfig
    from course_lib.recipes import GANConfig, VAEConfig
    from course_lib.robust import RobustConfig
    from course_lib.toy_gan import ToyGANConfig
    from course_lib.translation import TranslatorConfig

    classes = (DenoiserConfig, DiffusionConfig, GANConfig, VAEConfig, RobustConfig, ToyGANConfig, TranslatorConfig)
    return {cls: {f.name for f in dataclasses.fields(cls)} for cls in classes}


@pytest.mark.parametrize("name", ENTRIES)
def test_a_shipped_run_built_on_a_config_class_records_every_field_of_it(name):
    """A field added to a config class enters every run's config, so shipped weights recorded
    without it stop matching: the default mode would retrain them and COURSE_REQUIRE_SHIPPED=1
    refuse. Such runs must be retrained, or (where the field cannot change them) recorded with
    it. Entries whose config holds most of a config class's fields are taken as built on it;
    the others (hand-written settings) have nothing to check."""
    config = set(pretrained.manifest()[name]["config"])
    classes = _config_classes()
    cls = max(classes, key=lambda c: len(classes[c] & config) / len(classes[c]))
    if len(classes[cls] & config) >= 0.8 * len(classes[cls]):
        assert classes[cls] <= config, f"{name} lacks {sorted(classes[cls] - config)} of {cls.__name__}"


def test_a_named_run_records_its_weights_only_when_asked_and_finished(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "1")
    monkeypatch.delenv(pretrained.SHIP_ENV, raising=False)
    x = torch.randn(16, 2)

    def step(batch):
        return {"loss": 0.0}

    train.Run({"m": torch.nn.Linear(2, 1)}, {}, shipped="toy").fit(step, x, 4, steps=2)
    assert not list(tmp_path.iterdir())
    monkeypatch.setenv(pretrained.SHIP_ENV, str(tmp_path))
    train.Run({"m": torch.nn.Linear(2, 1)}, {}, shipped="toy").fit(step, x, 4, steps=2)
    state = torch.load(tmp_path / "toy.pt", weights_only=True)
    assert state["format"] == train.WEIGHTS_FORMAT and state["step"] == 2 and state["done"]


def test_retrain_takes_run_names(monkeypatch):
    monkeypatch.setenv("COURSE_RETRAIN", "ch07_z2,ch08_cvae")
    assert pretrained.retrain("ch07_z2") and pretrained.retrain("ch08_cvae")
    assert not pretrained.retrain("ch07_mlp") and not pretrained.retrain()
    monkeypatch.setenv("COURSE_RETRAIN", "app_vae_n500,ch07_z2")  # the appendix's runs: app_...
    assert pretrained.retrain("app_vae_n500") and not pretrained.retrain("app_vae_n1000")
    monkeypatch.setenv("COURSE_RETRAIN", "ch07_z2, not a name")
    with pytest.raises(ValueError, match="run names"):
        pretrained.retrain("ch07_z2")


def test_required_shipped_weights_are_an_error_when_missing_or_stale(tmp_path, monkeypatch):
    _fake_manifest(tmp_path, monkeypatch, {"lr": 0.1})
    monkeypatch.setenv("COURSE_FAST", "0")
    monkeypatch.delenv("COURSE_RETRAIN", raising=False)
    monkeypatch.setenv(pretrained.REQUIRE_ENV, "1")
    for config, name, match in (({"lr": 0.2}, "toy", "other settings"), ({"lr": 0.1}, "absent", "no shipped")):
        run = train.Run({"m": torch.nn.Linear(2, 1)}, {}, config=config, seed=0, shipped=name)
        with pytest.raises(RuntimeError, match=match):
            run.resume()


def _fake_manifest(tmp_path, monkeypatch, config, sha=None):
    weights = tmp_path / "weights"
    weights.mkdir()
    model = torch.nn.Linear(2, 1)
    run = train.Run({"m": model}, {}, config=config, seed=0, path=tmp_path / "r.pt")
    run.save()
    from course_lib.utils import load_checkpoint, save_checkpoint

    save_checkpoint(weights / "toy.pt", pretrained.export_weights(load_checkpoint(tmp_path / "r.pt")))
    entry = {"file": "toy.pt", "sha256": sha or pretrained.sha256(weights / "toy.pt"), "config": config, "seed": 0}
    (weights / "manifest.json").write_text(json.dumps({"toy": entry}))
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", weights)
    monkeypatch.setattr(pretrained, "MANIFEST", weights / "manifest.json")
    return model


def test_modes_fast_never_reads_shipped_weights_default_does_retrain_does_not(tmp_path, monkeypatch):
    model = _fake_manifest(tmp_path, monkeypatch, {"lr": 0.1})
    fresh = torch.nn.Linear(2, 1)
    assert not torch.equal(fresh.weight, model.weight)
    for fast, retrain, loads in (("1", "0", False), ("0", "1", False), ("0", "0", True)):
        monkeypatch.setenv("COURSE_FAST", fast)
        monkeypatch.setenv("COURSE_RETRAIN", retrain)
        m = torch.nn.Linear(2, 1)
        run = train.Run({"m": m}, {}, config={"lr": 0.1}, seed=0, shipped="toy")
        assert run.resume() is loads
        assert torch.equal(m.weight, model.weight.half().float()) is loads  # shipped in float16


def test_other_settings_train_and_damaged_weights_are_an_error(tmp_path, monkeypatch, capsys):
    _fake_manifest(tmp_path, monkeypatch, {"lr": 0.1})
    monkeypatch.setenv("COURSE_FAST", "0")
    monkeypatch.delenv("COURSE_RETRAIN", raising=False)
    run = train.Run({"m": torch.nn.Linear(2, 1)}, {}, config={"lr": 0.2}, seed=0, shipped="toy")
    assert run.resume() is False and "other settings (['lr'])" in capsys.readouterr().out
    (pretrained.WEIGHTS_DIR / "toy.pt").write_bytes(b"replaced")
    run = train.Run({"m": torch.nn.Linear(2, 1)}, {}, config={"lr": 0.1}, seed=0, shipped="toy")
    with pytest.raises(RuntimeError, match="not the manifest's"):
        run.resume()
    monkeypatch.setenv("COURSE_RETRAIN", "maybe")
    with pytest.raises(ValueError, match="COURSE_RETRAIN"):
        pretrained.retrain()


def test_export_weights_is_small_and_loads_back_as_the_run(tmp_path):
    """Shipped format: float16 weights (float32 where a value would overflow), no optimiser
    state, the history as tensors that come back as the same Python ints and floats."""
    model = torch.nn.Linear(3, 2)
    with torch.no_grad():
        model.bias[0] = 1e5  # does not fit float16: the tensor stays float32
    opt = torch.optim.Adam(model.parameters())
    run = train.Run({"m": model}, {"opt": opt}, path=tmp_path / "r.pt")
    run.fit(lambda b: {"loss": 0.25, "n": 3}, torch.randn(8, 3), 4, steps=3)
    shipped = pretrained.export_weights(torch.load(tmp_path / "r.pt", weights_only=True))
    assert shipped["modules"]["m"]["weight"].dtype == torch.float16
    assert shipped["modules"]["m"]["bias"].dtype == torch.float32 and "optimizers" not in shipped
    fresh = torch.nn.Linear(3, 2)
    again = train.Run({"m": fresh}, {"opt": torch.optim.Adam(fresh.parameters())})
    again.load_state_dict(shipped)
    assert fresh.weight.dtype == torch.float32 and torch.equal(fresh.weight, model.weight.half().float())
    assert again.history["step"] == [0, 1, 2] and all(type(s) is int for s in again.history["step"])
    assert again.history["loss"] == [0.25] * 3 and again.step == 3
