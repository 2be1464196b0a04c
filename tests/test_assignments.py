"""Student versions: no solution code left, and every exercise's check passes on the instructor
version and fails on the student version. Exercises are found in every notebooks/ch*.py, so new
chapters are covered without editing this file."""

import contextlib
import io
from pathlib import Path

import nbformat
import pytest

from course_lib import assignments as A
from course_lib.checks import CheckFailed

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("ch*.py"))
INSTRUCTOR = {p.stem: A.read_notebook(p) for p in CHAPTERS}
STUDENT = {name: A.student_version(nb) for name, nb in INSTRUCTOR.items()}
EXERCISES = [ex for name, nb in INSTRUCTOR.items() for ex in A.exercises(nb, name)]


def run_isolated(source: str, monkeypatch) -> str:
    """Execute one exercise (solution cells + check cell) in a fresh namespace; return stdout."""
    monkeypatch.chdir(ROOT / "notebooks")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, "<exercise>", "exec"), {"__name__": "__exercise__"})
    return out.getvalue()


def test_there_are_exercises():
    assert len(EXERCISES) >= 2
    assert sum(ex.notebook.startswith("ch01") for ex in EXERCISES) >= 2, "chapter 1 needs at least two exercises"


def test_grade_ids_are_unique_and_prefixed():
    ids = [ex.grade_id for ex in EXERCISES]
    assert len(ids) == len(set(ids))
    for ex in EXERCISES:
        assert ex.grade_id.startswith(ex.notebook[:4] + "-"), f"{ex.grade_id}: start grade ids with '{ex.notebook[:4]}-'"


@pytest.mark.parametrize("name", sorted(INSTRUCTOR), ids=str)
def test_student_version_has_no_solution_code(name):
    instructor, student = INSTRUCTOR[name], STUDENT[name]
    assert len(student.cells) == len(instructor.cells), "cells must be kept, only solutions replaced"
    text = "\n".join(c.source for c in student.cells)
    assert A.BEGIN_SOLUTION not in text and A.END_SOLUTION not in text
    # every line of a solution region that appears nowhere else in the instructor version
    outside = "\n".join(c.source for c in instructor.cells if not c.get("metadata", {}).get("nbgrader", {}).get("solution"))
    for cell, new in zip(instructor.cells, student.cells):
        if A.BEGIN_SOLUTION not in cell.source:
            # citations become author-year text in handed-out notebooks; nothing else changes
            expected = A.cite_as_text(cell.source) if cell.cell_type == "markdown" else cell.source
            assert new.source == expected, "only solution cells may change"
            continue
        region = cell.source.split(A.BEGIN_SOLUTION, 1)[1].split(A.END_SOLUTION, 1)[0]
        secret = [ln.strip() for ln in region.splitlines() if ln.strip() and ln.strip() not in outside]
        assert secret, "a solution region must contain code"
        leaked = [ln for ln in secret if ln in text]
        assert not leaked, f"solution code left in the student version of {name}: {leaked}"
        assert A.STUB in new.source
    assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")
    assert "jupytext" not in student.metadata


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda ex: ex.grade_id)
def test_check_passes_on_instructor_version(ex, monkeypatch):
    out = run_isolated(ex.source, monkeypatch)
    assert "Correct" in out, f"{ex.grade_id}: the check printed no success line"


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda ex: ex.grade_id)
def test_check_fails_on_student_version(ex, monkeypatch):
    student = {e.grade_id: e for e in A.exercises(STUDENT[ex.notebook], ex.notebook)}
    assert ex.grade_id in student, "the check cell must survive in the student version"
    student_ex = student[ex.grade_id]
    assert student_ex.check == ex.check, "check cells are kept unchanged"
    with pytest.raises((CheckFailed, NotImplementedError)):
        run_isolated(student_ex.source, monkeypatch)


def test_command_writes_valid_student_notebooks(tmp_path, capsys):
    assert A.main(["--out", str(tmp_path), *map(str, CHAPTERS)]) == 0
    assert f"{len(CHAPTERS)} student notebooks with {len(EXERCISES)} exercises" in capsys.readouterr().out
    for src in CHAPTERS:
        nb = nbformat.read(tmp_path / f"{src.stem}.ipynb", as_version=4)
        nbformat.validate(nb)
        assert nb.metadata["kernelspec"]["name"] == "python3"
        locked = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
        assert all(c.metadata.get("editable") is False for c in locked), "check cells are locked"


def _notebook(*cells):
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}})
    nb.cells = list(cells)
    return nb


def _cell(source, **nbgrader):
    meta = {"nbgrader": {"schema_version": 3, "grade": False, "solution": False, "locked": False, "task": False, **nbgrader}} if nbgrader else {}
    return nbformat.v4.new_code_cell(source, metadata=meta)


def test_unmarked_solution_is_an_error():
    nb = _notebook(_cell("x = 1\n### BEGIN SOLUTION\nx = 2\n### END SOLUTION"))
    with pytest.raises(ValueError, match="no nbgrader solution metadata"):
        A.exercises(nb, "bad")
    with pytest.raises(RuntimeError, match="non-solution cell"):  # nbgrader refuses it too
        A.student_version(nb)


def test_solution_without_check_is_an_error():
    nb = _notebook(_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION", solution=True, grade_id="x-ex1"))
    with pytest.raises(ValueError, match="no check cell"):
        A.exercises(nb, "bad")


def test_duplicate_grade_ids_are_rejected():
    sol = _cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", solution=True, grade_id="x-ex1")
    check = _cell("assert x == 1", grade=True, locked=True, points=1, grade_id="x-ex1")
    with pytest.raises(Exception, match="(?i)validate|duplicate"):
        A.student_version(_notebook(sol, check))


def test_citations_become_author_year_text():
    from course_lib.assignments import cite_as_text

    text = "the game {cite}`goodfellow2014gan`; {cite:t}`kingma2014vae` and {cite}`goodfellow2014gan,burda2016iwae`"
    assert cite_as_text(text) == (
        "the game (Goodfellow et al., 2014); Kingma & Welling (2014) and "
        "(Goodfellow et al., 2014; Burda et al., 2016)"
    )
    assert cite_as_text("{cite}`no-such-key`") == "{cite}`no-such-key`"


def test_handed_out_notebooks_show_no_raw_citation_roles():
    """JupyterLab without a MyST renderer and nbgrader's feedback pages would print the roles."""
    import re

    from course_lib.assignments import instructor_version, read_notebook, student_version

    nb = read_notebook(ROOT / "notebooks" / "ch02_gan_theory.py")
    assert any("{cite" in c.source for c in nb.cells if c.cell_type == "markdown")
    for version in (student_version(nb), instructor_version(nb)):
        text = "\n".join(c.source for c in version.cells if c.cell_type == "markdown")
        assert not re.search(r"\{cite(:[pt])?\}`", text)
        assert "Goodfellow et al., 2014" in text
