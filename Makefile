# make run   set up, migrate, seed the demo account and serve it on http://127.0.0.1:8000
# make test  set up, run the linter, migrate a new database and check it matches the models
#            (flask db upgrade + db check), then run the whole test suite
#            (FRESHCOM_TEST_DATABASE_URI=postgresql+psycopg://... make test runs it on PostgreSQL)
# make bench serve it with gunicorn on PostgreSQL and measure it with wrk (bench/run.py,
#            docs/benchmarks.md); installs wrk if missing, seeds a million customers once

PYTHON ?= python3
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi

.PHONY: run test bench

run: $(VENV)/installed
	$(FLASK) db upgrade
	$(FLASK) demo seed
	@echo "Serving the demo on http://127.0.0.1:$(PORT) (Ctrl-C stops it)"
	$(BIN)/gunicorn --workers 2 --no-control-socket --bind 127.0.0.1:$(PORT) wsgi:app

test: $(VENV)/installed
	$(BIN)/ruff check .
	$(BIN)/python -m tests.check_migrations
	$(BIN)/pytest

bench: $(VENV)/installed
	$(BIN)/python bench/run.py

$(VENV)/installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@
