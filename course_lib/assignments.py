"""Student versions of the notebooks, and the exercises they contain (all chapters).

The course keeps one copy of each notebook, the instructor version, with the
solutions between nbgrader markers (see CONTRIBUTING.md)::

    # %% nbgrader={"grade": false, "grade_id": "ch01-ex1", "solution": true, ...}
    def f(x):
        ### BEGIN SOLUTION
        return 2 * x
        ### END SOLUTION

    # %% nbgrader={"grade": true, "grade_id": "ch01-ex1-check", "locked": true, "points": 1, ...}
    from course_lib.checks.ch01 import check_f
    check_f(f)

:func:`student_version` runs nbgrader's own preprocessors on it: ``ClearSolutions``
replaces each solution region by ``raise NotImplementedError()``, ``ClearHiddenTests``
drops hidden tests, ``LockCells`` locks the check cells, ``ClearOutput`` empties outputs
and ``CheckCellMetadata`` validates the nbgrader metadata (unique grade ids, points),
so ``nbgrader generate_assignment`` accepts the same notebooks. Notebooks are read
with jupytext, so the py:percent sources work directly.

:func:`exercises` pairs each check cell with the solution cells before it; the tests
run each pair on its own (instructor version passes, student version fails).

Command line (``make student``)::

    python -m course_lib.assignments --out _build/student notebooks/ch*.py
"""

from __future__ import annotations

import argparse
import copy
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
STUB = "raise NotImplementedError()"


@dataclass(frozen=True)
class Exercise:
    """One exercise: its solution cells and the check cell that grades them."""

    notebook: str
    grade_id: str  # the check cell's grade_id
    solutions: tuple[str, ...]  # sources of the solution cells, in order
    check: str  # source of the check cell

    @property
    def source(self) -> str:
        """The solution cells and the check cell as one self-contained program."""
        return "\n\n".join([*self.solutions, self.check])


def read_notebook(path: str | Path) -> NotebookNode:
    """Read a notebook from ``.ipynb`` or from its jupytext py:percent ``.py`` source."""
    import jupytext

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No notebook at {path}.")
    return jupytext.read(path)


def _nbgrader(cell: NotebookNode) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def exercises(nb: NotebookNode, name: str = "notebook") -> list[Exercise]:
    """The exercises of a notebook: every check (nbgrader ``grade``) code cell with the
    solution cells since the previous check cell.

    Raises ``ValueError`` for a solution cell with no check cell after it, and for a
    code cell with ``### BEGIN SOLUTION`` that is not marked as a solution cell.
    """
    out, pending = [], []
    for i, cell in enumerate(nb.cells):
        meta = _nbgrader(cell)
        if cell.cell_type == "code" and BEGIN_SOLUTION in cell.source and not meta.get("solution"):
            raise ValueError(
                f"{name}, cell {i}: has {BEGIN_SOLUTION!r} but no nbgrader solution metadata; "
                'start it with `# %% nbgrader={"solution": true, ...}` (see CONTRIBUTING.md).'
            )
        if meta.get("solution") and cell.cell_type == "code":
            pending.append(cell.source)
        elif meta.get("grade") and cell.cell_type == "code":
            if not pending:
                raise ValueError(f"{name}, cell {i}: check cell {meta.get('grade_id')!r} has no solution cell before it.")
            out.append(Exercise(name, meta.get("grade_id", f"cell-{i}"), tuple(pending), cell.source))
            pending = []
    if pending:
        raise ValueError(f"{name}: the last solution cell has no check cell after it.")
    return out


def student_version(nb: NotebookNode) -> NotebookNode:
    """A copy of ``nb`` with solutions replaced by ``raise NotImplementedError()``.

    Uses nbgrader's preprocessors (see the module docstring); check cells, prose and
    every other cell are kept. Outputs are cleared and jupytext pairing metadata dropped,
    so the result is a plain ``.ipynb`` to hand out.
    """
    from nbgrader.preprocessors import (
        CheckCellMetadata,
        ClearHiddenTests,
        ClearOutput,
        ClearSolutions,
        LockCells,
    )

    nb = copy.deepcopy(nb)
    nb.metadata.pop("jupytext", None)
    nb.metadata.setdefault("kernelspec", {}).setdefault("language", "python")
    nbformat.validator.normalize(nb)  # jupytext notebooks may lack cell ids
    _cite_as_text(nb)  # no MyST renderer in a plain Jupyter or in nbgrader's feedback
    resources: dict = {}
    for pre in (CheckCellMetadata(), ClearSolutions(), ClearHiddenTests(), LockCells(), ClearOutput()):
        nb, resources = pre.preprocess(nb, resources)
    return nb


