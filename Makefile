# Targets CI and the README call verbatim. `make test` and `make demo` work on a
# fresh machine with only Python 3.11+: they create .venv and install the project.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck bench docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tau-ops demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --nbmake --doctest-modules tests notebooks tau_ops

lint: $(STAMP)
	$(BIN)/ruff check tau_ops tests benchmarks scripts

typecheck: $(STAMP)
	$(BIN)/mypy

docs: $(STAMP)
	$(BIN)/python scripts/gen_reference.py
	$(BIN)/mkdocs build --strict

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/runner_scale.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .tau
