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
# llama.cpp's own programs (llama-server, llama-batched-bench), built from the llama.cpp the
# sdist vendors, one folder per version and flag set like the wheels; tests find them here.
LLAMA_TOOLS_BIN := $(CACHE)/llama.cpp/$(LLAMA_VERSION)-$(shell printf '%s' '$(LLAMA_VERSION) $(LLAMA_CMAKE_ARGS)' | sha256sum | cut -c1-12)/bin
export AGENTKIT_LLAMA_BIN ?= $(LLAMA_TOOLS_BIN)
DEFAULT_MODELS := smollm2-135m-instruct qwen2.5-coder-0.5b-instruct
LADDER_MODELS := $(DEFAULT_MODELS) qwen2.5-coder-1.5b-instruct

.PHONY: setup models models-all llama-tools test lint typecheck unit demo bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/build_llama.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	WHEELS="$(WHEELS)" LLAMA_VERSION="$(LLAMA_VERSION)" \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" PIP="$(BIN)/python -m pip" scripts/build_llama.sh
	$(BIN)/python -m pip install --quiet --find-links "$(WHEELS)" -e '.[dev,hub]'
	@# run_python's sandbox: an agent running as root can only be contained by bubblewrap.
	@command -v bwrap >/dev/null || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null \
	  || apt-get install -y -q bubblewrap >/dev/null || (apt-get update -q >/dev/null \
	  && apt-get install -y -q bubblewrap >/dev/null) || echo "note: no bubblewrap (bwrap)"
	@# The PostgreSQL store's tests start a real server of their own (initdb, pg_ctl).
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null \
	  || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null \
	  || apt-get install -y -q postgresql >/dev/null || (apt-get update -q >/dev/null \
	  && apt-get install -y -q postgresql >/dev/null) || echo "note: no PostgreSQL server (postgresql)"
	touch $@

models: setup
	$(BIN)/agentkit models pull $(DEFAULT_MODELS)

models-all: setup
	$(BIN)/agentkit models pull $(LADDER_MODELS)

llama-tools: setup
	CACHE="$(CACHE)" LLAMA_VERSION="$(LLAMA_VERSION)" LLAMA_CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" \
	  PIP="$(BIN)/python -m pip" scripts/build_llama_tools.sh

lint: setup
	$(BIN)/ruff check agentkit tools tui tests examples bench scripts
	$(BIN)/ruff format --check agentkit tools tui tests examples bench scripts

typecheck: setup
	scripts/typecheck.sh

unit: setup
	$(BIN)/pytest -m "not integration" -q

test: setup models-all llama-tools lint
	scripts/typecheck.sh
	$(BIN)/pytest -q

demo: setup models-all
	$(BIN)/python examples/demo.py

$(VENV)/.bench-installed: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet --find-links "$(WHEELS)" -e '.[dev,hub,bench]'
	$(BIN)/python -m bench.bfcl --fetch
	touch $@

bench: setup models-all llama-tools $(VENV)/.bench-installed
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .typecheck build *.egg-info
