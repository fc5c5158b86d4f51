# segmon: the two commands a fresh machine needs are `make demo` and `make test`.
# Both install everything first (Debian packages, the virtualenv, PostgreSQL up).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export SEGMON_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
# pytest arguments, e.g. `make test PYTEST_ARGS="-m slow"`
PYTEST_ARGS ?=

.PHONY: setup system demo test lint bench

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,onnx,dask]'
	touch $@

system:
	bash .ci/system-deps

setup: system $(BIN)/.installed

demo: setup
	$(BIN)/segmon demo --workdir var/demo

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: setup lint
	$(BIN)/pytest $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m bench --help
