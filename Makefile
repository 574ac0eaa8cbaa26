# ALPR Workbench tasks. `make help` lists them.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help install demo test lint bench clean browser

help:  ## List the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch is pinned to 2.13.0, the CPU build: never let this step pull CUDA wheels.
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## Create .venv and install the workbench with its test tools

demo: $(STAMP)  ## Build the synthetic city (embedded default) and show what was built
	$(BIN)/alpr-workbench demo $(DEMO_ARGS)

browser:  ## Install Debian's chromium for the browser test, if missing (needs root and apt)
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian chromium for the browser test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "WARNING: chromium missing and cannot be installed here; the browser test will skip"; fi; }

STRICT := src/alpr_workbench/keys.py src/alpr_workbench/store src/alpr_workbench/governance

test: $(STAMP) browser  ## Lint, type-check the security-critical modules, run every test
	$(BIN)/ruff check src tests benchmarks dashboards
	$(BIN)/mypy --strict $(STRICT)
	$(BIN)/python -m pytest

lint: $(STAMP)  ## Lint and type-check only
	$(BIN)/ruff check src tests benchmarks dashboards
	$(BIN)/mypy --strict $(STRICT)

bench: $(STAMP)  ## Storage benchmark: encrypted store vs plain Parquet (10M reads)
	$(BIN)/python benchmarks/bench_store.py

clean:  ## Remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache
