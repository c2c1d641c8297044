# `make demo` and `make test` create the virtualenv on first use; nothing needs installing by hand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint typecheck bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

demo: venv
	$(BIN)/tamer compare --env MountainCar-v0 --out runs/demo --overwrite

test: venv
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check tamer envs tests benchmarks experiments
	$(BIN)/ruff format --check tamer envs tests benchmarks experiments
	$(BIN)/mypy

# mypy's settings (packages = tamer, check_untyped_defs) are in pyproject.toml's [tool.mypy]
typecheck: venv
	$(BIN)/mypy

bench: venv
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test,bench]"
	$(BIN)/python benchmarks/steps_per_second.py

clean:
	rm -rf $(VENV) runs .pytest_cache
