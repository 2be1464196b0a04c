"""Shipped weights: every manifest entry is there, intact, loads safely into its chapter's model
and still measures what the manifest says; fast mode never reads them; damage is an error."""

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
    assert total <= 30e6, f"shipped weights take {total / 1e6:.1f} MB"


@pytest.mark.parametrize("name", ENTRIES)
def test_each_shipped_entry_loads_and_measures_as_recorded(name, tmp_path, monkeypatch):
    entry = pretrained.manifest()[name]
    path = pretrained.WEIGHTS_DIR / entry["file"]
    assert path.is_file() and pretrained.sha256(path) == entry["sha256"]
    state = torch.load(path, weights_only=True)
    assert state["format"] == train.WEIGHTS_FORMAT and state["config"] == entry["config"]
    monkeypatch.setenv("COURSE_FAST", "0")
    monkeypatch.setenv("COURSE_RETRAIN", "0")

    def no_training(self, *args):
        raise AssertionError(f"{name}: the shipped weights were not loaded, the chapter would train")

    monkeypatch.setattr(train.Run, "_batch", no_training)
    tool = _tool()
    modules = tool.ENTRIES[name].train(tmp_path / "run.pt")  # the chapter's code: loads, trains nothing
    value = tool.ENTRIES[name].measure(modules)
    recorded = entry["metric"]
    assert abs(value - recorded["value"]) <= recorded["tolerance"] * abs(recorded["value"]), (value, recorded)


def _fake_manifest(tmp_path, monkeypatch, config, sha=None):
    weights = tmp_path / "weights"
    weights.mkdir()
    model = torch.nn.Linear(2, 1)
    run = train.Run({"m": model}, {}, config=config, seed=0, path=tmp_path / "r.pt")
    run.save()
    from course_lib.utils import load_checkpoint, save_checkpoint

    save_checkpoint(weights / "toy.pt", train.export_weights(load_checkpoint(tmp_path / "r.pt")))
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
        assert torch.equal(m.weight, model.weight) is loads


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
