"""Every notebook is a py:percent source paired with an .ipynb whose cells agree with it."""

from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks").glob("*.py"))


def test_there_are_notebooks():
    assert SOURCES, "no notebooks/*.py found"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_pair_agrees(source):
    ipynb = source.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.name} is missing: run `make sync`"
    py_cells = jupytext.read(source).cells
    nb = jupytext.read(ipynb)
    nb_cells = nb.cells
    assert [(c.cell_type, c.source) for c in nb_cells] == [(c.cell_type, c.source) for c in py_cells], (
        f"{source.name} and {ipynb.name} differ: the .py is the source, run `make sync`"
    )
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_committed_ipynb_has_no_outputs(source):
    nb = jupytext.read(source.with_suffix(".ipynb"))
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{source.with_suffix('.ipynb').name} stores outputs in cells {dirty}: run `make sync` from a clean .py"
