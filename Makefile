# Everything starts from a fresh machine with only Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: all test unit docs lint bench reliability mutate demo clean

all: test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel

# Reinstall whenever the metadata changes.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,docs,app]'
	touch $(STAMP)

# The whole suite: unit tests, the doctests in docs/*.rst (collected by
# src/zope_sessionx/tests/test_docs.py), 100 % branch coverage of the
# package, and the Sphinx documentation built with warnings as errors.
test: $(STAMP)
	$(BIN)/python -m pytest --cov --cov-branch --cov-report=term-missing --cov-fail-under=100
	$(BIN)/python -m sphinx -W -q -b html -d $(VENV)/doctrees docs docs/_build/html

unit: $(STAMP)
	$(BIN)/python -m pytest

docs: $(STAMP)
	$(BIN)/python -m sphinx -W -b html -d $(VENV)/doctrees docs docs/_build/html

lint: $(STAMP)
	$(BIN)/python -m pip install --quiet flake8 isort
	$(BIN)/python -m flake8 src benchmarks tools
	$(BIN)/python -m isort --check-only --diff src benchmarks tools

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

# Load, faults and hostile input against real clusters (docs/reliability.rst);
# RELIABILITY_ARGS="--full" for the full sizes.
reliability: $(STAMP)
	$(BIN)/python benchmarks/reliability.py $(RELIABILITY_ARGS)

# The demo application on http://127.0.0.1:8080/ (docs/deployment.rst);
# DEMO_ARGS="--port 8081 --database zeo://127.0.0.1:8100" to change it.
demo: $(STAMP)
	$(BIN)/python -m zope_sessionx.demo $(DEMO_ARGS)

# Break key behaviours one line at a time (docs/testing.rst).
mutate: $(STAMP)
	$(BIN)/python tools/mutate.py

clean:
	rm -rf $(VENV) build dist docs/_build .coverage .pytest_cache src/*.egg-info
