# Every target sets up what it needs: a fresh clone needs only `make demo` and `make test`.
# `make demo` installs assay and what the demo imports; `make test` (and lint, quick, bench)
# adds the extras: the service, the test tools, the benchmark baselines (and Spark if Java runs).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The Spark extra (PySpark local[2] check in the tests) only where Java can run it.
EXTRAS := dev,bench$(shell command -v java >/dev/null 2>&1 && echo ,spark)
# One stamp per install, named by a hash of what it installed: editing pyproject.toml (or
# gaining Java) makes the next target reinstall. A test install also serves the demo.
HASH       = $(shell (cat pyproject.toml; echo $(1)) | sha256sum | cut -c1-12)
DEMO_STAMP := $(VENV)/.installed-demo-$(call HASH,core)
TEST_STAMP := $(VENV)/.installed-test-$(call HASH,$(EXTRAS))

SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup browser postgres demo test quick lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	@test -f $(TEST_STAMP) || echo "installing assay and the demo's dependencies into $(VENV) (a minute on a fresh machine)"
	test -f $(TEST_STAMP) || $(BIN)/python -m pip install --quiet -e .
	rm -f $(VENV)/.installed-demo-* && touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	@echo "installing assay[$(EXTRAS)] into $(VENV) (a few minutes on a fresh machine)"
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	rm -f $(VENV)/.installed-test-* $(VENV)/.installed-[0-9a-f]* && touch $@

setup: $(TEST_STAMP)

# The real-browser report test uses Debian's Chromium (no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || ( $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium )

# The PostgreSQL store's tests start a throwaway cluster from Debian's server binaries.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ( $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql )

demo: $(DEMO_STAMP)
	$(BIN)/assay demo

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

test: lint browser postgres
	$(BIN)/python -m pytest -n 2 src tests

# Without the long simulations (slow) and the whole-process tests (integration): under 2 min.
quick: $(TEST_STAMP)
	$(BIN)/python -m pytest -n 2 -m "not slow and not integration" src tests

bench: $(TEST_STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
