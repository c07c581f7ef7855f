# Two commands for a fresh machine (Python 3.11): `make book` runs the main job,
# `make test` runs every test. Both create the virtual environment first if missing.
# `make test-fast` is the inner loop: import layers and the tests neither slow nor browser (< 1 min).
# `make lab` opens JupyterLab on the notebooks (the .py files open as notebooks).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PROFILE ?= cpu

.PHONY: env book lab test test-fast clean-book

$(STAMP): pyproject.toml tools/install_env.py semi3lib/interactive/jupyterlab-overrides.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python tools/install_env.py
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (semi3)" >/dev/null
	$(BIN)/python -m semi3lib.interactive.lab --install-settings
	touch $(STAMP)

env: $(STAMP)

book: env
	$(BIN)/semi3 book run --profile $(PROFILE)
	$(BIN)/semi3 export --profile $(PROFILE) --out _build/search-export --quiet
	$(BIN)/python -m semi3lib.book.site $(if $(SITE_TEMPLATE),--template $(SITE_TEMPLATE))

lab: env
	$(BIN)/python -m semi3lib.interactive.lab $(LAB_ARGS)

test: env
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: env
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

clean-book:
	rm -rf _build
