# Two commands on a fresh machine: `make run` (install + dvc repro), `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: install run test lint bench clean
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv
	$(BIN)/uv pip install -q --python $(BIN)/python --compile-bytecode -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --compile-bytecode --no-deps -e .
	touch $@

run: install  ## simulate the default world and run the pipeline (dvc repro)
	dvc repro

test: install  ## the whole test suite
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check common records simulator features models retention scoring pipeline tests bench

bench: install
	$(BIN)/python bench/simulate.py

clean:
	rm -rf data/sim data/interim data/observations data/features data/models data/registered.json reports/evaluation .dvc/tmp .dvc/cache
