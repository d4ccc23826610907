# Two commands on a fresh machine with Python 3.11+: `make demo` and `make test`.
# Each creates .venv and installs benchctl with its test extras first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck unit bench clean install reliability

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "benchctl needs Python 3.11 or newer; set PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/benchctl demo

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck unit

# QCoDeS, the store figure's baseline, gets an environment of its own (.venv/bench-qcodes):
# its many dependencies must not change what benchctl's environment imports.
bench: $(STAMP)
	@test -x $(VENV)/bench-qcodes/bin/python || $(PYTHON) -m venv $(VENV)/bench-qcodes
	@$(VENV)/bench-qcodes/bin/python -c 'import qcodes' 2>/dev/null \
	  || $(VENV)/bench-qcodes/bin/python -m pip install --quiet qcodes \
	  || echo "QCoDeS could not be installed: the store figure will say why it has no baseline"
	$(BIN)/python -m benchmarks

# The long fault and crash tests (BENCHCTL_SLOW=1: every fault x instrument, the 52 seeded
# SIGKILLs, crash boundaries, ambient runs) and the reliability table they observe. CI runs
# this after `make test`, writing the table outside the tree (RELIABILITY_OUT).
RELIABILITY_OUT ?= docs/reliability.md
reliability: $(STAMP)
	$(BIN)/python tools/reliability_table.py --out $(RELIABILITY_OUT)

clean:
	rm -rf $(VENV) demo-out .pytest_cache .mypy_cache .ruff_cache
