# Two commands do all set-up on a fresh machine with Python 3.11+ and make:
#   make demo   create .venv, install, run the demo   (make demo ARGS="--duration 60")
#   make test   create .venv, install, run every test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: demo test faults lint install chromium espeak nats messages clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "homewatch needs Python 3.11 or newer; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall whenever pyproject.toml changes; the stamp makes a second run fast.
$(VENV)/.installed: pyproject.toml $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

install: $(VENV)/.installed

# The browser tests (tests/browser/) drive Debian's Chromium, never a downloaded browser: `make test`
# installs it (the demo does not need it) when it is missing and this runs as root with apt-get (CI); otherwise one line says how. Without it the
# browser tests skip, except under CI (CI set), where they fail.
CHROMIUM ?= /usr/bin/chromium
chromium:
	@if [ -n "$$HOMEWATCH_CHROMIUM" ] || [ -x "$(CHROMIUM)" ] || command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "make: installing Chromium for the browser tests (apt-get install chromium)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
			|| echo "make: apt-get could not install chromium; the browser tests will skip (and fail under CI)"; \
	else echo "make: no Chromium, so the browser tests will skip; install it: sudo apt-get install -y chromium (or set HOMEWATCH_CHROMIUM)"; fi

# The hub's spoken prompts (edge_agent/voice/, docs/hub.md "Voice prompts") use Debian's espeak-ng, no
# cloud: `make test` and `make demo` install it when it is missing and this runs as root with apt-get (CI);
# otherwise one line says how. Without it the voice tests skip, except under CI (CI set), where they fail.
espeak:
	@if command -v espeak-ng >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "make: installing espeak-ng for the hub's spoken prompts (apt-get install espeak-ng)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null) \
			|| echo "make: apt-get could not install espeak-ng; the voice tests will skip (and fail under CI)"; \
	else echo "make: no espeak-ng, so the voice tests will skip; install it: sudo apt-get install -y espeak-ng"; fi

# The broker tier beyond one machine (issue 22, docs/scaling.md) is tested on a real three-node NATS JetStream
# cluster (tests/nats_cluster.py): Debian's nats-server, installed like espeak-ng above; without it those
# tests skip, except under CI (CI set), where they fail.
nats:
	@if command -v nats-server >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "make: installing nats-server for the broker-cluster tests (apt-get install nats-server)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null) \
			|| echo "make: apt-get could not install nats-server; the cluster tests will skip (and fail under CI)"; \
	else echo "make: no nats-server, so the cluster tests will skip; install it: sudo apt-get install -y nats-server"; fi

# The staff's text in Danish and English (docs/web-ui.md): extract every marked string into
# gateway/locale/messages.pot and merge it into both catalogues; then write the Danish of each new or fuzzy
# entry in gateway/locale/da/LC_MESSAGES/messages.po (tests/gateway/api/test_i18n.py fails until then).
LOCALE_DIR := gateway/locale
messages: install
	$(BIN)/pybabel extract -F babel.cfg --add-location=file --sort-by-file --project=homewatch \
		--version=0.1.0 --copyright-holder=homewatch -o $(LOCALE_DIR)/messages.pot .
	$(BIN)/pybabel update -i $(LOCALE_DIR)/messages.pot -d $(LOCALE_DIR) --ignore-obsolete --no-fuzzy-matching

demo: install espeak
	$(BIN)/homewatch demo $(ARGS)

# Two test processes (pytest-xdist), a file each at a time: a file's module-scoped set-up (a demo run, a
# browser's world) stays in one process. Files are handed out in collection order, which puts the longest
# first (tests/conftest.py), not xdist's default of the most tests first, which left the 2-minute
# one-test schemathesis file to the end. TEST_WORKERS=0 runs everything in this one process.
TEST_WORKERS ?= 2
test: install chromium espeak nats
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(ARGS)

# The fault tests (each ends with a reconciliation from PostgreSQL, printed as one table at the end) and
# the fuzzers at a large budget. `make test` runs the same tests with the fuzzers' small budget.
FUZZ_EXAMPLES ?= 2000
ATHERIS_RUNS ?= 500000
faults: install
	HOMEWATCH_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) HOMEWATCH_ATHERIS_RUNS=$(ATHERIS_RUNS) \
		$(BIN)/python -m pytest -m "faults or fuzz" -o timeout=3600 $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
