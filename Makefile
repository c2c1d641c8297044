# `make demo` and `make test` create the virtualenv on first use; nothing needs installing by hand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint typecheck bench bench-imitation mutate clean

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

# our rankings pipeline against imitation's preference comparisons, 3 seeds (SEEDS=10 for the acceptance
# numbers); the script makes .venv-imitation (imitation 1.0.1, -c constraints.txt) on first use
SEEDS ?= 3
bench-imitation: venv
	$(BIN)/python benchmarks/rankings_vs_imitation.py --seeds $(SEEDS)

# Mutation testing of the core modules with mutmut ([tool.mutmut] in pyproject.toml), run by tools/mutate.py on a
# copy of the tree in /tmp (the working tree is never touched); prints the score per module and every survivor,
# fails below 90%. Results: docs/mutation.md. Extra options: make mutate MUTATE_ARGS="--workdir DIR".
mutate: venv
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test,mutate]"
	$(BIN)/python tools/mutate.py $(MUTATE_ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
