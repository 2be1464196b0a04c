"""Shared helpers: seeding, device choice, fast mode, progress bars, checkpoints.

Defined in chapter 0 (setup) and used by every chapter.
"""

from __future__ import annotations

import glob
import os
import random
import secrets
import socket
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

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
    return env_flag(FAST_ENV, "fast", "full")


def env_flag(name: str, yes: str, no: str) -> bool:
    """Read an on/off environment variable (1/true/yes/on, 0/false/no/off or unset);
    anything else is an error that says what the two values mean."""
    value = os.environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={value!r} is not understood; use 1 ({yes}) or 0 ({no}).")


def sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, in hex (read in 1 MB blocks)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


def rng_state(generators: Mapping[str, torch.Generator] = {}) -> dict[str, Any]:  # noqa: B006
    """The states of Python's, NumPy's and torch's global generators (CUDA too, if in use)
    and of the named ``generators``, as types that ``torch.load(weights_only=True)`` reads."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(_py, np_state[2:])],
        "torch": torch.get_rng_state(),
        "generators": {k: g.get_state() for k, g in generators.items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def set_rng_state(state: Mapping[str, Any], generators: Mapping[str, torch.Generator] = {}) -> None:  # noqa: B006
    """Restore what :func:`rng_state` returned."""
    random.setstate(_tuples(state["python"]))
    name, key, *rest = state["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for k, g in generators.items():
        g.set_state(state["generators"][k])


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


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


def bf16_is_fast(device: torch.device | str = "cpu") -> bool:
    """Whether bfloat16 mixed precision is likely to speed training up on ``device``.

    On CUDA: the GPU supports bf16. On CPU: oneDNN reports native bf16 support
    (e.g. AVX512-BF16 or AMX); without it bf16 is emulated and slower.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # private op: absent in some builds
        return False


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


_TMP_SUFFIX = ".partial"  # "<name>.<host>.<pid>.<random>.partial": a save in progress or killed
_STALE_SECONDS = 24 * 3600  # a temporary this old is dead whoever wrote it (e.g. another host)


def _tmp_prefix(path: Path) -> str:
    host = "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname()) or "host"
    return f"{path.name}.{host}."


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (signal 0 tests without sending anything).

    On Windows ``os.kill(pid, 0)`` would send CTRL_C_EVENT, so there every process counts as
    alive and only the age of a temporary decides.
    """
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # exists, owned by someone else
        return True
    return True


def _remove_stale_temporaries(path: Path) -> None:
    """Delete temporaries of ``path`` left by saves that were killed (their process is gone).

    A temporary of a live process on this host is left alone (it may be writing right now);
    one from another host is removed only once it is a day old.
    """
    prefix = _tmp_prefix(path)
    for tmp in path.parent.glob(f"{glob.escape(path.name)}.*{_TMP_SUFFIX}"):
        try:
            old = time.time() - tmp.stat().st_mtime > _STALE_SECONDS
            if tmp.name.startswith(prefix):
                pid = int(tmp.name[len(prefix):].split(".", 1)[0])
                stale = pid != os.getpid() and (old or not _pid_alive(pid))
            else:
                stale = old
            if stale:
                tmp.unlink(missing_ok=True)
        except (ValueError, OSError):  # not one of ours, or already gone
            continue


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> Path:
    """Write a file all at once: ``write(f)`` fills a temporary beside ``path``, renamed over it.

    Readers see the old file or the new one, never half of one. The temporary is named
    ``<name>.<host>.<pid>.<random>.partial``, is removed on any exception (Ctrl-C included),
    and one left by a killed process is removed by the next write to the same ``path``.
    The file gets the permissions ``open()`` would give (0o666 minus the umask), so other
    users of a shared course folder can read it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    tmp = path.parent / f"{_tmp_prefix(path)}{os.getpid()}.{secrets.token_hex(4)}{_TMP_SUFFIX}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the rename makes it visible
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


_SCALARS = (str, int, float, bool, complex, bytes, bytearray, type(None), torch.dtype, torch.device)


def _unloadable(value: Any, where: str) -> str | None:
    """Where (``state['a'][0]``) ``value`` holds something ``torch.load(weights_only=True)`` refuses.

    The allowed types are those of torch's weights-only unpickler: tensors (and parameters),
    ``torch.Size``, dtypes, devices, numbers, strings, bytes, None, and lists, tuples, sets,
    dicts and OrderedDicts of them. Types are compared exactly: a NumPy float64 is a
    ``float`` subclass, but is pickled as a NumPy object that loading refuses.
    """
    kind = type(value)
    if kind in (torch.Tensor, torch.nn.Parameter) or kind in _SCALARS or kind is torch.Size:
        return None
    if kind in (list, tuple, set):
        for i, item in enumerate(value):
            found = _unloadable(item, f"{where}[{i}]" if kind is not set else f"{where} (an item of the set)")
            if found:
                return found
        return None
    if kind in (dict, OrderedDict):
        for key, item in value.items():
            found = _unloadable(key, f"{where} (the key {key!r})") or _unloadable(item, f"{where}[{key!r}]")
            if found:
                return found
        return None
    return f"{where} is a {kind.__module__}.{kind.__qualname__}"


def _conversion_hint(message: str) -> str:
    if "numpy" in message:
        return ("convert with torch.as_tensor(x) (arrays) or float(x) / int(x) (NumPy scalars)"
                " before saving")
    return ("store only tensors, numbers, strings, lists, tuples, sets and dicts: e.g. obj.state_dict(), "
            "dataclasses.asdict(obj), str(path), or tuple(...) for a NamedTuple")


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Save ``state`` (tensors, numbers, strings, lists, tuples, sets, dicts) atomically.

    The state is checked first against what :func:`load_checkpoint` (``weights_only=True``)
    can read back, so a checkpoint that could never be loaded is refused with an error
    naming the key (e.g. ``state['opt']['mean'] is a numpy.ndarray``) before any file is
    written. The file is written by :func:`atomic_write`: an interrupted save never
    leaves a half-written checkpoint, and the file is readable as ``open()`` would make it.
    """
    if not isinstance(state, dict):
        raise TypeError(f"save_checkpoint takes a dict of state; got {type(state).__name__}.")
    found = _unloadable(state, "state")
    if found:
        raise TypeError(
            f"Cannot save a checkpoint to {path}: {found}, which load_checkpoint (weights_only=True) "
            f"refuses; {_conversion_hint(found)}."
        )
    return atomic_write(path, lambda f: torch.save(state, f))


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


_FAST_CHECKPOINTS: list[Path] = []


def checkpoint_dir() -> Path:
    """Where notebooks keep checkpoints: ``$COURSE_CHECKPOINTS``, else ``~/.cache/dgm-course/checkpoints``.

    Notebooks follow "load the checkpoint if present, else train"; delete the
    folder (or set the variable to an empty folder) to retrain from scratch. In fast mode
    without the variable it is a new temporary folder for this process: a fast run always
    trains from scratch and never reads (or fills) the cache of full-mode runs.
    """
    if "COURSE_CHECKPOINTS" in os.environ:
        return Path(os.environ["COURSE_CHECKPOINTS"]).expanduser()
    if fast_mode():
        if not _FAST_CHECKPOINTS:
            import atexit
            import shutil
            import tempfile

            folder = Path(tempfile.mkdtemp(prefix="course-fast-checkpoints-"))
            atexit.register(shutil.rmtree, folder, ignore_errors=True)  # removed when the process ends
            _FAST_CHECKPOINTS.append(folder)
        return _FAST_CHECKPOINTS[0]
    return Path.home() / ".cache" / "dgm-course" / "checkpoints"
