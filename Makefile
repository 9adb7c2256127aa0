# The two commands a newcomer needs: `make up` (the local environment) and
# `make test` (every test). Both install what they need on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .venv
BIN       := $(VENV)/bin
PY        := $(BIN)/python
PROTO_SRC := services/proto
PROTO_GEN := services/proto/gen
PROTOS    := $(shell find $(PROTO_SRC)/pipeline -name '*.proto')
# pytest-xdist workers: the machines here have 2 cores; override with `make test WORKERS=4`.
WORKERS   ?= auto
# Extra pytest arguments, e.g. make test PYTEST_ARGS="--junitxml=reports/junit.xml".
PYTEST_ARGS ?=

export TESTCONTAINERS_RYUK_DISABLED := true

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# --- environment -----------------------------------------------------------

$(PY):
	@interp=$$(tools/find-python) && echo "creating $(VENV) with $$interp" && "$$interp" -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip

# The stamp is rewritten whenever pyproject.toml changes, so a new dependency
# is picked up by the next `make` without a manual reinstall.
$(VENV)/.installed: pyproject.toml $(PROTOS) | $(PY)
	$(PY) -m pip install --quiet "grpcio-tools>=1.66"
	$(MAKE) --no-print-directory proto
	$(PY) -m pip install --quiet -e '.[test,dev,bench]'
	@touch $@

.PHONY: install
install: $(VENV)/.installed ## Create .venv and install the project with its test/dev extras

.PHONY: proto
proto: ## Generate Python code from services/proto (never committed)
	@rm -rf $(PROTO_GEN) && mkdir -p $(PROTO_GEN)
	$(PY) -m grpc_tools.protoc -I $(PROTO_SRC) --python_out=$(PROTO_GEN) --pyi_out=$(PROTO_GEN) \
	  --grpc_python_out=$(PROTO_GEN) $(patsubst $(PROTO_SRC)/%,%,$(PROTOS))
	@find $(PROTO_GEN) -type d -exec touch {}/__init__.py \;
	@touch $(PROTO_GEN)/pipeline/py.typed

# --- the two commands ------------------------------------------------------

.PHONY: up
up: install ## Both services in containers from environments/local.yaml (Ctrl-C stops them)
	@tools/ensure-docker
	$(BIN)/envctl up local

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
clean: ## Remove the virtual environment and generated code
	rm -rf $(VENV) $(PROTO_GEN) .pytest_cache .mypy_cache .ruff_cache

# --- decision records ------------------------------------------------------

.PHONY: adr
adr: install ## New ADR from the template: make adr TITLE="Use X for Y"
	@test -n "$(TITLE)" || { echo 'usage: make adr TITLE="Use X for Y"' >&2; exit 2; }
	$(PY) tools/adr.py new "$(TITLE)"
