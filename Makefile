# Entry points a fresh machine needs (python3 + make):
#   make demo      the runtime only (no development tools), a local CRM and one sync cycle
#   make quick     the inner loop: unit and property tests only (under a minute)
#   make test      the fast loop: lint, types and every test not marked `slow`
#   make test-all  everything, slow tests included (what CI and the README run)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-stamp
DEV_STAMP := $(VENV)/.dev-stamp
PYTEST_FLAGS ?=

.PHONY: setup setup-runtime demo evaluate-sample quick test test-all lint typecheck unit unit-all \
	bench clean compile clean-compiled test-compiled screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# crmsync and its runtime dependencies only: what `make demo` needs.
$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# plus the development tools (pytest, ruff, mypy, moto ...): what the tests need.
$(DEV_STAMP): pyproject.toml $(RUNTIME_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

setup-runtime: $(RUNTIME_STAMP)

setup: $(DEV_STAMP)

CHARTER ?= aston

## the main job on the embedded default: a local CRM, one sync cycle, what it did
demo: $(RUNTIME_STAMP)
	$(BIN)/crmsync demo --charter $(CHARTER)

## the charter engine on the bundled sample file
evaluate-sample: $(RUNTIME_STAMP)
	$(BIN)/crmsync evaluate --charter mappings/charters/aston.yaml \
	  --input samples/aston-complaints.jsonl --now 2026-04-08T12:00:00Z

## the report screenshots under docs/reports/, from current data and code (needs chromium)
screenshots: setup
	$(BIN)/python tests/report_screenshots.py

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: setup
	$(BIN)/mypy src

unit: setup
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_FLAGS)

unit-all: setup
	$(BIN)/python -m pytest -q $(PYTEST_FLAGS)

## the inner loop: the unit and property tests (not `slow`), no lint, no types
quick: setup
	$(BIN)/python -m pytest -q -m "not slow" tests/unit tests/property $(PYTEST_FLAGS)

## the fast loop: every check, the tests marked `slow` left out
test: lint typecheck unit
	@echo "make test: the fast loop passed; tests marked 'slow' were not run ('make test-all' runs everything)."

## everything: what CI and the README's test command run (the engine's tests once more
## against the mypyc-compiled build, where a C compiler is at hand)
test-all: lint typecheck unit-all
	@if command -v cc >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory test-compiled; \
	else \
	  echo "make test-all: no C compiler (cc), so the compiled build was not tested"; \
	fi
	@echo "make test-all: lint, types and the whole test suite passed."

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
