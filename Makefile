# The two commands of the README:
#   make course   -- the main job: create the environment if needed, execute every notebook (fast mode)
#   make test     -- every test: lint, unit tests, notebook pairs, nbval over every notebook (fast mode)
# Both create .venv on first use. `make help` lists the other targets.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
export COURSE_FAST ?= 1

.PHONY: help venv course notebooks test lint unit nbval sync clean

help:
	@echo "make course  - execute every notebook in fast mode into _build/notebooks (creates .venv)"
	@echo "make test    - lint, unit tests, notebook pair check, nbval (creates .venv)"
	@echo "make sync    - regenerate notebooks/*.ipynb from the py:percent sources"
	@echo "COURSE_FAST=0 make course  - full mode (real quality, minutes per notebook)"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

course: notebooks

notebooks: $(STAMP)
	mkdir -p _build/notebooks
	$(PY) -m jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=1800 \
		--output-dir _build/notebooks $(NOTEBOOKS)
	@echo "Executed notebooks are in _build/notebooks/"

lint: $(STAMP)
	$(PY) -m ruff check .

unit: $(STAMP)
	$(PY) -m pytest -q tests

nbval: $(STAMP)
	$(PY) -m pytest -q --nbval-lax $(NOTEBOOKS)

test: lint unit nbval

sync: $(STAMP)
	$(PY) -m jupytext --to ipynb --update notebooks/*.py

clean:
	rm -rf _build
