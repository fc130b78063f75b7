# Two commands for a new user: `make demo` and `make test`. Everything they need is set
# up on first use and cached outside the checkout, so a second run rebuilds nothing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CACHE ?= $(HOME)/.cache/agentkit
LLAMA_VERSION := 0.3.36
# GGML_NATIVE=OFF: a native build segfaults on CPUs with AMX (llama.cpp issue 20824)
# and would not be portable across CI machines. GPU users add their flag, for example
# `make test LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_CUDA=on"`.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF
# One wheel directory per build flavour: pip's own wheel cache ignores CMAKE_ARGS.
WHEELS := $(CACHE)/wheels/$(shell printf '%s' '$(LLAMA_VERSION) $(LLAMA_CMAKE_ARGS)' | sha256sum | cut -c1-12)
export AGENTKIT_HOME ?= $(CACHE)
DEFAULT_MODELS := smollm2-135m-instruct qwen2.5-coder-0.5b-instruct
LADDER_MODELS := $(DEFAULT_MODELS) qwen2.5-coder-1.5b-instruct

.PHONY: setup models models-all test lint typecheck unit demo bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/build_llama.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	WHEELS="$(WHEELS)" LLAMA_VERSION="$(LLAMA_VERSION)" \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" PIP="$(BIN)/python -m pip" scripts/build_llama.sh
	$(BIN)/python -m pip install --quiet --find-links "$(WHEELS)" -e '.[dev,hub]'
	touch $@

models: setup
	$(BIN)/agentkit models pull $(DEFAULT_MODELS)

models-all: setup
	$(BIN)/agentkit models pull $(LADDER_MODELS)

lint: setup
	$(BIN)/ruff check agentkit tools tui tests examples bench scripts
	$(BIN)/ruff format --check agentkit tools tui tests examples bench scripts

typecheck: setup
	scripts/typecheck.sh

unit: setup
	$(BIN)/pytest -m "not integration" -q

test: setup models-all lint
	scripts/typecheck.sh
	$(BIN)/pytest -q

demo: setup models-all
	$(BIN)/python examples/demo.py

bench: setup models-all
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .typecheck build *.egg-info
