# Two commands do all set-up on a fresh machine with Python 3.11+ and make:
#   make demo   create .venv, install, run the demo   (make demo ARGS="--duration 60")
#   make test   create .venv, install, run every test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: demo test faults lint install clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "homewatch needs Python 3.11 or newer; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall whenever pyproject.toml changes; the stamp makes a second run fast.
$(VENV)/.installed: pyproject.toml $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/homewatch demo $(ARGS)

test: install
	$(BIN)/python -m pytest $(ARGS)

# The fault tests (each ends with a reconciliation from PostgreSQL, printed as one table at the end) and
# the fuzzers at a large budget. `make test` runs the same tests with the fuzzers' small budget.
FUZZ_EXAMPLES ?= 2000
ATHERIS_RUNS ?= 500000
faults: install
	HOMEWATCH_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) HOMEWATCH_ATHERIS_RUNS=$(ATHERIS_RUNS) \
		$(BIN)/python -m pytest -m "faults or fuzz" -o timeout=3600 $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
