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
    assert not dirty, f"{source.with_suffix('.ipynb').name} stores outputs in cells {dirty}: run `make sync` (it clears them)"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_source_is_in_jupytext_form(source):
    """Saving the notebook in JupyterLab (jupytext, with the project's configuration) rewrites
    nothing: the committed .py already carries the header jupytext writes."""
    from jupytext.config import find_jupytext_configuration_file, load_jupytext_configuration_file

    config = load_jupytext_configuration_file(find_jupytext_configuration_file(str(ROOT)))
    nb = jupytext.read(source)
    rewritten = jupytext.writes(nb, fmt="py:percent", config=config)
    assert rewritten == source.read_text(), (
        f"{source.name}: a save from JupyterLab would rewrite it; run "
        f"`.venv/bin/jupytext --to py:percent {source.relative_to(ROOT)} -o {source.relative_to(ROOT)}`"
    )


MAX_CODE_LINE = 88  # what the book's code column shows without a scroll bar


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_code_lines_fit_the_book(source):
    long = [
        (i, len(line))
        for cell in jupytext.read(source).cells if cell.cell_type == "code"
        for i, line in enumerate(cell.source.splitlines()) if len(line) > MAX_CODE_LINE
    ]
    assert not long, f"{source.name}: {len(long)} code lines over {MAX_CODE_LINE} characters"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_sources_hold_no_control_characters(source):
    """A tab or other control character in a source is a Python escape gone wrong (``"\\times"``
    written as ``"\times"`` puts a tab into the LaTeX): the book would render it broken."""
    bad = [(n, line) for n, line in enumerate(source.read_text().splitlines(), 1)
           if any(ord(c) < 32 for c in line)]
    assert not bad, f"{source.name}: control characters on lines {[n for n, _ in bad]}"
