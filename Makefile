# Two entry points (see README): `make demo` runs the main job against the
# built-in emulator; `make test` runs lint, type check and the whole test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest clean lock

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The demo needs mvsync only, not the test tools: a first `make demo` stays quick.
DEMO_STAMP := $(VENV)/.demo-installed

$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e .
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/python examples/demo.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest

test: lint typecheck pytest

# The lock of mvsync's runtime dependencies, with a sha256 for every file, for every
# platform and Python 3.11-3.13 at once (uv's --universal). Run it after changing
# [project] dependencies in pyproject.toml; tests/test_release.py checks that it matches.
UV ?= uv
lock:
	$(UV) pip compile pyproject.toml --universal --generate-hashes --python-version 3.11 \
		--custom-compile-command "make lock" --quiet -o requirements/mvsync.lock.txt

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .mypy_cache .pytest_cache .ruff_cache
