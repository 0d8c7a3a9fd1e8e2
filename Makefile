# `make study` and `make test` each set up everything on a fresh clone (a local .venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/scaling: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

.PHONY: study test lint figures
study: $(BIN)/scaling
	$(BIN)/scaling study sweeps/quickstart.toml --out runs/quickstart

test: $(BIN)/scaling
	$(BIN)/ruff check scaling tests
	$(BIN)/pytest

lint: $(BIN)/scaling
	$(BIN)/ruff check scaling tests
