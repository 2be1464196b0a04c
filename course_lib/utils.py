"""Shared helpers: seeding, device choice, fast mode, progress bars, checkpoints.

Defined in chapter 0 (setup) and used by every chapter.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

T = TypeVar("T")

FAST_ENV = "COURSE_FAST"
PROGRESS_ENV = "COURSE_PROGRESS"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def fast_mode() -> bool:
    """True when the environment variable ``COURSE_FAST`` is set to 1/true/yes/on.

    Fast mode shrinks epochs and sample counts so that every notebook runs in
    seconds (CI and the book build set it). It never changes the code path:
    notebooks choose sizes with :func:`fast_or_full` and run the same code.
    """
    value = os.environ.get(FAST_ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{FAST_ENV}={value!r} is not understood; use 1 (fast) or 0 (full).")


def fast_or_full(fast: T, full: T) -> T:
    """Return ``fast`` in fast mode and ``full`` otherwise (see :func:`fast_mode`)."""
    return fast if fast_mode() else full


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch, and return a seeded ``torch.Generator``.

    Seeding makes a CPU run repeatable; GPU kernels may still differ slightly.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def get_device(prefer: str | None = None) -> torch.device:
    """Choose a device: ``prefer`` if given, else CUDA, else Apple MPS, else CPU.

    ``prefer`` may be "cpu", "cuda", "cuda:1", "mps". Asking for an accelerator
    that is not there raises a clear error instead of failing later.
    """
    if prefer is not None:
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("CUDA was requested but torch sees no GPU; use get_device('cpu').")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError("MPS was requested but is not available; use get_device('cpu').")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:  # pragma: no cover - IPython ships with the dev extras
        return False
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


def _has_widgets() -> bool:
    """tqdm's notebook bar needs ipywidgets; without it (e.g. under nbval) use the text bar."""
    import importlib.util

    return importlib.util.find_spec("ipywidgets") is not None


def _has_frontend() -> bool:
    """Whether a Jupyter server started this kernel for a front end (JupyterLab, Notebook).

    The server sets ``JPY_SESSION_NAME`` for the kernels it starts; nbconvert, nbgrader,
    nbval and the book build start theirs directly, with no front end to draw a widget, so a
    widget bar there would be saved as an empty placeholder.
    """
    return bool(os.environ.get("JPY_SESSION_NAME"))


def progress(iterable: Iterable[T] | None = None, **kwargs: Any):
    """A tqdm progress bar that suits where it runs.

    In JupyterLab it is a widget (if ipywidgets is installed); in a notebook executed without a
    front end (nbconvert, nbgrader's autograde and feedback, nbval) it is the text bar; in a
    terminal it redraws in place; in a log file (CI) it prints a line every 10 s instead of
    flooding the log. ``COURSE_PROGRESS=text`` forces the plain text bar (the book build sets
    it), ``COURSE_PROGRESS=off`` hides it.
    """
    mode = os.environ.get(PROGRESS_ENV, "auto").strip().lower()
    if mode not in {"auto", "text", "off"}:
        raise ValueError(f"{PROGRESS_ENV}={mode!r}: use auto, text or off.")
    if mode == "off":
        kwargs.setdefault("disable", True)
    if mode == "auto" and _in_notebook() and _has_widgets() and _has_frontend():
        from tqdm.notebook import tqdm
    else:
        from tqdm import tqdm

        if not sys.stderr.isatty():
            kwargs.setdefault("mininterval", 10.0)
            kwargs.setdefault("ascii", True)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Save ``state`` (tensors, numbers, strings, lists, dicts) atomically.

    The file is written beside ``path`` under a temporary name and renamed
    into place, so an interrupted save never leaves a half-written checkpoint.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint`, safely.

    Uses ``weights_only=True``, so a file cannot run code when loaded. A missing
    or corrupt file raises an error that says which file and what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}. Train first, or check the path.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for damaged files
        raise RuntimeError(
            f"Checkpoint {path} could not be read ({type(err).__name__}: {err}). "
            "It is corrupt or was not written by course_lib; delete it and train again."
        ) from err
    if not isinstance(state, dict):
        raise RuntimeError(f"Checkpoint {path} holds a {type(state).__name__}, not a dict.")
    return state


def checkpoint_dir() -> Path:
    """Where notebooks keep checkpoints: ``$COURSE_CHECKPOINTS``, else ``~/.cache/dgm-course/checkpoints``.

    Notebooks follow "load the checkpoint if present, else train"; delete the
    folder (or set the variable to an empty folder) to retrain from scratch.
    """
    default = Path.home() / ".cache" / "dgm-course" / "checkpoints"
    return Path(os.environ.get("COURSE_CHECKPOINTS", default)).expanduser()
