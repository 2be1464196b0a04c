"""Sphinx extension for the book: an ``.ipynb`` entry in each chapter's download menu.

The chapters' sources are py:percent files, so the theme's download menu offers only the
``.py``. This extension tells sphinx-book-theme that a notebook file exists for the page
(``ipynb_source``, which the theme turns into a "Download notebook file" link under
``_sources/``) and copies the paired ``notebooks/*.ipynb`` there when the build ends.
"""

from __future__ import annotations

import shutil
from pathlib import Path


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


def setup(app):
    # before sphinx-book-theme builds its header buttons (priority 501)
    app.connect("html-page-context", _set_ipynb_source, priority=400)
    app.connect("build-finished", _copy_notebooks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
