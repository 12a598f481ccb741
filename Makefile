# Two commands on a fresh machine: `make demo` and `make test`. Both build .venv as needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch must go in first: an unpinned torch pulled by a dependency brings CUDA wheels.
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test install dev clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.torch: $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	touch $@

$(VENV)/.installed: $(VENV)/.torch pyproject.toml
	$(BIN)/pip install --quiet -e ".[app]"
	touch $@

$(VENV)/.dev: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[app,dev]"
	touch $@

install: $(VENV)/.installed

dev: $(VENV)/.dev

demo: $(VENV)/.installed
	$(BIN)/fedtab synthesize --demo

test: $(VENV)/.dev
	$(BIN)/ruff check --select F,E9 fedtab connectors transformers evaluators app tests benchmarks
	$(BIN)/python -m pytest

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/adult_federated.py

clean:
	rm -rf $(VENV) out build *.egg-info
