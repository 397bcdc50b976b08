# The two commands a person needs (see README):
#   make run   set up, ingest corpus/ into indexes/ when missing or stale, serve on :8000
#   make test  set up and run the whole test suite (the ray and adapt extras too: the Ray
#              test starts a local Ray cluster, the adaptation test trains a few steps)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The CPU wheel of torch lies on this machine's disk; pip looks there first.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
INDEX ?= indexes/default
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint setup browser

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(FIND_LINKS) "torch==2.13.0"
	$(BIN)/python -m pip install --quiet $(FIND_LINKS) -e ".[dev,ray,adapt]"
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/qa ingest corpus --index $(INDEX)
	$(BIN)/qa serve --index $(INDEX) --host $(HOST) --port $(PORT)

test: $(STAMP) browser
	$(BIN)/python -m pytest

# The browser tests drive Debian's Chromium; install it when we may (root), else they skip.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is not installed: the browser tests will be skipped"; fi; }

lint: $(STAMP)
	$(BIN)/ruff check qa_service tests benchmarks
	$(BIN)/ruff format --check qa_service tests benchmarks
	$(BIN)/mypy
