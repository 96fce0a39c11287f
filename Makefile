# Two entry points a fresh machine needs (python3 + make): `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup demo evaluate-sample test lint typecheck unit bench clean compile clean-compiled test-compiled

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

## the evaluation hot path compiled in place by mypyc (setup.py lists the modules); the
## container image is built this way. Python imports a module's .so before its .py:
## `make clean-compiled` goes back to pure Python (the tests refuse stale .so files).
compile: setup
	$(BIN)/python -m pip install --quiet "setuptools>=77" wheel
	CRMSYNC_COMPILE=1 $(BIN)/python setup.py --quiet build_ext --inplace --force

clean-compiled:
	find src -name '*.so' -delete
	rm -rf build

## the engine's tests against the compiled build, then back to pure Python
test-compiled: compile
	$(BIN)/python -m pytest -q tests/unit tests/property tests/e2e/test_evaluate_cli.py; \
	  status=$$?; $(MAKE) --no-print-directory clean-compiled; exit $$status

bench: compile
	$(BIN)/python bench/evaluate.py
	$(BIN)/python bench/sync.py

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find src -name '*.so' -delete
