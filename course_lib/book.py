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

``make test`` runs nbval over the notebooks and then builds the book from the same sources in
the same mode; :func:`add_executed` puts the notebooks nbval executed (written by the pytest
plugin :mod:`course_lib.nbval_outputs`) into the book's cache first, so the book shows those
outputs instead of executing every notebook a second time. A notebook whose code changed since,
or that nbval did not run through, is left out, and the book executes it as usual.

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


def add_executed(sources: Iterable[str | Path], executed_dir: str | Path, cache_dir: str | Path) -> list[Path]:
    """Cache, for the book, the executed notebooks in ``executed_dir`` (``<stem>.ipynb``).

    Each source (py:percent or .ipynb) is read as the book reads it, and its code cells take
    the outputs of ``executed_dir/<stem>.ipynb`` when that notebook has the same code cells,
    source for source; otherwise the source is skipped (the book then executes it). Returns the
    sources that were cached.
    """
    import jupytext
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(str(cache_dir))
    added = []
    for src in map(Path, sources):
        ran_path = Path(executed_dir) / f"{src.stem}.ipynb"
        if not ran_path.is_file():
            continue
        nb = jupytext.read(src)
        ran = nbformat.read(ran_path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        ran_code = [c for c in ran.cells if c.cell_type == "code"]
        if [c.source for c in code] != [c.source for c in ran_code]:
            continue
        for cell, ran_cell in zip(code, ran_code):
            cell.outputs = ran_cell.outputs
            cell.execution_count = ran_cell.execution_count
        seconds = ran.metadata.get("course_nbval_seconds")
        cache.cache_notebook_bundle(
            CacheBundleIn(nb, str(src.resolve()), data={"execution_seconds": seconds}),
            check_validity=False,
            overwrite=True,
        )
        added.append(src)
    return added


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
    parser = argparse.ArgumentParser(
        description="Export the book's executed notebooks from its cache (--out), or put notebooks "
        "executed elsewhere into it (--add-executed)."
    )
    parser.add_argument("notebooks", nargs="+", help="notebooks/chNN_*.py")
    parser.add_argument("--cache", required=True, help="the book's jupyter-cache folder")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--out", help="write the executed notebooks to this folder")
    action.add_argument("--add-executed", metavar="DIR", help="cache the executed notebooks DIR/<stem>.ipynb")
    args = parser.parse_args(argv)
    if args.add_executed is not None:
        added = add_executed(args.notebooks, args.add_executed, args.cache)
        print(
            f"Cached {len(added)} of {len(args.notebooks)} notebooks executed in {args.add_executed}/ "
            "(the book executes the others)"
        )
        return 0
    written = export_executed(args.notebooks, args.cache, args.out)
    print(f"Wrote {len(written)} executed notebooks to {args.out}/")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
