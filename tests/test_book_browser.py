"""The built book, opened in headless Chromium: math typeset by the local MathJax, figures loaded,
every chapter in the navigation, nothing fetched from outside.

Run by `make browser` (part of `make test`), which builds the book, installs Debian's chromium if
missing and sets COURSE_BOOK_HTML; then a missing book or browser is a failure. Run on its own
(`pytest -m browser`) it skips when there is no built book (_build/book/html) or no browser.
Chromium gets a host-resolver rule that maps every host except 127.0.0.1 to nothing, so the
pages must work offline. A screenshot of chapter 1 is written to <html>/../screenshots/.
"""

import functools
import html.parser
import os
import shutil
import subprocess
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = "COURSE_BOOK_HTML" in os.environ
HTML = Path(os.environ.get("COURSE_BOOK_HTML", ROOT / "_build" / "book" / "html")).resolve()
CHAPTERS = [p.stem for p in [*sorted((ROOT / "notebooks").glob("ch*.py")),
                              *sorted((ROOT / "notebooks").glob("appendix_*.py"))]]  # the book's order
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
    "--virtual-time-budget=8000", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


def _unavailable(reason: str):
    if REQUIRED:
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    _unavailable("no chromium on PATH: `make chromium` installs Debian's package")


@pytest.fixture(scope="module")
def site():
    """Serve the built HTML on 127.0.0.1 and record (path, status) of every request."""
    if not (HTML / "index.html").is_file():
        _unavailable(f"no built book at {HTML}: run `make book`")
    requests: list[tuple[str, int]] = []

    class Handler(SimpleHTTPRequestHandler):
        def log_request(self, code="-", size="-"):
            requests.append((self.path.split("?")[0], int(code)))

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(HTML)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


def _run(chromium: str, *args: str, tries: int = 3) -> subprocess.CompletedProcess:
    """Run headless Chromium once per fresh profile. A browser killed by a signal (a negative
    return code: headless Chromium on a busy 2-core CI machine now and then segfaults before it
    renders anything) is started again, up to `tries` times; any other failure is returned."""
    for _ in range(tries):
        with tempfile.TemporaryDirectory() as profile:
            proc = subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", *args],
                                  capture_output=True, text=True, timeout=180)
        if proc.returncode >= 0:
            break
    return proc


@functools.cache
def _dom(chromium: str, url: str) -> str:
    proc = _run(chromium, "--dump-dom", url)
    assert proc.returncode == 0 and "<html" in proc.stdout, f"chromium failed on {url}: {proc.stderr[-2000:]}"
    return proc.stdout


class Page(html.parser.HTMLParser):
    """The parts of a rendered page the tests look at."""

    def __init__(self, dom: str):
        super().__init__()
        self.stack: list[tuple[str, set[str]]] = []
        self.math = 0  # Sphinx math elements (class "math")
        self.math_typeset = 0  # ... that contain MathJax output
        self.mjx = 0  # <mjx-container> elements
        self.errors = 0  # <mjx-merror>: TeX that MathJax could not typeset
        self.images: list[str] = []
        self.nav: list[tuple[str, str]] = []  # (href, text) of links in the sidebar navigation
        self.text: list[str] = []  # visible text outside code, scripts and styles
        self._math_open: list[bool] = []
        self._link: list | None = None
        self.feed(dom)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = set((attrs.get("class") or "").split())
        if tag == "mjx-container":
            self.mjx += 1
            if self._math_open and not self._math_open[-1]:
                self._math_open[-1] = True
                self.math_typeset += 1
        if tag == "mjx-merror":
            self.errors += 1
        if "math" in classes and tag in ("span", "div"):
            self.math += 1
            self._math_open.append(False)
        elif self._math_open and tag in ("span", "div"):
            self._math_open.append(None)  # nested element, not a math root
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        in_nav = any(t == "nav" and "bd-docs-nav" in c for t, c in self.stack)
        if tag == "a" and in_nav:
            self._link = [attrs.get("href", ""), ""]
        self.stack.append((tag, classes))

    def handle_endtag(self, tag):
        while self.stack:
            t, _ = self.stack.pop()
            if t == tag:
                break
        if tag in ("span", "div") and self._math_open:
            self._math_open.pop()
        if tag == "a" and self._link is not None:
            self.nav.append((self._link[0], self._link[1].strip()))
            self._link = None

    def handle_data(self, data):
        if self._link is not None:
            self._link[1] += data
        if not any(t in ("script", "style", "pre", "code", "mjx-container") for t, _ in self.stack):
            self.text.append(data)


