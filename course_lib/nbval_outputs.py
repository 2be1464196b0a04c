"""A pytest plugin that keeps what nbval executed, so the book need not execute it again.

nbval (``pytest --nbval-lax notebooks/*.ipynb``) runs every cell of every notebook in a fresh
kernel and checks that none raises; it then throws the outputs away. ``make test`` builds the
book right after, from the same notebooks in the same mode, and Jupyter Book would execute them
all a second time. With this plugin loaded (``pytest -p course_lib.nbval_outputs``) and
``COURSE_NBVAL_OUTPUTS=DIR`` set, each notebook whose every cell passed is written, with the
outputs nbval received, to ``DIR/<notebook>.ipynb``; ``python -m course_lib.book --add-executed
DIR`` then puts them into the book's execution cache (:func:`course_lib.book.add_executed`).

A notebook with a failed or skipped cell is not written, so the book executes it itself.
nbval keeps only stream, display and result outputs: a notebook that replaces its outputs
(``clear_output``, ``update_display``) would show every version in the book; none does.
Works under pytest-xdist: a notebook's cells run in one worker (nbval needs ``--dist
loadscope``), and each file is written whole under a temporary name, then renamed.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import nbformat
import pytest

OUTPUTS_ENV = "COURSE_NBVAL_OUTPUTS"

_failed: set[str] = set()  # notebooks with a failed cell
_seconds: dict[str, float] = {}  # notebook -> seconds its cells took
_outputs: dict[str, dict[int, list]] = {}  # notebook -> {id(cell): the outputs nbval received}


def _is_cell(item) -> bool:
    return hasattr(item, "cell") and hasattr(item, "test_outputs") and hasattr(item.parent, "nb")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if _is_cell(item):
        key = str(item.path)
        if report.failed or report.skipped:
            _failed.add(key)
        if call.when == "call":
            _seconds[key] = _seconds.get(key, 0.0) + report.duration
            if item.test_outputs is not None:
                _outputs.setdefault(key, {})[id(item.cell)] = item.test_outputs


def pytest_runtest_teardown(item, nextitem):
    out_dir = os.environ.get(OUTPUTS_ENV)
    if not out_dir or not _is_cell(item):
        return
    if nextitem is not None and nextitem.parent is item.parent:
        return  # not the notebook's last cell
    key = str(item.path)
    if key in _failed:
        return
    write_notebook(
        item.parent.nb,
        _outputs.pop(key, {}),
        Path(out_dir) / f"{item.path.stem}.ipynb",
        seconds=_seconds.get(key, 0.0),
    )


def _ends_in_semicolon(source: str) -> bool:
    """Whether IPython would hide the cell's value (``expr;``), as it does in a notebook.

    nbval executes with ``store_history=False``, so IPython's display hook cannot see the cell's
    source and shows the value even after a ``;`` (``<matplotlib.legend.Legend at 0x...>``
    under a figure); the value is dropped here with IPython's own test, on the cell as IPython
    parses it.
    """
    from IPython.core.displayhook import DisplayHook
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return DisplayHook.semicolon_at_end_of_expression(
            TransformerManager().transform_cell(source)
        )
    except Exception:  # a cell IPython cannot tokenize: keep its outputs
        return False


def write_notebook(nb, outputs: dict[int, list], target_path: Path, seconds: float) -> Path | None:
    """Write ``nb`` with each code cell's outputs from ``outputs`` (keyed by ``id(cell)``).

    Writes nothing and returns None when a code cell has no outputs recorded (it did not run).
    """
    if any(id(cell) not in outputs for cell in nb.cells if cell.cell_type == "code"):
        return None
    executed = copy.deepcopy(nb)
    for count, (target, cell) in enumerate(
        ((t, c) for t, c in zip(executed.cells, nb.cells) if c.cell_type == "code"), start=1
    ):
        target.outputs = copy.deepcopy(outputs[id(cell)])
        if _ends_in_semicolon(cell.source):
            target.outputs = [o for o in target.outputs if o.output_type != "execute_result"]
        target.execution_count = count
        for out in target.outputs:
            if out.output_type == "execute_result":
                out.execution_count = count
    executed.metadata["course_nbval_seconds"] = round(seconds, 3)
    target_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = target_path.with_name(f".{target_path.name}.{os.getpid()}.partial")
    try:
        nbformat.write(executed, tmp)
        os.replace(tmp, target_path)
    finally:
        tmp.unlink(missing_ok=True)  # a failed write leaves nothing behind
    return target_path
