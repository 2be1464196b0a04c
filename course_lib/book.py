"""The executed notebooks of the book build (``make course``), taken from its execution cache.

The book (Jupyter Book 1, ``book/``) executes every notebook once and stores the results in a
jupyter-cache folder (``_build/book/jupyter_cache`` in fast mode). :func:`executed_notebook`
returns a notebook with the cached outputs merged in, without running anything, and
``python -m course_lib.book --cache DIR --out DIR notebooks/ch*.py`` writes them all as
``.ipynb`` (``make course`` puts them in ``_build/notebooks/``).

It is also the book's Sphinx extension (``sphinx.extra_extensions`` in ``book/_config.yml``):
the chapters' sources are py:percent files, so the theme's download menu would offer only the
``.py``; :func:`setup` tells sphinx-book-theme that a notebook exists for each chapter
(``ipynb_source``, shown as "Download notebook file") and copies the paired
``notebooks/*.ipynb`` under ``_sources/`` when the build ends.

(myst-nb also writes ``jupyter_execute/*.ipynb`` beside the HTML, but a page served from the
cache is written there without its outputs, so that folder is not a reliable copy.)
"""

from __future__ import annotations

import argparse
import shutil
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


def _set_ipynb_source(app, pagename, templatename, context, doctree):
    source = Path(app.srcdir) / f"{pagename}.py"
    if pagename.startswith("notebooks/") and source.with_suffix(".ipynb").is_file():
        context["ipynb_source"] = f"{pagename}.ipynb"


def _copy_notebooks(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_sources" / "notebooks"
    target.mkdir(parents=True, exist_ok=True)
    for docname in app.env.found_docs:
        ipynb = Path(app.srcdir) / f"{docname}.ipynb"
        if docname.startswith("notebooks/") and ipynb.is_file():
            shutil.copyfile(ipynb, target / ipynb.name)


def setup(app) -> dict:
    """Sphinx entry point: the .ipynb entry of each chapter's download menu."""
    # before sphinx-book-theme builds its header buttons (priority 501)
    app.connect("html-page-context", _set_ipynb_source, priority=400)
    app.connect("build-finished", _copy_notebooks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


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
