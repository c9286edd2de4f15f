# Flowyard developer commands. Each target does its own set-up on a fresh Debian machine.
#
#   make demo    run the demo (§10) on http://127.0.0.1:8000
#   make test    the whole test suite, against SQLite and a throwaway PostgreSQL
#   make lint    ruff (lint + format check), mypy and bandit (high severity fails)
#   make fmt     apply ruff's safe fixes and formatting
#
# make test PYTEST_ARGS='-x -k engine'    passes arguments to pytest.
# FLOWYARD_TEST_POSTGRES_URL=postgresql+asyncpg://…  make test    uses that server instead
# of starting one.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

VENV := .venv
PYTHON ?= python3
PYTEST_ARGS ?=

.PHONY: venv demo test lint fmt browser

venv: $(VENV)/.installed

# (Re)install whenever pyproject.toml is newer than the stamp.
$(VENV)/.installed: pyproject.toml
	@if [ ! -x $(VENV)/bin/python ]; then \
	    $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null \
	        || scripts/apt-install.sh python3 python3-venv; \
	    echo "Creating $(VENV)"; \
	    $(PYTHON) -m venv $(VENV); \
	fi
	$(VENV)/bin/pip install --disable-pip-version-check -q -e '.[dev]'
	@touch $@

demo: venv
	$(VENV)/bin/flowyard demo

# PostgreSQL: unless FLOWYARD_TEST_POSTGRES_URL is set, start a throwaway cluster in a
# temp dir (installing Debian's postgresql package first when missing and we are root),
# and stop and delete it when pytest ends, whatever the outcome. The cluster lives under
# /tmp, not in the checkout: the postgres user must be able to reach it, and a clone under
# /root is closed to other users. pytest's exit code is the target's.
test: venv browser
	@if [ -n "$${FLOWYARD_TEST_POSTGRES_URL:-}" ]; then \
	    echo "make test: PostgreSQL from FLOWYARD_TEST_POSTGRES_URL"; \
	    exec $(VENV)/bin/pytest $(PYTEST_ARGS) tests; \
	fi; \
	pgdir=$$(mktemp -d "$${TMPDIR:-/tmp}/flowyard-pg.XXXXXX"); \
	trap 'scripts/test-postgres.sh stop "$$pgdir"' EXIT; \
	trap 'exit 130' INT; trap 'exit 143' TERM; \
	rc=0; url=$$(PYTHON=$(VENV)/bin/python scripts/test-postgres.sh start "$$pgdir") || rc=$$?; \
	if [ $$rc -eq 0 ]; then \
	    export FLOWYARD_TEST_POSTGRES_URL=$$url; \
	elif [ $$rc -eq 3 ]; then \
	    echo "make test: PostgreSQL is not available; its tests will skip (fail under CI=true)"; \
	else \
	    exit $$rc; \
	fi; \
	$(VENV)/bin/pytest $(PYTEST_ARGS) tests

# The dashboard's browser tests drive Debian's Chromium (tests/browser). Installed when
# missing and we can (root); otherwise those tests skip locally (and fail under CI=true).
browser:
	@command -v chromium >/dev/null 2>&1 || [ -n "$${FLOWYARD_CHROMIUM:-}" ] \
	    || scripts/apt-install.sh chromium \
	    || echo "make test: Chromium is not available; the browser tests will skip (fail under CI=true)"

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/bandit -q -c pyproject.toml -r server processors ui demo --severity-level high

fmt: venv
	$(VENV)/bin/ruff check --fix-only .
	$(VENV)/bin/ruff format .
