# The two commands a new user types: `make dev` (whole local stack) and `make test` (whole suite).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: dev test lint checkov format install bench clean check-az

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

# The az stand-in of tests/infra_scripts against the real Azure CLI (infra/README.md): azure-cli in a throwaway
# venv (about 2.5 minutes and 730 MB the first time), every az call the tests record and every az command of the
# docs through its parser, the stand-in's command table compared with it. AZ_CHECK_WRITE=1 rewrites the table.
AZ_CLI_VERSION ?= 2.91.0
AZ_CLI_VENV ?= .local/azure-cli
AZ_CALLS := .local/az-calls.jsonl

$(AZ_CLI_VENV)/.azure-cli-$(AZ_CLI_VERSION):
	rm -rf $(AZ_CLI_VENV)
	$(PY) -m venv $(AZ_CLI_VENV)
	$(AZ_CLI_VENV)/bin/pip install --quiet azure-cli==$(AZ_CLI_VERSION)
	touch $@

check-az: install $(AZ_CLI_VENV)/.azure-cli-$(AZ_CLI_VERSION)
	rm -f $(AZ_CALLS)
	AZ_CALLS_EXPORT=$(CURDIR)/$(AZ_CALLS) $(BIN)/pytest -q -n 2 tests/infra_scripts
	$(AZ_CLI_VENV)/bin/python tests/infra_scripts/az_real_check.py $(AZ_CALLS) $(if $(AZ_CHECK_WRITE),--write)

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf .local test-artifacts .pytest_cache .mypy_cache .import_linter_cache
