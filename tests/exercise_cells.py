"""Run a notebook's exercise cells on their own: the instructor version must pass its check,
the student version (solution replaced by ``raise NotImplementedError()``) must fail it.

CONTRIBUTING.md asks for self-contained solution + check cells; this helper proves it.
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = re.compile(r"^([ \t]*)### BEGIN SOLUTION\n.*?^[ \t]*### END SOLUTION\n?", re.S | re.M)


def exercise_pairs(notebook: str) -> list[tuple[str, str, str]]:
    """``(grade_id, solution source, check source)`` for each exercise of ``notebooks/<notebook>.py``."""
    path = ROOT / "notebooks" / f"{notebook}.py"
    cells = jupytext.read(path).cells
    pairs = []
    for cell, nxt in zip(cells, cells[1:]):
        meta, nmeta = cell.metadata.get("nbgrader", {}), nxt.metadata.get("nbgrader", {})
        if meta.get("solution") and nmeta.get("grade"):
            pairs.append((meta["grade_id"], cell.source, nxt.source))
    return pairs


def student_version(source: str) -> str:
    """Replace each solution block by ``raise NotImplementedError()`` at the block's indentation."""
    return SOLUTION.sub(lambda m: f"{m.group(1)}raise NotImplementedError()\n", source)


def run_pair(solution: str, check: str) -> None:
    namespace: dict = {"__name__": "exercise"}
    exec(compile(solution, "<solution>", "exec"), namespace)
    exec(compile(check, "<check>", "exec"), namespace)
