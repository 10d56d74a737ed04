# leadscore — two commands for a newcomer:
#   make run    install, create the embedded SQLite database, load demo data, show the hottest leads, serve the dashboard
#   make test   install and run the whole test suite (SQLite always; PostgreSQL when reachable, required with CI=true)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export LEADSCORE_DATABASE_URL ?= sqlite:///$(CURDIR)/var/leadscore.db

.PHONY: install run demo test test-fast bench bench-intake bench-worker clean js chromium

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "leadscore needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

run: install
	@mkdir -p var
	$(BIN)/leadscore init
	$(BIN)/leadscore model publish examples/b2b-saas.yml --no-rescore
	$(BIN)/leadscore demo --out var/demo
	$(BIN)/leadscore leads --top 10 --explain
	$(BIN)/leadscore leads --stage mql --top 10
	$(BIN)/leadscore report funnel --from "$$($(BIN)/python -c 'import datetime as d; print((d.datetime.now(d.UTC) - d.timedelta(days=120)).date())')"
	@$(BIN)/leadscore users demo
	@echo "the dashboard: open http://127.0.0.1:8000 and sign in with the line above (Ctrl-C stops the server)"
	$(BIN)/leadscore serve --log-level warning

test: install js chromium
	$(BIN)/python -m pytest -q
	@echo "the bulk layer again, on Python's sqlite3 (what the server and worker use on SQLite):"
	LEADSCORE_SQLITE_DRIVER=stdlib $(BIN)/python -m pytest -q tests/integration -k "not postgresql"

# Browser tests: Segment's browser library from npm (pinned in tests/browser/package-lock.json)
# into build/js, and Debian's Chromium (never a downloaded browser build), driven by Playwright.
JS := build/js
ANALYTICS_NEXT := $(JS)/node_modules/@segment/analytics-next/dist/umd/index.js
AS_ROOT := $(shell test "$$(id -u)" -eq 0 || echo sudo)
APT_INSTALL := export DEBIAN_FRONTEND=noninteractive; $(AS_ROOT) apt-get update -q && $(AS_ROOT) apt-get install -y -q

$(ANALYTICS_NEXT): tests/browser/package.json tests/browser/package-lock.json
	@command -v npm >/dev/null || ($(APT_INSTALL) npm)
	@mkdir -p $(JS)
	cp tests/browser/package.json tests/browser/package-lock.json $(JS)/
	cd $(JS) && npm ci --no-audit --no-fund --ignore-scripts
	@touch $@

js: $(ANALYTICS_NEXT)

chromium:
	@command -v chromium >/dev/null || ($(APT_INSTALL) chromium)

bench: install
	$(BIN)/python benchmarks/bench_scoring.py --contacts 100000 --events 2000000

bench-intake: install
	$(BIN)/python benchmarks/bench_intake.py --events 200000 --contacts 20000

bench-worker: install
	$(BIN)/python benchmarks/bench_worker.py --contacts 1000000 --due 100 --ticks 5

clean:
	rm -rf var .pytest_cache .hypothesis
