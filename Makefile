# Outpost: `make test` is the whole test suite (the same command CI runs via .ci/run);
# `make demo` runs the desktop app on embedded defaults.

PYTHON_SYS := $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp
PYTEST_ARGS ?=
# `make test` runs the tests on this many pytest-xdist workers (CI has 2 cores; `auto`: one a
# core; 0: in this one process, as before session 12). --dist loadgroup: any test may run on
# any worker, except those marked xdist_group("NAME"), kept together on one in file order.
PYTEST_WORKERS ?= 2
LINT_PATHS := core hubserver desktop tests bench

.PHONY: venv test lint typecheck demo soak screenshots clean

venv: $(STAMP)

# Reinstall only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml
	@test -x $(PY) || { echo "creating $(VENV) with $(PYTHON_SYS)"; $(PYTHON_SYS) -m venv $(VENV); }
	$(PY) -m pip install -q -e '.[desktop,dev,bench]'
	@touch $(STAMP)

lint: venv
	$(VENV)/bin/ruff check $(LINT_PATHS)

typecheck: venv
	$(VENV)/bin/mypy

# pytest exits 5 when it collected no tests: scripts/run-pytest treats that as a failure too.
test: lint typecheck
	QT_QPA_PLATFORM=offscreen scripts/with-pg scripts/run-pytest $(PY) -q \
		-n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

demo: venv
	$(VENV)/bin/outpost demo

# The long tier: every test marked slow, with OUTPOST_SOAK=1 selecting the soak sizes of
# tests/chaos and tests/reliability (20 runs per crash point, 10,000 fuzz cases, 2,000 leak
# cycles, OUTPOST_CHAOS_SECONDS of chaos); figures in docs/reliability.md.
soak: venv
	OUTPOST_SOAK=1 QT_QPA_PLATFORM=offscreen scripts/with-pg scripts/run-pytest $(PY) -q -s \
		-m slow $(PYTEST_ARGS)

# The README's screenshots (docs/img/*.png) from the real app, offscreen, against a real hub
# on 127.0.0.1 with the demo data (scripts/screenshots.py). Look at each PNG before committing.
screenshots: venv
	QT_QPA_PLATFORM=offscreen $(PY) scripts/screenshots.py

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis .pgtest
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
