# The two commands a fresh machine needs: `make demo` and `make test`.
# Each target creates .venv on first use and re-installs when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest speech-tools serve clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m agent simulate fixtures/calls

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) speech-tools
	$(BIN)/pytest -q

# The audio-path tests make their callers' speech with espeak-ng and sox (Debian packages):
# installed when missing and this is root on Debian, else one sentence says what to install.
speech-tools:
	@command -v espeak-ng >/dev/null && command -v sox >/dev/null || \
	{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng sox >/dev/null; } || \
	{ echo "The audio tests need espeak-ng and sox: install them (Debian: apt-get install espeak-ng sox)."; exit 1; }

serve: $(STAMP)
	$(BIN)/python -m agent serve

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
