# The two commands of the README:
#   make course   -- the main job: create the environment if needed, build the book in the
#                    default mode (full sizes, the shipped trained weights: the published
#                    book shows full-quality results), which executes every notebook once,
#                    with an execution cache, and export the executed notebooks to _build/notebooks/
#   make test     -- every test: lint, unit tests, notebook pairs, nbval over every notebook,
#                    then the book and a headless-Chromium check of its pages (fast mode)
# Both create .venv on first use. `make help` lists the other targets.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
SOURCES := $(sort $(wildcard notebooks/ch*.py))
BOOK_SOURCES := $(SOURCES) $(sort $(wildcard notebooks/appendix_*.py))
export COURSE_FAST ?= 1

# The book: fast and full builds keep separate HTML, doctrees and execution caches, so a
# full build never shows cached fast-mode outputs (the cache keys on cell sources only).
BOOK_MODE := $(if $(filter 0 false no off,$(COURSE_FAST)),full,fast)
BOOK_OUT ?= _build/$(if $(filter full,$(BOOK_MODE)),book-full,book)
BOOK_HTML := $(BOOK_OUT)/html
MATHJAX_VERSION ?= 3.2.2
MATHJAX := book/_mathjax/mathjax/tex-mml-chtml.js
STUDENT_OUT ?= _build/student
NBGRADER_OUT ?= _build/nbgrader
TEST_CHECKPOINTS := $(abspath _build/test-checkpoints)
NBVAL_OUTPUTS := $(abspath _build/test-executed)
NBVAL_PLUGIN := -p course_lib.nbval_outputs
# `make test` runs the unit tests and the notebooks in JOBS processes (pytest-xdist), each with
# THREADS torch threads, so that the cores stay busy through the many small steps, process
# start-ups and kernel round trips that one process leaves idle. Chapter 13 measures threads and
# processes, so it runs alone, with torch's default threads. JOBS=1 runs everything in one process.
NPROC := $(shell nproc 2>/dev/null || echo 1)
JOBS ?= $(if $(filter 1,$(NPROC)),1,2)
THREADS := $(shell n=$$(( $(NPROC) / $(JOBS) )); echo $$(( n > 0 ? n : 1 )))
XDIST = $(if $(filter 1,$(JOBS)),,-n $(JOBS))
NB_ALONE := $(filter %ch13_scaling.ipynb,$(NOTEBOOKS))

.PHONY: help venv course book notebooks student assignments test lint unit nbval browser chromium sync clean

help:
	@echo "make course   - build the book in the default mode (full sizes, shipped weights):"
	@echo "                _build/book-full/html/index.html, and the executed notebooks in _build/notebooks/"
	@echo "make book     - only the book (fast mode: _build/book/html; COURSE_FAST=0 for the default mode)"
	@echo "make test     - lint, unit tests, notebook pairs, nbval, book + headless-browser check"
	@echo "make student  - student versions of every notebook (solutions removed) in $(STUDENT_OUT)/"
	@echo "make notebooks - execute every notebook with nbconvert into _build/notebooks/ (without the book)"
	@echo "make assignments - an nbgrader course directory in $(NBGRADER_OUT)/ (see TEACHING.md)"
	@echo "make sync     - regenerate notebooks/*.ipynb from the py:percent sources, outputs cleared"

# JupyterLab started from the venv opens the py:percent sources as notebooks (jupytext is the
# default viewer for Python and Markdown files): the setting lives in the venv's own labconfig,
# so it touches nothing in the user's ~/.jupyter. ./postBuild does the same on Binder.
# Chapter 10's reference attacks (PGD, AutoAttack), which course_lib.attacks is tested against.
# Installed without its dependencies: its metadata pins requests~=2.25.1, which no resolver can
# reconcile with the book's packages, and it never imports requests (it needs only torch, numpy,
# scipy and tqdm, which the course has). ./postBuild installs the same.
TORCHATTACKS := torchattacks==3.5.1
LABCONFIG := $(VENV)/etc/jupyter/labconfig/default_setting_overrides.json

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e ".[dev]"
	$(PY) -m pip install --disable-pip-version-check -q --no-deps $(TORCHATTACKS)
	$(VENV)/bin/jupytext-config --settings-file $(LABCONFIG) set-default-viewer python markdown
	touch $(STAMP)

venv: $(STAMP)

# The main job: the book in the default mode (COURSE_FAST=0: full sizes, the shipped weights;
# COURSE_REQUIRE_SHIPPED=1 makes a named run without matching shipped weights an error instead
# of a silent half-hour retrain), then the executed notebooks exported from its cache.
course: $(STAMP)
	$(MAKE) --no-print-directory book COURSE_FAST=0 COURSE_REQUIRE_SHIPPED=1
	$(PY) -m course_lib.book --cache _build/book-full/jupyter_cache --out _build/notebooks $(BOOK_SOURCES)

