# `make demo` and `make test` do all the set-up: a virtual environment in .venv on first use.
# `make test-oldest` (and `make test-pandas30`) run the suite on other versions, each set in its own
# environment; .ci/run runs `make test lint test-oldest`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch is installed first, so the project's plain `torch>=` range never pulls a multi-GB CUDA
# build onto a CPU-only machine. Override for your platform, e.g.
#   make demo TORCH="torch --index-url https://download.pytorch.org/whl/cpu"
TORCH ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && echo torch || echo torch==2.13.0)
# The floors in pyproject.toml, pinned: keep the two in step.
OLDEST := numpy==1.24.1 pandas==2.2.0 pyarrow==15.0.0
PANDAS30 := pandas==3.0.6
RUN := runs/demo

.PHONY: demo test test-oldest test-pandas30 lint bench clean

# $(call venv,FOLDER,PINS): a virtual environment with torch, the project (editable) and its dev
# tools; PINS are versions to hold beside them, none for the newest that pyproject.toml allows.
define venv
	@test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
	@$(1)/bin/python -c "import torch" 2>/dev/null || $(1)/bin/python -m pip install --quiet $(TORCH)
	$(1)/bin/python -m pip install --quiet -e ".[dev]" $(2)
	@touch $(1)/.installed
endef

$(STAMP): pyproject.toml
	$(call venv,$(VENV),)

.venv-oldest/.installed: pyproject.toml Makefile
	$(call venv,.venv-oldest,$(OLDEST))

.venv-pandas30/.installed: pyproject.toml Makefile
	$(call venv,.venv-pandas30,$(PANDAS30))

demo: $(STAMP)
	$(BIN)/forecast train --out $(RUN) --force
	$(BIN)/forecast predict $(RUN)
	$(BIN)/forecast plot $(RUN)

test: $(STAMP)
	$(BIN)/python -m pytest

test-oldest: .venv-oldest/.installed
	.venv-oldest/bin/python -m pytest

test-pandas30: .venv-pandas30/.installed
	.venv-pandas30/bin/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check forecast tests bench
	$(BIN)/ruff format --check forecast tests bench
	$(BIN)/mypy forecast

bench: $(STAMP)
	$(BIN)/python bench/speed.py
	$(BIN)/python bench/accuracy.py

clean:
	rm -rf $(VENV) .venv-oldest .venv-pandas30 runs .pytest_cache
