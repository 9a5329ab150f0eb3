# make run   set up, migrate, seed the demo account and serve it on http://127.0.0.1:8000
#            (make run PORT=8001 for another port; make run RESET_PASSWORD=1 gives the demo
#            owner a new password, printed with the keys; otherwise it keeps the one it has)
# make test  set up, run the linter, migrate a new database and check it matches the models
#            (flask db upgrade + db check), then run the whole test suite
#            (FRESHCOM_TEST_DATABASE_URI=postgresql+psycopg://... make test runs it on PostgreSQL)
# make messages  extract the email templates' messages into freshcom_customers/translations/
#            messages.pot (babel.cfg) and merge them into every catalogue there; translate
#            the new entries of each messages.po (docs/deploy.md, "Emails")
# make bench serve it with gunicorn on PostgreSQL and measure it with wrk (bench/run.py,
#            docs/benchmarks.md); installs wrk if missing, seeds a million customers once

PYTHON ?= python3
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi

.PHONY: run test bench messages

TRANSLATIONS := freshcom_customers/translations

# Checked before the seed, so that a busy port stops `make run` before it changes anything.
# SO_REUSEADDR as gunicorn binds: a port whose last connections are closing counts as free.
define PORT_IS_FREE
import socket, sys
port = int(sys.argv[1])
try:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
except OSError as e:
    sys.exit(f"Port {port} on 127.0.0.1 is not free ({e.strerror}); another make run? "
             f"Pick another port: make run PORT={port + 1}")
endef
export PORT_IS_FREE

# gunicorn.conf.py holds the production settings; the demo serves on the port asked for,
# with two workers (SQLite takes one writer at a time).
run: $(VENV)/installed
	@$(BIN)/python -c "$$PORT_IS_FREE" $(PORT)
	$(FLASK) db upgrade
	$(FLASK) demo seed $(if $(filter 1 yes true,$(RESET_PASSWORD)),--reset-password)
	@echo "Serving the demo on http://127.0.0.1:$(PORT) (Ctrl-C stops it)"
	$(BIN)/gunicorn --workers 2 --bind 127.0.0.1:$(PORT) wsgi:app

test: $(VENV)/installed
	$(BIN)/ruff check .
	$(BIN)/python -m tests.check_migrations
	$(BIN)/pytest

# No compiled .mo files: services/mail.py reads the .po catalogues at start.
messages: $(VENV)/installed
	$(BIN)/pybabel extract --mapping-file babel.cfg --add-location file --sort-output \
		--project freshcom_customers --copyright-holder "" --msgid-bugs-address "" \
		--header-comment "# The messages of freshcom_customers' emails (make messages)." \
		--output-file $(TRANSLATIONS)/messages.pot freshcom_customers
	$(BIN)/pybabel update --input-file $(TRANSLATIONS)/messages.pot --output-dir $(TRANSLATIONS) \
		--ignore-obsolete --no-fuzzy-matching

bench: $(VENV)/installed
	$(BIN)/python bench/run.py --rounds 3

$(VENV)/installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@
