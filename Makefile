# The no-Docker way to run this Astro project (see README). Everything lives in .venv/ and .local/.
PYTHON ?= python3
VENV_PY := .venv/bin/python

.PHONY: help install browser postgres redis compose astro-check bench bench-scale bench-large run stop demo objects doctor gc status test lint docs format lock

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

install:  ## create .venv from requirements-local.lock (uv) and install Azurite (npm)
	@$(PYTHON) localdev/bootstrap.py

browser:  ## install Debian's chromium for the browser test, if missing (apt-get; root or sudo)
	@$(PYTHON) localdev/bootstrap.py --browser

EXECUTOR ?= local
WORKERS ?= 2
CONCURRENCY ?= 4
run: install $(if $(filter celery,$(EXECUTOR)),postgres redis)  ## start the local object stores and Airflow on http://127.0.0.1:8080 (EXECUTOR=celery WORKERS=2: PostgreSQL, Redis and Celery workers)
	@$(VENV_PY) -m localdev up --executor $(EXECUTOR) --workers $(WORKERS) --concurrency $(CONCURRENCY)

stop:  ## stop every process `make run` / `make demo` started
	@if [ -x $(VENV_PY) ]; then $(VENV_PY) -m localdev down; else echo "Nothing was running."; fi

demo: install  ## run both example DAGs headless and list the objects they stored
	@$(VENV_PY) -m localdev demo

objects: install  ## list the objects in the bucket next to the XCom references
	@$(VENV_PY) -m localdev objects

doctor: install  ## preflight check of the active backend against the running local stores (ARGS="--take-over" to claim a location another deployment holds)
	@$(VENV_PY) -m localdev doctor $(ARGS)

gc: install  ## list orphaned objects (dry run); ARGS="--older-than-hours 0 --delete" to delete them
	@$(VENV_PY) -m localdev gc $(ARGS)

status:  ## what is running
	@$(VENV_PY) -m localdev status

test: install browser compose postgres redis  ## the whole test suite (starts and stops its own local servers)
	@XCOM_REQUIRE_SERVERS=1 $(VENV_PY) -m pytest

compose:  ## install Debian's docker-compose (compose v1: checks compose files with no engine), if missing
	@$(PYTHON) localdev/bootstrap.py --compose

astro-check: install compose  ## replay every Astro CLI step (image build with pip, dev pytest, dev parse, compose, connections) and print a table
	@$(VENV_PY) -m localdev.astro_check $(ARGS)

bench: install  ## benchmark vs the database backend, common.io, the tutorial (ARGS="--quick" for a smoke run)
	@$(VENV_PY) -m bench $(ARGS)

postgres:  ## install Debian's PostgreSQL for the at-scale benchmark, if missing (apt-get; root or sudo)
	@$(PYTHON) localdev/bootstrap.py --postgres

redis:  ## install Debian's redis-server for the Celery deployment, if missing (apt-get; root or sudo)
	@$(PYTHON) localdev/bootstrap.py --redis

bench-scale: install postgres redis  ## 500 mapped frames and 2,000 mapped JSON values on PostgreSQL, LocalExecutor and Celery with 2 and 4 workers, ours vs the database backend (~55 min; ARGS="--executors celery" ~40 min)
	@$(VENV_PY) -m bench.scale $(ARGS)

bench-large: install postgres  ## a 300 MB and a 1 GB value (bytes and a DataFrame) pushed and pulled under airflow standalone
	@$(VENV_PY) -m bench.large $(ARGS)

lint: install  ## ruff lint and format check, mypy type check, the docs site built with warnings as errors
	@.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy \
		&& out=$$(NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict 2>&1) \
		&& echo "Docs site built: no warnings." || { echo "$$out"; exit 1; }

docs: install  ## serve the documentation site on http://127.0.0.1:8000, rebuilt on every edit
	@NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs serve -a 127.0.0.1:8000

format: install  ## ruff format and autofix
	@.venv/bin/ruff format . && .venv/bin/ruff check --fix .

lock: install  ## re-resolve requirements-local.lock from requirements-local.in
	@.venv/bin/uv pip compile --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
		--no-header requirements-local.in -o requirements-local.lock
