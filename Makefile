# dancenow: `make demo` runs the whole pipeline on the built-in demo character; `make test` runs lint and tests.
# Both create the virtual environment .venv on first use and reinstall only when pyproject.toml or
# constraints.txt change (the stamp file is keyed on their hash).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HASH := $(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
STAMP := $(VENV)/.stamp-$(HASH)
# glibc malloc keeps big freed buffers instead of unmapping them every step: faster CPU training (issue 13).
# The same value as GLIBC_TUNABLES in dancenow_utils/runtime_env.py, which explains it; keep the two in step.
# Override with `make demo MALLOC_TUNABLES=` (empty: glibc's defaults).
MALLOC_TUNABLES ?= glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296
RUN := env PATH="$(CURDIR)/$(BIN):$$PATH" GLIBC_TUNABLES=$(MALLOC_TUNABLES) MPLBACKEND=Agg
PYTEST_ARGS ?=

.PHONY: install demo test lint lab bench bench-stages constraints clean-results notebook-outputs

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -c constraints.txt -e ".[dev]"
	$(BIN)/python -m pip check
	$(BIN)/python -m dancenow_utils.pose.tflite_models > /dev/null  # the pose models, fetched once into ~/.cache
	@rm -f $(VENV)/.stamp-*
	@touch $@

demo: $(STAMP)
	$(RUN) $(BIN)/python -m dancenow_utils.run_notebooks --all

test: $(STAMP) lint browser
	$(RUN) $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check dancenow_utils tests bench tools

# The browser the tests drive (Debian's chromium), installed with apt-get when missing; says why where it cannot.
.PHONY: browser
browser:
	@bash tools/ensure_browser.sh

# Run the five notebooks on a small demo (a few minutes) and store their slimmed outputs in notebooks/*.ipynb, so a
# code host shows their figures (tests/test_notebooks.py checks the cells still match tools/build_notebooks.py).
notebook-outputs: $(STAMP)
	$(RUN) $(BIN)/python tools/build_notebooks.py --execute

lab: $(STAMP)
	$(RUN) $(BIN)/jupyter lab notebooks

bench: $(STAMP)
	$(RUN) $(BIN)/python bench/pose_accuracy.py
	$(RUN) $(BIN)/python bench/pose_speed.py
	$(RUN) $(BIN)/python bench/train_speed.py
	$(RUN) $(BIN)/python bench/infer_speed.py

bench-stages: $(STAMP)
	$(RUN) $(BIN)/python bench/edn_stages.py

constraints: $(STAMP)
	( head -3 constraints.txt; $(BIN)/python -m pip freeze --exclude-editable | grep -v -i '^dancenow' ) > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean-results:
	rm -rf results/notebooks results/index.html
