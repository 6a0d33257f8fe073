# Two commands for a newcomer:  `make serve`  and  `make test`.
# Both create .venv on first use (PyPI only; the ONNX model and config ship in models/).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEPS   := pyproject.toml $(wildcard client/pyproject.toml)

.PHONY: serve test lint typecheck bench bench-load screenshots test-browser clean-venv

$(STAMP): $(DEPS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,train]'
	if [ -f client/pyproject.toml ]; then $(BIN)/python -m pip install --quiet -e './client[litellm,dev]'; fi
	touch $(STAMP)

## serve: start the service on 127.0.0.1:8400 with embedded defaults (in-memory state, bundled models)
serve: $(STAMP)
	$(BIN)/routeiq serve

## test: lint, type-check and run the whole test suite
test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/micro.py

## bench-load: locust load matrix + raw ONNX baseline in the same run (a few minutes); see bench/RESULTS.md
bench-load: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/run_load.py --all --write

## test-browser: the dashboard in headless Chromium (apt-get install chromium chromium-driver)
test-browser: $(STAMP)
	$(BIN)/python -m pytest -m browser tests/browser -q

## screenshots: regenerate docs/images/*.png (the README's) with the browser tests
screenshots: $(STAMP)
	DASHBOARD_SCREENSHOTS=docs/images $(BIN)/python -m pytest -m browser tests/browser -q

clean-venv:
	rm -rf $(VENV)
