# protonb: `make run` sets everything up and opens the quickstart notebook;
# `make test` sets everything up and runs every test.
# `make run PORT=8890` opens Jupyter on another port (default 8888);
# `make serve PORT=9126` serves the example prototype on another port (default SERVE_PORT, 3000).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
# PORT: Jupyter's port for `make run`; given (make serve PORT=N, or in the environment) it is
# the prototype's port for `make serve` too. Otherwise `make serve` uses SERVE_PORT, the CLI's 3000.
PORT ?= 8888
SERVE_PORT ?= $(if $(filter command line environment,$(origin PORT)),$(PORT),3000)

.PHONY: run serve test test-fast lint bench conformance clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[notebook,pandas,test]'
	touch $(STAMP)

## run: open the quickstart notebook in Jupyter (it serves the example prototype and shows the dashboard)
run: $(STAMP)
	$(BIN)/jupyter notebook --ip=$(HOST) --port=$(PORT) --ServerApp.root_dir=$(CURDIR) notebooks/quickstart.ipynb $(if $(filter 0,$(shell id -u)),--allow-root,)

## serve: serve the example prototype from the command line (PORT=N for another port)
serve: $(STAMP)
	$(BIN)/protonb serve . --host $(HOST) --port $(SERVE_PORT)

## test: every test, the conformance suite, kernels and the browser included
test: $(STAMP)
	$(BIN)/python -m pytest

## test-fast: the tests that need neither a kernel nor a browser
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not kernel and not browser and not slow"

lint: $(STAMP)
	$(BIN)/ruff check protonb tests benchmarks

conformance: $(STAMP)
	$(BIN)/python ../shared/conformance/check.py --serve "$(BIN)/python -m protonb serve {prototype} --port {port}"

## bench: protonb beside the kit and the reference app (needs ../shared/bench/setup.sh first)
bench: $(STAMP)
	PYTHON=$(CURDIR)/$(BIN)/python benchmarks/load.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
