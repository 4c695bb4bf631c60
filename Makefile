# Two commands: `make run` (set up + serve the demo trial) and `make test` (set up + run the suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
HOST ?= 127.0.0.1:8000

.PHONY: install run test migrate demo bench clean

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

# Benchmarks print their figures (BENCHMARKS.md records them). The check-run and web benchmarks
# need PostgreSQL on 127.0.0.1:5432 (as in CI); the grading benchmark needs nothing.
bench: install
	$(BIN)/python bench/run.py
	$(BIN)/python bench/checks.py
	$(BIN)/python bench/web_load.py
	$(BIN)/python bench/exports.py

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache
