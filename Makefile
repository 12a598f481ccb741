# Two commands on a fresh machine: `make demo` and `make test`. Both build .venv as needed.
# Every install takes -c constraints.txt: a fresh machine gets the versions the suite passed on.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --quiet -c constraints.txt
# -qq for the editable installs: setuptools prints an informational note on every editable install of a
# package-dir layout; errors still show.
PIP_EDITABLE := $(BIN)/pip install -qq -c constraints.txt
# The CPU build of torch must go in first: an unpinned torch pulled by a dependency brings CUDA wheels.
# It comes from torch's own CPU wheel index, PyPI as extra; a locally configured wheel store (pip.conf's
# find-links, PIP_FIND_LINKS) still applies. Where that index is unreachable, plain pip install is the fallback.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
PYPI ?= https://pypi.org/simple

.PHONY: demo test install dev clean bench browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.torch: $(BIN)/python constraints.txt
	$(PIP) --retries 1 --timeout 20 --index-url $(TORCH_INDEX) --extra-index-url $(PYPI) "$(TORCH_SPEC)" \
	|| { echo "fedtab: torch's CPU index $(TORCH_INDEX) is unreachable; installing $(TORCH_SPEC) with pip's own settings"; \
	     $(PIP) "$(TORCH_SPEC)"; }
	touch $@

# openmined.psi (vertical alignment) pins protobuf==6.30.2 exactly while Flower's grpcio-health-checking needs
# >= 6.33.5; its PSI messages work on the newer protobuf (tests/test_psi*), so it goes in without its pin.
$(VENV)/.installed: $(VENV)/.torch pyproject.toml constraints.txt
	$(PIP_EDITABLE) -e ".[app]"
	$(PIP) --no-deps "openmined.psi==2.0.6"
	touch $@

$(VENV)/.dev: $(VENV)/.installed
	$(PIP_EDITABLE) -e ".[app,dev]"
	touch $@

install: $(VENV)/.installed

dev: $(VENV)/.dev

demo: $(VENV)/.installed
	$(BIN)/fedtab synthesize --demo --evaluate --target income

# The report screenshot test and the app's browser test (Playwright's Python package, no `playwright install`)
# drive Debian's chromium; as root (CI) it is installed when missing. Without it both skip, and under CI=true the
# app's browser test fails.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
	|| { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	|| echo "fedtab: chromium is not installed (apt-get install -y chromium); the browser tests will skip (and fail under CI=true)"

test: $(VENV)/.dev browser
	$(BIN)/ruff check --select F,E9 fedtab connectors transformers evaluators app tests benchmarks
	$(BIN)/python -m pytest

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/adult_federated.py

clean:
	rm -rf $(VENV) out build *.egg-info
