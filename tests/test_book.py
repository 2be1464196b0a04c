"""The book's sources agree with the notebooks: every chapter is in the table of contents, every
citation key is in references.bib, and the configuration keeps the build strict and offline.

These run without building the book; tests/test_book_browser.py checks the built pages."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
# the chapters in order, then the appendix (the book's order)
CHAPTERS = sorted((ROOT / "notebooks").glob("ch*.py")) + sorted((ROOT / "notebooks").glob("appendix_*.py"))
CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")


def toc_files() -> list[str]:
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    files = [toc["root"]]
    for entry in toc.get("chapters", []) + [c for part in toc.get("parts", []) for c in part["chapters"]]:
        files.append(entry["file"])
    return files


def bib_keys() -> set[str]:
    from pybtex.database import parse_file

    return set(parse_file(str(BOOK / "references.bib")).entries.keys())


def test_chapters_exist():
    assert len(CHAPTERS) >= 2, "notebooks/ch*.py: chapter sources not found"


def test_every_chapter_is_in_the_toc_in_order():
    listed = [f for f in toc_files() if f.startswith("notebooks/")]
    expected = [f"notebooks/{c.stem}" for c in CHAPTERS]
    missing = sorted(set(expected) - set(listed))
    assert not missing, f"add to book/_toc.yml: {['- file: ' + m for m in missing]}"
    assert listed == expected, "book/_toc.yml must list the chapters in chapter order"


def test_toc_entries_exist():
    for f in toc_files():
        stem = BOOK / f
        assert any(stem.with_suffix(s).exists() for s in (".md", ".py", ".ipynb")), f"{f} in _toc.yml has no source"


def test_notebooks_link_is_a_relative_symlink():
    link = BOOK / "notebooks"
    assert link.is_symlink() and str(link.readlink()) == "../notebooks"


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_title(source):
    first = source.read_text().split("# %% [markdown]", 1)[1].lstrip().splitlines()[0]
    if source.stem.startswith("appendix_"):
        assert first.startswith("# # Appendix — "), f"{source.name}: first cell must be '# Appendix — Title'"
        return
    number = int(re.match(r"ch(\d+)_", source.stem).group(1))
    assert first.startswith(f"# # Chapter {number} — "), f"{source.name}: first cell must be '# Chapter {number} — Title'"


def test_every_citation_is_in_references_bib():
    keys = bib_keys()
    used = {}
    for path in [*CHAPTERS, *BOOK.glob("*.md")]:
        for match in CITE.finditer(path.read_text()):
            for key in match.group(1).split(","):
                used.setdefault(key.strip(), path.name)
    unknown = {k: f for k, f in used.items() if k not in keys}
    assert not unknown, f"cited but not in book/references.bib: {unknown}"
    assert used, "no chapter cites anything"


def test_references_bib_has_the_course_papers():
    needed = {
        "goodfellow2014gan", "kingma2014vae", "burda2016iwae", "heusel2017fid", "salimans2016improved",
        "binkowski2018kid", "kynkaanniemi2019pr", "lin2018pacgan", "radford2016dcgan", "mirza2014cgan",
        "higgins2017betavae", "sohn2015cvae", "arjovsky2017wgan", "gulrajani2017wgangp",
        "goodfellow2015fgsm", "madry2018pgd", "bishop2006prml", "mackay2003itila",
    }
    assert needed <= bib_keys(), sorted(needed - bib_keys())


def test_config_is_strict_cached_and_offline():
    cfg = yaml.safe_load((BOOK / "_config.yml").read_text())
    assert cfg["execute"]["execute_notebooks"] == "cache"
    assert cfg["execute"]["allow_errors"] is False
    sphinx = cfg["sphinx"]["config"]
    assert not sphinx["mathjax_path"].startswith(("http:", "https:", "//")), "MathJax must be local"
    assert "_static" not in sphinx["html_static_path"]
    assert sphinx["nb_custom_formats"][".py"][1] == {"fmt": "py:percent"}
    make = (ROOT / "Makefile").read_text()
    assert "-W -n --keep-going" in make, "the book build must fail on warnings and broken references"
    assert "npm pack" in make


def test_executed_notebook_comes_from_the_cache(tmp_path):
    import jupytext
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    from course_lib.book import executed_notebook, export_executed

    source = tmp_path / "ch99_demo.py"
    source.write_text("# %%\nprint('hi')\n")
    nb = jupytext.read(source)
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi\n")]
    get_cache(str(tmp_path / "cache")).cache_notebook_bundle(CacheBundleIn(nb, str(source)), check_validity=False)

    executed = executed_notebook(source, tmp_path / "cache")
    assert executed.cells[0].outputs[0]["text"] == "hi\n"
    out = export_executed([source], tmp_path / "cache", tmp_path / "out")
    assert nbformat.read(out[0], as_version=4).cells[0].outputs[0]["text"] == "hi\n"

    source.write_text("# %%\nprint('changed')\n")
    with pytest.raises(LookupError, match="make book"):
        executed_notebook(source, tmp_path / "cache")
    with pytest.raises(LookupError, match="No execution cache"):
        executed_notebook(source, tmp_path / "nothing")


def _notebook_file(path, *sources):
    import jupytext
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path.with_suffix(".ipynb"))
    jupytext.write(nb, path.with_suffix(".py"), fmt="py:percent")


def test_nbval_keeps_what_it_executed_and_the_book_caches_it(tmp_path):
    """`make test`'s book shows what nbval executed: course_lib.nbval_outputs writes each notebook
    that ran through with nbval's outputs, and add_executed caches them for the book."""
    import os
    import subprocess
    import sys

    import nbformat

    from course_lib.book import add_executed, executed_notebook

    _notebook_file(tmp_path / "ch98_ok", "print('hi')", "6 * 7", "x = [1];\nx;", "import sys\nsys.stderr.write('bar\\n');")
    _notebook_file(tmp_path / "ch99_fails", "print('before')", "1 / 0")
    out = tmp_path / "executed"
    env = dict(os.environ, COURSE_NBVAL_OUTPUTS=str(out))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "course_lib.nbval_outputs",
         "--nbval-lax", "ch98_ok.ipynb", "ch99_fails.ipynb"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert "1 failed, 5 passed" in run.stdout, run.stdout + run.stderr
    assert sorted(p.name for p in out.iterdir()) == ["ch98_ok.ipynb"], "a failed notebook must not be kept"

    cells = nbformat.read(out / "ch98_ok.ipynb", as_version=4).cells
    assert [c.execution_count for c in cells] == [1, 2, 3, 4]
    assert cells[0].outputs[0]["text"] == "hi\n"
    assert cells[1].outputs[0]["output_type"] == "execute_result"
    assert cells[1].outputs[0]["data"]["text/plain"] == "42"
    assert cells[2].outputs == [], "a value after ';' is hidden, as in a notebook"
    assert [(o["output_type"], o["name"], o["text"]) for o in cells[3].outputs] == [("stream", "stderr", "bar\n")]

    cache = tmp_path / "cache"
    sources = [tmp_path / "ch98_ok.py", tmp_path / "ch99_fails.py"]
    assert add_executed(sources, out, cache) == [sources[0]]
    assert executed_notebook(sources[0], cache).cells[1].outputs[0]["data"]["text/plain"] == "42"
    with pytest.raises(LookupError):
        executed_notebook(sources[1], cache)

    # a source edited after nbval ran is not given the old outputs (the book executes it)
    _notebook_file(tmp_path / "ch98_ok", "print('changed')", "6 * 7", "x = [1];\nx;", "pass")
    assert add_executed(sources, out, tmp_path / "cache2") == []
