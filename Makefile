# Two commands: `make run` (set up + serve the demo trial) and `make test` (set up + run the suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
HOST ?= 127.0.0.1:8000

.PHONY: install run test migrate demo bench backup restore clean

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required (found %s)" % sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py load_demo

run: demo
	$(BIN)/python manage.py runserver $(HOST)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Benchmarks print their figures (BENCHMARKS.md records them). The check-run, web, export and report benchmarks
# need PostgreSQL on 127.0.0.1:5432 (as in CI); the grading benchmark needs nothing.
bench: install
	$(BIN)/python bench/run.py
	$(BIN)/python bench/checks.py
	$(BIN)/python bench/saves.py
	$(BIN)/python bench/web_load.py
	$(BIN)/python bench/exports.py
	$(BIN)/python bench/reports.py

# PostgreSQL only (DATABASE_URL): `make backup` writes backups/<database>-<timestamp>.dump;
# `make restore FILE=backups/x.dump [TARGET_DATABASE_URL=postgres://...]` replaces the target's contents.
backup: install
	$(BIN)/python manage.py backup

restore: install
	@test -n "$(FILE)" || { echo "usage: make restore FILE=backups/<name>.dump [TARGET_DATABASE_URL=postgres://...]" >&2; exit 2; }
	$(BIN)/python manage.py restore "$(FILE)" $(if $(TARGET_DATABASE_URL),--target-database-url "$(TARGET_DATABASE_URL)")

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache
