# Developer commands. `make run` starts the whole help desk; `make test` runs the tests.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HELPDESK_TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test

.DEFAULT_GOAL := help
.PHONY: help install browser run test test-db reliability bench proto lint k8s-validate clean

help:
	@echo "make install   create $(VENV) and install the project with its dev tools"
	@echo "make run       start Temporal, NATS and every service (Ctrl-C stops them)"
	@echo "make test      run the test suite (installs Debian's chromium for the browser tests)"
	@echo "make test-db   run the database tests on PostgreSQL (HELPDESK_TEST_DATABASE_URL)"
	@echo "make reliability  the reliability scorecard at full sizes (scorecard: lines)"
	@echo "make browser   install Debian's chromium for the browser tests if it is missing"
	@echo "make bench     benchmarks against the bare parts; writes bench/results/latest.json"
	@echo "               (BENCH_ARGS='--quick' or '--only list_tickets' or '--scale 0.5')"
	@echo "make proto     regenerate helpdesk/v1 from proto/"
	@echo "make lint      ruff check, ruff format --check, mypy"
	@echo "make k8s-validate  render deploy/k8s with kustomize and validate it (offline)"
	@echo "make clean     remove caches and build output (keeps $(VENV) and var/)"

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[dev]'
	touch $@

# The browser tests drive Debian's chromium (found on PATH) with pip's playwright: Playwright's
# own browser download cannot work here. Installed when missing if we are root; else say how.
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" -eq 0 ]; then \
		echo "chromium is missing (browser tests): apt-get install chromium"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium \
			&& command -v chromium >/dev/null; \
	else \
		echo "error: the browser tests need Debian's chromium; install it with" >&2; \
		echo "  sudo apt-get install chromium" >&2; \
		exit 1; \
	fi

run: install
	$(BIN)/python -m services.launcher

# Two workers: most tests wait on servers, so this halves the wall time on 2 cores.
PYTEST_WORKERS ?= 2

test: install browser
	$(BIN)/pytest -n $(PYTEST_WORKERS)

# The scorecard at the issue's full sizes (make test runs it at HELPDESK_RELIABILITY_SCALE=0.2).
reliability: install browser
	HELPDESK_RELIABILITY_SCALE=$${HELPDESK_RELIABILITY_SCALE:-1} $(BIN)/pytest -m reliability -n $(PYTEST_WORKERS) tests/reliability

test-db: install browser
	HELPDESK_TEST_DATABASE_URL='$(HELPDESK_TEST_DATABASE_URL)' $(BIN)/pytest -m db -n $(PYTEST_WORKERS)

# Starts its own servers on free ports; PostgreSQL for list_tickets from BENCH_POSTGRES_URL
# (default postgresql://postgres@127.0.0.1:5432/test; skipped when unreachable).
bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

proto: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m grpc_tools.protoc -I proto \
		--python_out=. --mypy_out=. --grpc_python_out=. --mypy_grpc_out=. \
		proto/helpdesk/v1/*.proto
	touch helpdesk/__init__.py helpdesk/v1/__init__.py

lint: install
	$(BIN)/ruff check
	$(BIN)/ruff format --check
	$(BIN)/mypy services workflows

k8s-validate: install
	$(BIN)/pytest tests/deploy -q -m unit

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
