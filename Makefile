# `make study` and `make test` each set up everything on a fresh clone (a local .venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/scaling: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

.PHONY: study test test-fast lint
study: $(BIN)/scaling
	$(BIN)/scaling study sweeps/quickstart.toml --out runs/quickstart

test: $(BIN)/scaling
	$(BIN)/ruff check scaling tests
	$(BIN)/pytest

test-fast: $(BIN)/scaling
	$(BIN)/pytest -m "not slow"

lint: $(BIN)/scaling
	$(BIN)/ruff check scaling tests

# The reference suite (world v2): six studies, each a sweep file with committed outputs in
# fits/<study>/ and figures/<study>/. `make reference` runs them all; `make reference-NAME`
# one (NAME: dose-response, transfer, genres, timing, persistence, sizes). Measured times on
# the 2-core CPU are in docs/studies.md. A rerun skips finished runs.
RUNS ?= runs
STUDIES := dose-response transfer genres timing persistence sizes
.PHONY: reference $(addprefix reference-,$(STUDIES)) reference-emergence reference-pointer findings

reference: $(addprefix reference-,$(STUDIES))
	$(BIN)/python -m studies.findings --root .

# sweep, results, fit (fit.json, fit.md, transfer.md, persistence.md), copy, figures; the committed
# fits use seed x world blocks (t on blocks - 1 df), as the findings table does
define study
	$(BIN)/scaling sweep sweeps/$(1).toml --out $(RUNS)/$(1) --no-progress
	$(BIN)/scaling fit $(RUNS)/$(1)/results.csv --out $(RUNS)/$(1) --blocks seed
	mkdir -p fits/$(1) figures/$(1)
	cp $(RUNS)/$(1)/results.csv $(RUNS)/$(1)/trajectory.csv $(RUNS)/$(1)/fit.json $(RUNS)/$(1)/fit.md fits/$(1)/
	for f in transfer.md persistence.md; do if [ -f $(RUNS)/$(1)/$$f ]; then cp $(RUNS)/$(1)/$$f fits/$(1)/; fi; done
	$(BIN)/scaling figures fits/$(1) --out figures/$(1) --formats png
endef

reference-dose-response: $(BIN)/scaling
	$(call study,dose_response)

reference-transfer: $(BIN)/scaling
	$(call study,transfer)

reference-genres: $(BIN)/scaling
	$(call study,genres)

reference-timing: $(BIN)/scaling
	$(call study,timing)

reference-persistence: $(BIN)/scaling
	$(call study,persistence)

reference-sizes: $(BIN)/scaling
	$(call study,sizes)
	$(BIN)/scaling sizes fits/sizes/results.csv --out fits/sizes

# resistance curves (world v2, 1.2M tokens, five post-training directions); not part of `make reference`
# world v3: readout against tokens (the emergence budget); not part of `make reference`
reference-emergence: $(BIN)/scaling
	$(BIN)/scaling sweep sweeps/emergence.toml --out $(RUNS)/emergence --no-progress
	mkdir -p fits/emergence figures/emergence
	cp $(RUNS)/emergence/results.csv $(RUNS)/emergence/trajectory.csv fits/emergence/
	$(BIN)/scaling emergence fits/emergence/trajectory.csv --out fits/emergence --recall $(RUNS)/emergence
	mv fits/emergence/emergence.png figures/emergence/

# world v4, the pointer world: doses 0-0.05 x 6 blocks at 4.1M tokens; not part of `make reference`
reference-pointer: $(BIN)/scaling
	$(call study,pointer)

# the README's findings table, recomputed from the committed fits/ (exit 1 if it differs)
findings: $(BIN)/scaling
	$(BIN)/python -m studies.findings --root . --check README.md
