# Tactful developer tasks. `make` lists them; `make demo` and `make test` set themselves up.

PYTHON ?= python3
VENV ?= .venv
# The port `make demo` serves the dashboard on (`make demo DEMO_PORT=8080`).
DEMO_PORT ?= 8000

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The package alone (what `make demo` needs), without the test and lint tools.
RUN_STAMP := $(VENV)/.installed-run

.DEFAULT_GOAL := help
.PHONY: help install test test-fast test-pg test-browser lint audit demo bench clean

help: ## List the targets
	@echo "Usage: make <target>   (variables: PYTHON=$(PYTHON) DEMO_PORT=$(DEMO_PORT) TEST_WORKERS)"
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: $(STAMP) ## Create .venv (if absent) and install tactful with its dev tools

# Reinstalls only when pyproject.toml changes (or the stamp is missing).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[dev]'
	@touch $@ $(RUN_STAMP)

$(RUN_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -e .
	@touch $@

test: install ## The full suite, as CI runs it (every tier, one process)
	$(BIN)/pytest

# The fast tier leaves out what is marked slow (processes, browsers, PostgreSQL, benchmarks'
# smoke runs, long property tests; tests/conftest.py) and runs in TEST_WORKERS processes
# (pytest-xdist, a test module per worker at a time): two a core by default, as its tests
# wait on loopback servers about as much as they compute.
TEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print(2 * (os.cpu_count() or 1))')

test-fast: install ## The quick inner loop: the tests not marked slow, in parallel
	$(BIN)/pytest -m "not slow" -n $(TEST_WORKERS) --dist loadfile

test-pg: install ## Only the PostgreSQL tests (each store test's twin, several processes)
	$(BIN)/pytest -m postgresql

test-browser: install ## Only the browser tests (Debian's Chromium through Playwright)
	$(BIN)/pytest -m browser

lint: install ## ruff check, ruff format --check, mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# pip-audit asks PyPI which releases have advisories; a mirror without that data (or no
# network) would make it report nothing: the probe asks for a release known to have one.
export AUDIT_PROBE := import json, urllib.request as u; \
	r = json.load(u.urlopen("https://pypi.org/pypi/starlette/0.39.0/json", timeout=5)); \
	assert r["vulnerabilities"]

audit: install ## pip-audit: known advisories in the installed dependencies (skipped offline)
	@if ! $(BIN)/python -c "$$AUDIT_PROBE" 2>/dev/null; then \
		echo "audit: skipped, PyPI's advisory data cannot be reached (offline or a mirror)"; exit 0; fi; \
	$(BIN)/python -m pip install --disable-pip-version-check -q 'pip-audit>=2.7' && \
	$(BIN)/pip-audit --skip-editable --progress-spinner off --desc

demo: $(RUN_STAMP) ## Live demo: server + Zendesk simulator + fake destinations (Ctrl-C stops)
	$(BIN)/tactful demo --port $(DEMO_PORT)

bench: install ## Benchmarks: every section, one summary table vs the targets (~10 min; BENCH_ARGS=--quick)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean: ## Remove caches, build output and demo data (keeps .venv; rm -rf .venv to start over)
	rm -rf demo-data build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name '*.egg-info' \) -type d \
		-exec rm -rf {} +
