# The README's quick start: `make demo` and `make test`, each from a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
WORKERS ?= 2
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench mutants install clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) examples/dqn_cartpole.py $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: lint
	$(PY) -m pytest -n $(WORKERS) $(ARGS)

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# Every benchmark at full size (hours on 2 cores; peers need bash benchmarks/peers/setup.sh),
# then benchmarks/RESULTS.md and its plots from the JSON. ARGS="--quick" for a smoke run.
bench: $(STAMP)
	$(PY) -m benchmarks $(ARGS)

# Mutation testing ([tool.mutmut] in pyproject.toml): mutate every loss and greedy
# evaluation, run the fast hand-worked tests against each mutant, list the survivors.
# Incremental: results are kept in mutants/ (rm -rf mutants to start afresh).
mutants: $(STAMP)
	$(PY) -m mutmut run --max-children $(WORKERS)
	$(PY) -m mutmut results

clean:
	rm -rf $(VENV) runs mutants .pytest_cache .ruff_cache
