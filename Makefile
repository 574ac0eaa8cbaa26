# ALPR Workbench tasks. `make help` lists them.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help install demo test lint bench clean browser softhsm wheel-check

help:  ## List the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch (the `train` extra) is pinned to 2.13.0, the CPU build: never let this step pull
	# CUDA wheels. The workbench itself runs without torch (see `make wheel-check`).
	$(BIN)/python -m pip install --quiet -e '.[dev,train]'
	touch $(STAMP)

install: $(STAMP)  ## Create .venv and install the workbench with its test and training tools

demo: $(STAMP)  ## Build the synthetic city (embedded default) and show what was built
	$(BIN)/alpr-workbench demo $(DEMO_ARGS)

browser:  ## Install Debian's chromium for the browser test, if missing (needs root and apt)
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian chromium for the browser test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "WARNING: chromium missing and cannot be installed here; the browser test will skip"; fi; }

softhsm:  ## Install Debian's SoftHSM2 for the PKCS#11 key-root tests, if missing (root and apt)
	@{ command -v softhsm2-util >/dev/null 2>&1 && [ -f /usr/lib/softhsm/libsofthsm2.so ]; } || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian softhsm2 for the PKCS#11 key-root tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2 >/dev/null; \
	  else echo "WARNING: softhsm2 missing and cannot be installed here; the PKCS#11 (HSM) tests will skip"; fi; }

STRICT := src/alpr_workbench/keys.py src/alpr_workbench/keys_pkcs11.py src/alpr_workbench/store \
          src/alpr_workbench/governance \
          src/alpr_workbench/service src/alpr_workbench/client.py

# Two pytest workers (pytest-xdist), each test file whole on one worker: a module's service and
# city are built once, a notebook's cells run in order. `make test PYTEST_WORKERS=0` runs serially.
PYTEST_WORKERS ?= 2

test: $(STAMP) browser softhsm  ## Lint, type-check the security-critical modules, run every test, check the wheel
	$(BIN)/ruff check src tests benchmarks dashboards scripts
	$(BIN)/mypy --strict $(STRICT)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile
	$(MAKE) --no-print-directory wheel-check

wheel-check: $(STAMP)  ## Build the wheel, install it without torch in a fresh venv, run demo + recognize
	scripts/wheel_check.sh $(BIN)/python $(PYTHON)

lint: $(STAMP)  ## Lint and type-check only
	$(BIN)/ruff check src tests benchmarks dashboards scripts
	$(BIN)/mypy --strict $(STRICT)

bench: $(STAMP)  ## Storage benchmark: encrypted store vs plain Parquet (10M reads)
	$(BIN)/python benchmarks/bench_store.py

clean:  ## Remove the virtual environment, caches and the wheel check's build/
	rm -rf $(VENV) .pytest_cache .ruff_cache build
