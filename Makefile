# The two commands a newcomer needs: `make up` (the local environment) and
# `make test` (every test). Both install what they need on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .venv
BIN       := $(VENV)/bin
PY        := $(BIN)/python
# uv itself, pinned, from PyPI into a small bootstrap venv of its own.
UV_VERSION := 0.13.9
BOOTSTRAP := .cache/bootstrap
UV        := $(BOOTSTRAP)/bin/uv
# Everything that changes what `uv sync` installs.
MANIFESTS := uv.lock pyproject.toml $(wildcard */pyproject.toml services/*/pyproject.toml) \
             services/proto/hatch_build.py $(shell find services/proto/pipeline -name '*.proto')
# pytest-xdist workers: the machines here have 2 cores; override with `make test WORKERS=4`.
WORKERS   ?= auto
# Extra pytest arguments, e.g. make test PYTEST_ARGS="--junitxml=reports/junit.xml".
PYTEST_ARGS ?=

export TESTCONTAINERS_RYUK_DISABLED := true
# uv never fetches an interpreter: it uses the >= 3.12 one tools/find-python finds.
export UV_PYTHON_DOWNLOADS := never

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# --- environment -----------------------------------------------------------

$(UV):
	@interp=$$(tools/find-python) && echo "bootstrapping uv $(UV_VERSION) with $$interp" \
	  && "$$interp" -m venv $(BOOTSTRAP) \
	  && $(BOOTSTRAP)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# Every workspace member (editable), the dev group, exactly as uv.lock says
# (--frozen: a lock that no longer matches the pyproject files is an error, not a
# silent re-resolve). Building pipeline-proto generates pipeline.v1 from the protos.
$(VENV)/.installed: $(MANIFESTS) | $(UV)
	$(UV) sync --frozen --all-packages --python "$$(tools/find-python)"
	@touch $@

.PHONY: install
install: $(VENV)/.installed ## Create .venv from uv.lock (every component, dev tools)

.PHONY: lock
lock: | $(UV) ## Re-resolve uv.lock after a pyproject change (review its diff)
	$(UV) lock

# --- the two commands ------------------------------------------------------

.PHONY: up
up: install ## Both services in containers from environments/local.yaml (Ctrl-C stops them)
	@tools/ensure-docker
	$(BIN)/harness-up local

.PHONY: run-local
run-local: install ## Both services from the checkout, no containers (fast inner loop)
	tools/run-local

.PHONY: test
test: install ## Run every test
	tools/run-tests $(WORKERS) $(PYTEST_ARGS)

.PHONY: down
down: ## Remove leftovers of `make up` and of test runs
	-@tools/down

# --- checks ----------------------------------------------------------------

.PHONY: lint
lint: install ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

.PHONY: clean
clean: ## Remove the virtual environments and generated code
	rm -rf $(VENV) $(BOOTSTRAP) services/proto/gen .pytest_cache .mypy_cache .ruff_cache

# --- decision records ------------------------------------------------------

.PHONY: adr
adr: install ## New ADR from the template: make adr TITLE="Use X for Y"
	@test -n "$(TITLE)" || { echo 'usage: make adr TITLE="Use X for Y"' >&2; exit 2; }
	$(PY) tools/adr.py new "$(TITLE)"
