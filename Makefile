# Two entry points a fresh machine needs (python3 + make): `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup demo evaluate-sample test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

CHARTER ?= aston

## the main job on the embedded default: a local CRM, one sync cycle, what it did
demo: setup
	$(BIN)/crmsync demo --charter $(CHARTER)

## the charter engine on the bundled sample file
evaluate-sample: setup
	$(BIN)/crmsync evaluate --charter mappings/charters/aston.yaml \
	  --input samples/aston-complaints.jsonl --now 2026-04-08T12:00:00Z

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: setup
	$(BIN)/mypy src

unit: setup
	$(BIN)/python -m pytest -q

test: lint typecheck unit

bench: setup
	$(BIN)/python bench/evaluate.py
	$(BIN)/python bench/sync.py

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache .hypothesis
