# Two promises: `make demo` and `make test` work on a fresh clone of a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.demo-installed

.PHONY: env demo test lint unit browser bench clean docs-tables

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall when the package metadata changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

env: $(STAMP)

# Debian's Chromium for the approval-page browser tests (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi; }

# The drill needs the runtime and the emulator only (no test toolchain); an environment that
# already has the dev tools has it all.
$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	@if [ -f $(STAMP) ] && [ $(STAMP) -nt pyproject.toml ]; then touch $@; else \
	  echo "Installing breakglass, the embedded AWS emulator and the AWS CLI into $(VENV) (first run only)..."; \
	  $(BIN)/pip install --upgrade pip --progress-bar on && \
	  $(BIN)/pip install --progress-bar on -e '.[drill]' && touch $@; fi

# The full break-glass drill on the embedded emulator: deploy, incident, audit, every step checked.
demo: $(DEMO_STAMP)
	$(BIN)/breakglass drill

lint: env
	$(BIN)/ruff check breakglass tests examples benchmarks __main__.py
	$(BIN)/ruff format --check breakglass tests examples benchmarks __main__.py
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: env
	$(BIN)/pytest

test: lint browser unit

# The Inputs/Outputs tables in docs/*.md, from the components' docstrings (tests/test_doc_tables.py).
docs-tables: env
	$(BIN)/python -m breakglass.provider.doc_tables

bench: env
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
