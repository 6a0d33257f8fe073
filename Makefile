# Two commands for a newcomer:  `make serve`  and  `make test`.
# Both create .venv on first use (PyPI only; the ONNX model and config ship in models/).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Exact versions with hashes (`make lock` writes them from the pyproject.toml ranges):
# dev.lock is everything `make test` needs (service, client + litellm, dev, train extras);
# service.lock is the service's own dependencies at the same versions, for the Docker image.
LOCK_DEV     := requirements/dev.lock
LOCK_SERVICE := requirements/service.lock
UV_VERSION   := 0.13.8
COMPILE       = $(BIN)/uv pip compile --quiet --native-tls --generate-hashes \
                --python-version 3.11 --python-platform x86_64-unknown-linux-gnu

.PHONY: serve test lint typecheck bench bench-load screenshots test-browser clean-venv lock

$(STAMP): pyproject.toml client/pyproject.toml $(LOCK_DEV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK_DEV)
	# The two projects themselves, editable; their dependencies are the locked ones above.
	$(BIN)/python -m pip install --quiet --no-deps -e . -e ./client
	touch $(STAMP)

## lock: re-resolve requirements/*.lock from the pyproject.toml ranges (newest versions allowed)
lock:
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(COMPILE) pyproject.toml client/pyproject.toml --extra dev --extra train --extra litellm -o $(LOCK_DEV)
	$(COMPILE) pyproject.toml -c $(LOCK_DEV) -o $(LOCK_SERVICE)
	# the LiteLLM + routeiq-client image (docker/gateway.Dockerfile): litellm[proxy] resolves apart
	$(COMPILE) client/pyproject.toml requirements/gateway.in --extra litellm -o requirements/gateway.lock

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