# MathJax 3 for the book, from the npm registry (once; kept out of git). Only the combined
# TeX+MathML/CHTML script and its fonts are copied: MathJax finds the fonts beside itself.
$(MATHJAX):
	@command -v npm >/dev/null 2>&1 || { echo "npm is needed once to fetch MathJax $(MATHJAX_VERSION) (Debian: apt-get install npm)"; exit 1; }
	rm -rf book/_mathjax _build/mathjax-pack
	mkdir -p _build/mathjax-pack book/_mathjax/mathjax/output/chtml
	cd _build/mathjax-pack && npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null && tar xzf mathjax-$(MATHJAX_VERSION).tgz
	cp -r _build/mathjax-pack/package/es5/output/chtml/fonts book/_mathjax/mathjax/output/chtml/
	cp _build/mathjax-pack/package/LICENSE book/_mathjax/mathjax/
	cp _build/mathjax-pack/package/es5/tex-mml-chtml.js $(MATHJAX)
	rm -rf _build/mathjax-pack

# Jupyter Book 1: `jupyter-book config sphinx` turns _config.yml into book/conf.py (generated,
# not committed), then sphinx-build runs with -W -n --keep-going, so a cell error, a broken
# reference or an unknown citation fails the build. Executions are cached in
# $(BOOK_OUT)/jupyter_cache (keyed on the cells' sources), so a rebuild re-runs only changed notebooks.
# BOOK_EXECUTED=DIR first caches the notebooks executed in DIR (`make test` sets it to the
# notebooks nbval just ran, so the book shows those outputs instead of executing them again).
book: $(STAMP) $(MATHJAX)
	$(VENV)/bin/jupyter-book config sphinx book >/dev/null
	$(if $(BOOK_EXECUTED),$(PY) -m course_lib.book --cache $(abspath $(BOOK_OUT))/jupyter_cache \
		--add-executed $(BOOK_EXECUTED) $(BOOK_SOURCES))
	COURSE_PROGRESS=text $(PY) -m sphinx -b html -W -n --keep-going -q \
		-d $(BOOK_OUT)/doctrees -D nb_execution_cache_path=$(abspath $(BOOK_OUT))/jupyter_cache \
		book $(BOOK_HTML)
	@echo "The book ($(BOOK_MODE) mode) is in $(BOOK_HTML)/index.html"

notebooks: $(STAMP)
	mkdir -p _build/notebooks
	COURSE_PROGRESS=text $(PY) -m jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=1800 \
		--output-dir _build/notebooks $(NOTEBOOKS)
	@echo "Executed notebooks are in _build/notebooks/"

# Student versions: nbgrader's ClearSolutions replaces each ### BEGIN/END SOLUTION region by
# `raise NotImplementedError()`; check cells are kept (course_lib/assignments.py).
student: $(STAMP)
	$(PY) -m course_lib.assignments --out $(STUDENT_OUT) $(SOURCES)

# A teacher's nbgrader course directory: nbgrader_config.py and source/<chapter>/<chapter>.ipynb
# (the instructor version, solutions in; never the .py, which nbgrader would copy into the
# release). Then: cd $(NBGRADER_OUT) && nbgrader generate_assignment ch01_basics (TEACHING.md).
assignments: $(STAMP)
	$(PY) -m course_lib.assignments --nbgrader $(NBGRADER_OUT) $(SOURCES)

lint: $(STAMP)
	$(PY) -m ruff check .

unit: $(STAMP)
	OMP_NUM_THREADS=$(THREADS) $(PY) -m pytest -q --durations=12 $(XDIST) -m "not browser" tests

# nbval keeps what it executed (course_lib.nbval_outputs): each notebook that ran through is
# written to $(NBVAL_OUTPUTS)/, which `make test`'s book build then uses.
nbval: $(STAMP)
	@test -n "$(NOTEBOOKS)" || { echo "no notebooks/*.ipynb found: nothing for nbval to run"; exit 1; }
	rm -rf $(TEST_CHECKPOINTS) $(NBVAL_OUTPUTS)
	OMP_NUM_THREADS=$(THREADS) $(PY) -m pytest -q --durations=12 $(XDIST) --dist loadscope \
		$(NBVAL_PLUGIN) --nbval-lax $(filter-out $(NB_ALONE),$(NOTEBOOKS))
	$(if $(NB_ALONE),$(PY) -m pytest -q --durations=12 $(NBVAL_PLUGIN) --nbval-lax $(NB_ALONE))

# Debian's Chromium for the browser test; installed with apt-get when missing (CI runs as root).
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the browser test (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

browser: book chromium
	COURSE_BOOK_HTML=$(BOOK_HTML) $(PY) -m pytest -q -m browser tests

# Tests train from scratch: checkpoints go to a folder of the build that nbval empties first,
# never to the user's ~/.cache (a stale checkpoint there must not decide a test). The book
# built by `browser` then shows what nbval executed (a notebook nbval did not run through, or
# whose code changed since, is executed by the book, loading what nbval trained).
test nbval: export COURSE_CHECKPOINTS = $(TEST_CHECKPOINTS)
test nbval: export COURSE_NBVAL_OUTPUTS = $(NBVAL_OUTPUTS)
test: export BOOK_EXECUTED = $(NBVAL_OUTPUTS)
test: lint unit nbval browser

# The .py is the source: rewrite each .ipynb from it (keeping cell ids), then clear outputs, so a
# notebook saved with outputs in JupyterLab goes back to the committed form.
sync: $(STAMP)
	$(PY) -m jupytext --to ipynb --update notebooks/*.py
	$(PY) -m jupyter nbconvert --log-level=WARN --clear-output --inplace notebooks/*.ipynb

clean:
	rm -rf _build book/conf.py
