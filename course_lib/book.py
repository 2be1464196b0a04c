"""The executed notebooks of the book build (``make course``), taken from its execution cache.

The book (Jupyter Book 1, ``book/``) executes every notebook once and stores the results in a
jupyter-cache folder (``_build/book/jupyter_cache`` in fast mode). :func:`executed_notebook`
returns a notebook with the cached outputs merged in, without running anything, and
``python -m course_lib.book --cache DIR --out DIR notebooks/ch*.py`` writes them all as
``.ipynb`` (``make course`` puts them in ``_build/notebooks/``).

(myst-nb also writes ``jupyter_execute/*.ipynb`` beside the HTML, but a page served from the
cache is written there without its outputs, so that folder is not a reliable copy.)
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from pathlib import Path

import nbformat
from nbformat import NotebookNode


def executed_notebook(source: str | Path, cache_dir: str | Path) -> NotebookNode:
    """The notebook ``source`` (py:percent or .ipynb) with its outputs from the book's cache.

    Raises ``LookupError`` when the cache holds no execution of the current source (the
    book was not built since the notebook last changed: run ``make book``).
    """
    import jupytext
    from jupyter_cache import get_cache

    cache_dir = Path(cache_dir)
    if not cache_dir.is_dir():
        raise LookupError(f"No execution cache at {cache_dir}: build the book first (`make book`).")
    nb = jupytext.read(source)
    try:
        _, executed = get_cache(str(cache_dir)).merge_match_into_notebook(nb)
    except KeyError as err:
        raise LookupError(
            f"{source} has no cached execution in {cache_dir}: it changed since the last book "
            "build. Run `make book`."
        ) from err
    return executed


def export_executed(sources: Iterable[str | Path], cache_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Write ``<out_dir>/<stem>.ipynb``, the executed version of each notebook, from the cache."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for src in sources:
        nb = executed_notebook(src, cache_dir)
        nb.metadata.pop("jupytext", None)
        target = out_dir / f"{Path(src).stem}.ipynb"
        nbformat.write(nb, target)
        written.append(target)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Export the book's executed notebooks from its cache.")
    parser.add_argument("notebooks", nargs="+", help="notebooks/chNN_*.py")
    parser.add_argument("--cache", required=True, help="the book's jupyter-cache folder")
    parser.add_argument("--out", required=True, help="output folder")
    args = parser.parse_args(argv)
    written = export_executed(args.notebooks, args.cache, args.out)
    print(f"Wrote {len(written)} executed notebooks to {args.out}/")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
