"""JupyterLab, started from the project's environment, treats the py:percent sources as
notebooks: jupytext is the default viewer for Python files (so a double-click on
notebooks/ch01_basics.py opens a notebook), the contents API serves the .py as a notebook,
and saving it unchanged changes neither the .py nor its paired .ipynb."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "course-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(port: int, path: str, method: str = "GET", body: dict | None = None):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a copy of chapter 1 and the project's jupytext configuration."""
    root = tmp_path_factory.mktemp("lab")
    (root / "notebooks").mkdir()
    shutil.copy(ROOT / "pyproject.toml", root)
    for suffix in (".py", ".ipynb"):
        shutil.copy(ROOT / "notebooks" / f"ch01_basics{suffix}", root / "notebooks")
    port = _free_port()
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(root / ".runtime")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
         *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        for _ in range(120):
            try:
                _api(port, "/api/status")
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail("JupyterLab did not start: " + proc.stderr.read()[-2000:])
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer within 60 s")
        yield port, root
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_jupytext_is_the_default_viewer_for_python_files(lab):
    port, _ = lab
    settings = _api(port, "/lab/api/settings/@jupyterlab/docmanager-extension:plugin")
    # The environment's labconfig overrides the schema's default; a user setting would win.
    viewers = {**settings["schema"]["properties"]["defaultViewers"].get("default", {}),
               **settings["settings"].get("defaultViewers", {})}
    assert viewers.get("python") == "Jupytext Notebook", (
        f"defaultViewers = {viewers}: run `make venv` (it writes "
        ".venv/etc/jupyter/labconfig/default_setting_overrides.json)"
    )


def test_py_source_is_served_and_saved_as_a_notebook(lab):
    port, root = lab
    before = {p.name: p.read_bytes() for p in (root / "notebooks").iterdir() if p.is_file()}
    model = _api(port, "/api/contents/notebooks/ch01_basics.py?type=notebook&content=1")
    assert model["type"] == "notebook"
    cells = model["content"]["cells"]
    assert cells[0]["source"].startswith("# Chapter 1")
    assert any(c["metadata"].get("nbgrader", {}).get("solution") for c in cells)
    _api(port, "/api/contents/notebooks/ch01_basics.py", "PUT",
         {"type": "notebook", "format": "json", "content": model["content"]})
    after = {p.name: p.read_bytes() for p in (root / "notebooks").iterdir() if p.is_file()}
    changed = [name for name in before if before[name] != after.get(name)]
    assert not changed, f"saving the notebook unchanged rewrote {changed}: commit jupytext's header"
