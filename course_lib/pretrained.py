"""Shipped trained weights: a chapter loads them when they match its run, and trains otherwise.

Every model that a chapter trains in full mode is trained once by ``tools/train_weights.py``,
which writes the weights under ``course_lib/assets/weights/`` and a manifest beside them
(file, SHA-256, the command, the config, the measured metric). The three modes share one code
path (chapter 0):

* fast mode (``COURSE_FAST=1``, the tests): never reads shipped weights; always trains;
* the default: loads the shipped weights when the run's config and seed are those they were
  trained with, after checking their SHA-256; trains when they are missing or differ;
* ``COURSE_RETRAIN=1``: ignores the shipped weights and trains (``COURSE_RETRAIN=ch07_z2,...``:
  only those runs).

``tools/train_weights.py`` runs a chapter's notebook in full mode with ``COURSE_SHIP_DIR`` set:
every run with a ``shipped`` name then writes its finished weights there (:func:`record`), so
the shipped weights are exactly what the chapter trains. ``make course`` sets
``COURSE_REQUIRE_SHIPPED=1``: a named run whose weights are missing or were trained with other
settings is then an error, not a silent retrain. Loading uses ``torch.load(weights_only=True)`` (:func:`course_lib.utils.load_checkpoint`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .utils import env_flag, fast_mode, load_checkpoint, save_checkpoint, sha256

WEIGHTS_DIR = Path(__file__).parent / "assets" / "weights"
MANIFEST = WEIGHTS_DIR / "manifest.json"
RETRAIN_ENV = "COURSE_RETRAIN"
REQUIRE_ENV = "COURSE_REQUIRE_SHIPPED"
SHIP_ENV = "COURSE_SHIP_DIR"


def retrain(name: str | None = None) -> bool:
    """Whether ``COURSE_RETRAIN`` asks to train run ``name`` instead of loading its shipped
    weights: ``1`` for every run, or a comma-separated list of run names (``ch07_z2,ch08_cvae``;
    the appendix's runs are named ``app_...``)."""
    value = os.environ.get(RETRAIN_ENV, "").strip()
    if not value.lower().startswith(("ch", "app_")):  # 1/0/true/...: every run (an unknown word is an error)
        return env_flag(RETRAIN_ENV, "train", "load shipped weights")
    names = [v.strip() for v in value.split(",")]
    if not all(re.fullmatch(r"(ch\d\d|app)_\w+", n) for n in names):  # run names: ch07_z2, app_..., ...
        raise ValueError(f"{RETRAIN_ENV}={value!r}: use 1, 0 or run names (ch07_z2,...) separated by commas")
    return name in names


def record(name: str, state: dict[str, Any]) -> Path | None:
    """Write a finished run's weights to ``$COURSE_SHIP_DIR/<name>.pt`` (if the variable is set)
    for ``tools/train_weights.py`` to ship; ``state`` is the run's checkpoint state."""
    folder = os.environ.get(SHIP_ENV)
    if not folder:
        return None
    return save_checkpoint(Path(folder) / f"{name}.pt", export_weights(state))


def manifest(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """The manifest: ``{name: {"file", "sha256", "command", "config", "seed", "metric"}}``."""
    path = MANIFEST if path is None else path
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def shipped(name: str, config: dict[str, Any], seed: int) -> dict[str, Any] | None:
    """The shipped state of run ``name`` if it may be used here, else ``None``.

    ``None`` in fast mode, with ``COURSE_RETRAIN=1``, when nothing is shipped under that name,
    or when the shipped run had another config or seed (a note says which settings differ,
    then the chapter trains). A file whose SHA-256 is not the manifest's is an error.
    """
    if fast_mode() or retrain(name):
        return None
    require = env_flag(REQUIRE_ENV, "shipped weights required", "train when missing")
    entry = manifest().get(name)
    if entry is None:
        if require:
            raise RuntimeError(f"no shipped weights {name!r} ({REQUIRE_ENV}=1): run "
                               f"`python tools/train_weights.py {name}`")
        return None
    if entry["config"] != config or entry["seed"] != seed:
        differ = sorted(k for k in set(entry["config"]) | set(config)
                        if entry["config"].get(k) != config.get(k))
        message = f"shipped weights {name!r} were trained with other settings ({differ or ['seed']})"
        if require:
            raise RuntimeError(f"{message} ({REQUIRE_ENV}=1): retrain them with "
                               f"`python tools/train_weights.py {name}`")
        print(f"{message}: training")
        return None
    path = WEIGHTS_DIR / entry["file"]
    if not path.is_file():
        raise FileNotFoundError(
            f"the manifest lists {path}, which is missing: reinstall the course, or set "
            f"{RETRAIN_ENV}=1 to train instead."
        )
    found = sha256(path)
    if found != entry["sha256"]:
        raise RuntimeError(
            f"{path} has SHA-256 {found}, not the manifest's {entry['sha256']}: the file is "
            f"damaged or was replaced. Reinstall the course, or set {RETRAIN_ENV}=1 to train instead."
        )
    print(f"loaded the shipped weights {path.name} ({RETRAIN_ENV}=1 trains instead)")
    return load_checkpoint(path)


def export_weights(state: Mapping[str, Any]) -> dict[str, Any]:
    """A run's checkpoint as shipped weights: what ``tools/train_weights.py`` ships.

    Without what only continuing needs (optimiser states, random generators, data order), and
    small: floating-point weights in float16 where every value fits (a relative rounding of at
    most 2^-11; the manifest's metric is measured after it), the history as tensors (float32,
    or int32 for whole-number columns). :meth:`Run.resume` loads it like a checkpoint (module
    loading casts back to the model's dtype), with fresh optimisers.
    """
    from .train import FORMAT, WEIGHTS_FORMAT

    if state.get("format") not in (FORMAT, WEIGHTS_FORMAT):
        raise ValueError(f"not a course_lib training run (format {state.get('format')!r})")
    out = {k: v for k, v in state.items() if k not in ("optimizers", "rng", "data")}
    for group in ("modules", "ema"):
        out[group] = {name: {k: _half(t) for k, t in sd.items()} for name, sd in state[group].items()}
    out["history"] = {k: _column(v) for k, v in state["history"].items()}
    return {**out, "format": WEIGHTS_FORMAT}


def _half(t: torch.Tensor) -> torch.Tensor:
    if t.dtype == torch.float32 and (t.abs().max() < 6e4 if t.numel() else True):
        return t.half()
    return t


def _column(values: Sequence[float] | torch.Tensor) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        return values.int() if values.dtype == torch.int64 else values
    if all(float(v).is_integer() for v in values):
        return torch.tensor(values, dtype=torch.int32)
    return torch.tensor(values, dtype=torch.float32)
