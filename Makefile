# dancenow: `make demo` runs the whole pipeline on the built-in demo character; `make test` runs lint and tests.
# Both create a virtual environment on first use and reinstall only when pyproject.toml or constraints.txt change
# (the stamp file is keyed on their hash). Each Python has its own: `.venv` for the default `python3`,
# `.venv-python3.13` for `make test PYTHON=python3.13` (found through pyenv when not on PATH: tools/find_python.sh).

PYTHON ?= python3
VENV ?= $(if $(filter python3,$(PYTHON)),.venv,.venv-$(notdir $(PYTHON)))
BIN := $(VENV)/bin
HASH := $(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
STAMP := $(VENV)/.stamp-$(HASH)
# glibc malloc keeps big freed buffers instead of unmapping them every step: faster CPU training (issue 13).
# The same value as GLIBC_TUNABLES in dancenow_utils/runtime/env.py, which explains it; keep the two in step.
# Override with `make demo MALLOC_TUNABLES=` (empty: glibc's defaults).
MALLOC_TUNABLES ?= glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296
RUN := env PATH="$(CURDIR)/$(BIN):$$PATH" GLIBC_TUNABLES=$(MALLOC_TUNABLES) MPLBACKEND=Agg
PYTEST_ARGS ?=

.PHONY: install demo test lint python-version lab bench bench-stages constraints clean-results notebook-outputs

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || { py=$$(tools/find_python.sh $(PYTHON)) && echo "creating $(VENV) with $$py" && \
		"$$py" -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip
	@# mediapipe 0.10.14 (the pose backend before LiteRT) pins protobuf<5: an old venv drops it, or pip check fails
	@! $(BIN)/python -m pip show -q mediapipe 2>/dev/null || $(BIN)/python -m pip uninstall -y -q mediapipe
	$(BIN)/python -m pip install -c constraints.txt -e ".[dev]"
	$(BIN)/python -m pip check
	$(BIN)/python -m dancenow_utils.pose.tflite_models > /dev/null  # the pose models, fetched once into ~/.cache
	@# the puppet page's browser runtime (onnxruntime-web, with npm pack), fetched once into ~/.cache; without npm the
	@# export says what to do when it needs it
	$(BIN)/python -m dancenow_utils.transfer.ort_web > /dev/null || echo "warning: onnxruntime-web not fetched (see above); the puppet page export will ask for it"
	@rm -f $(VENV)/.stamp-*
	@touch $@

demo: $(STAMP) python-version
	$(RUN) $(BIN)/python -m dancenow_utils.notebook.runner --all

test: $(STAMP) lint browser python-version
	$(RUN) $(BIN)/python -m pytest $(PYTEST_ARGS)

python-version: $(STAMP)
	@$(BIN)/python -c 'import sys; print(f"== Python {sys.version.split()[0]} ({sys.executable}, $(VENV))")'

lint: $(STAMP)
	$(BIN)/ruff check dancenow_utils tests bench tools notebooks

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
