# Thin wrappers over the fnnkit CLI. Every target that needs the environment depends on it,
# so `make train-all` or `make test` works as the first command on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.fnnkit-installed

.DEFAULT_GOAL := help
.PHONY: help setup train-all export-all bench test test-fast lint format clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: $(STAMP)  ## create .venv and install fnnkit (editable) with its dev tools; idempotent

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

train-all: setup  ## train variants A-E with the tutorial recipe (MNIST if reachable, else the bundled sample)
	$(BIN)/fnnkit train --variant all

export-all: setup  ## export every trained variant to ONNX, TorchScript, .pt2 and ONNX int8, with parity checks
	$(BIN)/fnnkit export --format all --variant all

bench: setup  ## benchmark every backend available here; tables + JSON/CSV/PNG under artifacts/bench
	$(BIN)/fnnkit bench

test: setup  ## the whole test suite (what CI runs)
	$(BIN)/python -m pytest

lint: setup  ## ruff lint + format check
	$(BIN)/ruff check fnnkit tests benchmarks scripts
	$(BIN)/ruff format --check fnnkit tests benchmarks scripts

format: setup  ## apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix fnnkit tests benchmarks scripts
	$(BIN)/ruff format fnnkit tests benchmarks scripts

clean:  ## remove the virtual environment and caches (artifacts/ is kept)
	rm -rf $(VENV) .pytest_cache .ruff_cache .benchmarks
