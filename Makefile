# `make study` and `make test` each set up everything on a fresh clone (a local .venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/scaling: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

.PHONY: study test test-fast lint reference transfer genres
study: $(BIN)/scaling
	$(BIN)/scaling study sweeps/quickstart.toml --out runs/quickstart

test: $(BIN)/scaling
	$(BIN)/ruff check scaling tests
	$(BIN)/pytest

test-fast: $(BIN)/scaling
	$(BIN)/pytest -m "not slow"

lint: $(BIN)/scaling
	$(BIN)/ruff check scaling tests

# The reference study (about 40 minutes on a 2-core CPU); refreshes fits/reference and figures/reference.
reference: $(BIN)/scaling
	$(BIN)/scaling study sweeps/reference.toml --out runs/reference --no-progress
	mkdir -p fits/reference figures/reference
	cp runs/reference/results.csv runs/reference/trajectory.csv runs/reference/fit.json runs/reference/fit.md fits/reference/
	$(BIN)/scaling figures fits/reference --out figures/reference --formats png,svg

# Transfer beyond counting (40 runs: 57 min on the 2-core CPU while other jobs shared it); refreshes fits/transfer and figures/transfer.
transfer: $(BIN)/scaling
	$(BIN)/scaling sweep sweeps/transfer.toml --out runs/transfer --no-progress
	$(BIN)/scaling fit runs/transfer/results.csv --out runs/transfer
	mkdir -p fits/transfer figures/transfer
	cp runs/transfer/results.csv runs/transfer/trajectory.csv runs/transfer/fit.json runs/transfer/fit.md runs/transfer/transfer.md fits/transfer/
	$(BIN)/scaling figures fits/transfer --out figures/transfer --formats png,svg

# Why vs what: genres at equal aligned tokens (36 runs, about 6 minutes on the 2-core CPU); refreshes fits/genres and figures/genres.
genres: $(BIN)/scaling
	$(BIN)/scaling sweep sweeps/genres.toml --out runs/genres --no-progress
	$(BIN)/scaling fit runs/genres/results.csv --out runs/genres
	mkdir -p fits/genres figures/genres
	cp runs/genres/results.csv runs/genres/trajectory.csv runs/genres/fit.json runs/genres/fit.md runs/genres/transfer.md fits/genres/
	$(BIN)/scaling figures fits/genres --out figures/genres --formats png