def write_student_versions(sources: Iterable[str | Path], out_dir: str | Path) -> list[Path]:
    """Write ``<out_dir>/<stem>.ipynb``, the student version of each notebook in ``sources``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for src in sources:
        src = Path(src)
        student = student_version(read_notebook(src))
        target = out_dir / f"{src.stem}.ipynb"
        nbformat.write(student, target)
        written.append(target)
    return written


_CITE_ROLE = re.compile(r"\{cite(?::(p|t))?\}`([^`]+)`")
BIBLIOGRAPHY = Path(__file__).resolve().parents[1] / "book" / "references.bib"


def _author_year(entry) -> tuple[str, str]:
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    last = [" ".join(p.last_names) for p in people]
    names = last[0] if len(last) == 1 else " & ".join(last) if len(last) == 2 else f"{last[0]} et al."
    return names.replace("{", "").replace("}", ""), entry.fields.get("year", "n.d.")


def cite_as_text(markdown: str, bib: str | Path = BIBLIOGRAPHY) -> str:
    """Replace MyST citation roles by author-year text, as the book renders them.

    ``{cite}`a,b``` becomes "(Goodfellow et al., 2014; Kingma & Welling, 2014)" and
    ``{cite:t}`a``` becomes "Goodfellow et al. (2014)". JupyterLab without a MyST extension
    and nbgrader's feedback pages show the raw roles otherwise. Unknown keys stay as roles.
    """
    if "{cite" not in markdown or not Path(bib).is_file():
        return markdown
    from pybtex.database import parse_file

    entries = parse_file(str(bib)).entries

    def replace(match: re.Match) -> str:
        keys = [k.strip() for k in match.group(2).split(",")]
        if not all(k in entries for k in keys):
            return match.group(0)
        refs = [_author_year(entries[k]) for k in keys]
        if match.group(1) == "t":
            return "; ".join(f"{names} ({year})" for names, year in refs)
        return "(" + "; ".join(f"{names}, {year}" for names, year in refs) + ")"

    return _CITE_ROLE.sub(replace, markdown)


def _cite_as_text(nb: NotebookNode) -> None:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = cite_as_text(cell.source)


def instructor_version(nb: NotebookNode) -> NotebookNode:
    """A plain ``.ipynb`` copy of ``nb`` with its solutions, for nbgrader's ``source/``:
    outputs cleared, jupytext pairing metadata dropped, citations as author-year text
    (:func:`cite_as_text`), nbgrader metadata validated."""
    from nbgrader.preprocessors import CheckCellMetadata, ClearOutput

    nb = copy.deepcopy(nb)
    nb.metadata.pop("jupytext", None)
    nb.metadata.setdefault("kernelspec", {}).setdefault("language", "python")
    nbformat.validator.normalize(nb)
    _cite_as_text(nb)
    resources: dict = {}
    for pre in (CheckCellMetadata(), ClearOutput()):
        nb, resources = pre.preprocess(nb, resources)
    return nb


# Written into the course directory by write_nbgrader_course. nbgrader executes each
# notebook in a kernel that inherits this process's environment, so the environment set
# here is the kernel's: fast mode (a whole chapter in well under a minute on a laptop), text
# progress bars (the feedback pages have no widget front end), checkpoints kept inside the
# course directory (a stale one from elsewhere cannot decide a grade).
NBGRADER_CONFIG = """\
# nbgrader configuration for the course (written by `make assignments`; see TEACHING.md).
import os
from pathlib import Path

c = get_config()  # noqa: F821 (defined by traitlets when nbgrader reads this file)
here = Path(__file__).resolve().parent
c.CourseDirectory.root = str(here)
c.CourseDirectory.course_id = "dgm-course"
# One cell may train a model: nbgrader's default of 30 s per cell is too short.
c.Execute.timeout = {timeout}
# The grading kernel inherits this environment. Fast mode: set "0" to grade at full size.
os.environ["COURSE_FAST"] = "1"
os.environ["COURSE_PROGRESS"] = "text"
os.environ.setdefault("COURSE_CHECKPOINTS", str(here / "checkpoints"))
os.environ.setdefault("MPLBACKEND", "Agg")
"""


def write_nbgrader_course(
    sources: Iterable[str | Path], root: str | Path, timeout: int = 300
) -> list[Path]:
    """Write a ready nbgrader course directory at ``root``.

    ``root/nbgrader_config.py`` (cell timeout ``timeout`` seconds, fast mode and text progress
    bars for the grading kernel) and ``root/source/<stem>/<stem>.ipynb``, the instructor version
    of each notebook. Only the ``.ipynb`` goes into ``source/``: nbgrader copies every file of a
    source folder into the release, so a ``.py`` source there would hand out the solutions.
    Returns the notebooks written. Then, from ``root``: ``nbgrader generate_assignment <stem>``.
    """
    root = Path(root)
    if timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
    (root / "source").mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text(NBGRADER_CONFIG.format(timeout=int(timeout)))
    written = []
    for src in sources:
        src = Path(src)
        nb = read_notebook(src)
        if not exercises(nb, str(src)):
            continue  # a chapter without exercises is no assignment
        folder = root / "source" / src.stem
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.iterdir():  # only the notebook: never a .py with the solutions
            if stale.is_file():
                stale.unlink()
        target = folder / f"{src.stem}.ipynb"
        nbformat.write(instructor_version(nb), target)
        written.append(target)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write student versions of course notebooks.")
    parser.add_argument("notebooks", nargs="+", help="notebooks/chNN_*.py (or .ipynb)")
    parser.add_argument("--out", default="_build/student", help="output folder (default: %(default)s)")
    parser.add_argument(
        "--nbgrader", metavar="DIR", help="instead, write an nbgrader course directory at DIR"
    )
    args = parser.parse_args(argv)
    if args.nbgrader:
        written = write_nbgrader_course(args.notebooks, args.nbgrader)
        print(f"Wrote an nbgrader course with {len(written)} assignments to {args.nbgrader}/ "
              f"(see TEACHING.md): cd {args.nbgrader} && nbgrader generate_assignment <chapter>")
        return 0
    written = write_student_versions(args.notebooks, args.out)
    total = sum(len(exercises(read_notebook(src), str(src))) for src in args.notebooks)
    print(f"Wrote {len(written)} student notebooks with {total} exercises to {args.out}/")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
