# Parley: `make run` serves the demo, `make test` runs every test. Both install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint format bench chromium clean cluster nginx

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/activate
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.test: requirements-test.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $@

# Browser tests drive Debian's Chromium; Playwright cannot download its own browser here.
chromium:
	@dpkg -s chromium fonts-noto-color-emoji >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium (and an emoji font) for the browser tests"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium fonts-noto-color-emoji; }

run: $(VENV)/.runtime
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@echo "Parley is on http://127.0.0.1:$(PORT)/ — log in as alice, bob, carol or dave."
	DEBUG=$${DEBUG:-true} $(VENV)/bin/uvicorn --host 127.0.0.1 --port $(PORT) --lifespan off \
		--no-proxy-headers --timeout-keep-alive 75 --ws-per-message-deflate false \
		messages_site.asgi:application

# Two Uvicorn processes behind nginx on :8000, a Celery worker and beat, on PostgreSQL + Redis.
CLUSTER_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/parley
CLUSTER_REDIS_URL ?= redis://127.0.0.1:6379/0

nginx:
	@command -v nginx >/dev/null 2>&1 || { \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nginx-light; }

cluster: $(VENV)/.runtime nginx
	mkdir -p var/nginx/logs var/nginx/tmp
	-psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE parley" 2>/dev/null
	DATABASE_URL=$(CLUSTER_DATABASE_URL) REDIS_URL=$(CLUSTER_REDIS_URL) $(PY) manage.py migrate --noinput
	DATABASE_URL=$(CLUSTER_DATABASE_URL) REDIS_URL=$(CLUSTER_REDIS_URL) $(PY) manage.py seed_demo
	$(PY) manage.py collectstatic --noinput --clear -v 0
	@echo "Parley cluster on http://127.0.0.1:8000/ (nginx -> Uvicorn :8001 and :8002)."
	DATABASE_URL=$(CLUSTER_DATABASE_URL) REDIS_URL=$(CLUSTER_REDIS_URL) \
		$(VENV)/bin/honcho -f deploy/Procfile -d . start

test: $(VENV)/.test chromium nginx
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.test
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The quick ones; docs/BENCHMARKS.md has the command of every benchmark (the load ones need
# DATABASE_URL and REDIS_URL).
bench: $(VENV)/.test
	$(PY) bench/render.py
	$(PY) bench/fanout.py

clean:
	rm -rf $(VENV) var