@pytest.fixture(scope="module")
def pages(chromium, site):
    base, _ = site
    return {name: Page(_dom(chromium, f"{base}/notebooks/{name}.html")) for name in CHAPTERS}


def test_navigation_lists_every_chapter(chromium, site):
    base, _ = site
    for page in ("index.html", f"notebooks/{CHAPTERS[-1]}.html"):
        nav = Page(_dom(chromium, f"{base}/{page}")).nav
        # the current page links to itself as "#"
        hrefs = [h.split("#")[0].rsplit("/", 1)[-1] or page.rsplit("/", 1)[-1] for h, _ in nav]
        for name in CHAPTERS:
            assert f"{name}.html" in hrefs, f"{page}: the navigation does not list {name}"
            text = nav[hrefs.index(f"{name}.html")][1]
            title = "Appendix " if name.startswith("appendix_") else f"Chapter {int(name[2:4])} "
            assert text.startswith(title), f"{page}: nav entry {text!r} for {name}"
        positions = [hrefs.index(f"{name}.html") for name in CHAPTERS]
        assert positions == sorted(positions), "chapters appear in order"
        assert "bibliography.html" in hrefs


@pytest.mark.parametrize("name", CHAPTERS)
def test_math_is_typeset_by_mathjax(pages, name):
    page = pages[name]
    text = "".join(page.text)
    for raw in ("$$", "\\[", "\\("):
        assert raw not in text, f"{name}: raw {raw} left in the page: the math was not parsed or not typeset"
    assert page.errors == 0, f"{name}: MathJax reported {page.errors} TeX errors (mjx-merror)"
    assert page.math_typeset == page.math, f"{name}: {page.math - page.math_typeset} of {page.math} equations not typeset"
    assert page.mjx >= page.math


def test_math_is_present(pages):
    assert pages["ch01_basics"].math >= 20, "chapter 1 derives its results in LaTeX"
    assert sum(p.mjx for p in pages.values()) > 0


def _expected_figures(name: str) -> int:
    from course_lib.book import executed_notebook

    nb = executed_notebook(ROOT / "notebooks" / f"{name}.py", HTML.parent / "jupyter_cache")
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


@pytest.mark.parametrize("name", CHAPTERS)
def test_figures_are_present_and_load(pages, site, name):
    _, requests = site
    figures = [src for src in pages[name].images if "_images/" in src]
    assert len(figures) == _expected_figures(name), f"{name}: the executed notebook's figures are not all in the page"
    served = dict(requests)
    for src in figures:
        path = "/_images/" + src.split("_images/", 1)[1]
        assert served.get(path) == 200, f"{name}: figure {src} was not loaded by the browser"
        data = (HTML / path.lstrip("/")).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000, f"{src} is not a real PNG"
    if name == "ch01_basics":
        assert len(figures) >= 4


def test_nothing_missing_and_nothing_external(pages, site):
    _, requests = site
    missing = sorted({p for p, code in requests if code >= 400 and p != "/favicon.ico"})
    assert not missing, f"the pages asked for files the build did not produce: {missing}"
    assert any(p.startswith("/_static/mathjax/output/chtml/fonts/") for p, _ in requests), "MathJax fonts not loaded"
    for page in [HTML / "index.html", *(HTML / "notebooks").glob("*.html")]:
        source = page.read_text()
        for marker in ('src="http', 'src="//', 'rel="stylesheet" href="http'):
            assert marker not in source, f"{page.name} loads a resource from the network ({marker})"


def test_screenshot_of_chapter_1(chromium, site):
    base, _ = site
    out = HTML.parent / "screenshots" / "ch01_basics.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    # a tall window: the title, section 1's equations and section 2's first figure
    proc = _run(chromium, "--window-size=1280,5600", f"--screenshot={out}", f"{base}/notebooks/ch01_basics.html")
    assert proc.returncode == 0 and out.is_file(), proc.stderr[-2000:]
    from PIL import Image

    with Image.open(out) as img:
        assert img.size == (1280, 5600)
        colours = img.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is None or len(colours) > 200, "the screenshot is (nearly) blank"


@pytest.mark.parametrize("name", CHAPTERS)
def test_each_chapter_offers_its_ipynb(site, name):
    """The download menu of a chapter holds its notebook (the sources are .py), and the file is
    the chapter's notebook."""
    import json

    source = (HTML / "notebooks" / f"{name}.html").read_text()
    assert f"_sources/notebooks/{name}.ipynb" in source, f"{name}: no .ipynb in the download menu"
    nb = json.loads((HTML / "_sources" / "notebooks" / f"{name}.ipynb").read_text())
    assert nb["cells"][0]["source"][0].startswith(("# Chapter", "# Appendix"))
