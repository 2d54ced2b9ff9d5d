# Cảnh Giác — the two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
DEMO_ARGS ?=

.PHONY: demo test lint bench install compile clean
.DELETE_ON_ERROR:

# mypyc build of the feature engine (setup.py); rebuilt whenever its source changes
COMPILED_SRC := features/events.py features/devices.py features/engine.py features/reference.py \
	setup.py

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

features/_compiled.json: $(COMPILED_SRC) | $(STAMP)
	$(BIN)/python setup.py --quiet build_ext --inplace

compile: features/_compiled.json

demo: compile
	$(BIN)/canhgiac demo $(DEMO_ARGS)

test: compile
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: compile
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) .canhgiac .pytest_cache .mypy_cache .ruff_cache build
	rm -f features/*.so features/_compiled.json
