# cnnlab: `make run` serves the app on http://localhost:8501, `make test` runs every test,
# `make dev` serves it for people editing the code (reruns on save).
# Both create .venv on first use and install what they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8501
# `make test` runs the test files in this many processes (pytest-xdist; a file stays in one
# process, so its module fixtures are shared as before). 0 runs them in this process.
TEST_WORKERS ?= 2

.PHONY: run dev test test-fast lint bench clean browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.dev-installed: requirements-dev.txt $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

# Serves with .streamlit/config.toml: file watcher and run-on-save off (fast for a class).
run: $(VENV)/.installed
	$(BIN)/streamlit run app.py --server.port $(PORT)

# For editing the code: the page reruns when a source file is saved. Each new session then
# pays for the watcher (see .streamlit/config.toml), so do not serve a class with it.
dev: $(VENV)/.installed
	$(BIN)/streamlit run app.py --server.port $(PORT) --server.fileWatcherType auto --server.runOnSave true

# The browser tests need Debian's chromium; the data tests use Debian's Fashion-MNIST IDX files.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -d /usr/share/datasets/fashion-mnist ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium dataset-fashion-mnist >/dev/null; \
	  else \
	    echo "Browser tests need Debian's chromium. Install it with: sudo apt-get install -y chromium dataset-fashion-mnist"; \
	  fi; \
	fi

test: $(VENV)/.dev-installed browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

test-fast: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -m "not e2e and not slow"

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .

# CPU benchmarks; bench/gpu_*.py are for a GPU machine and run by hand there
# (bench/load_client.py is bench/load.py's client and bench/memory_trace.py a diagnostic: no benchmarks).
bench: $(VENV)/.installed
	@for b in $(filter-out bench/gpu_% bench/load_client.py bench/memory_trace.py,$(wildcard bench/*.py)); do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache
