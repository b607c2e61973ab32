# The two commands a new user types: `make dev` (whole local stack) and `make test` (whole suite).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: dev test lint checkov format install bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# checkov in a virtual environment of its own: its pinned packages would clash with the app's.
CHECKOV_VENV := .venv-checkov
$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PY) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet -r requirements-checkov.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed node_modules/.installed

# Azurite, the marketplace sandbox and the dev host, with data under .local/; Ctrl-C stops all three.
dev: install
	$(BIN)/python -m devhost.stack

test: install
	$(BIN)/pytest -q -n 2 --dist loadfile

lint: install checkov
	bash .ci/check-outside-paths
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@if command -v shellcheck >/dev/null; then shellcheck infra/*.sh .ci/run .ci/check-outside-paths .ci/check-bicep; else echo "shellcheck not installed: skipped"; fi
	$(BIN)/lint-imports
	$(BIN)/mypy

# Bicep under infra/ against checkov's checks: no failed check, no unparsed file, no stale inline skip.
checkov: $(CHECKOV_VENV)/.installed
	bash .ci/check-bicep

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf .local test-artifacts .pytest_cache .mypy_cache .import_linter_cache
