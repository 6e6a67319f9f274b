# The two commands of the README: `make run` (a local cluster running the example) and
# `make test` (every test tier). Both install what they need first.
PYTHON ?= python3
PYTEST = $(PYTHON) -m pytest

.PHONY: setup run test test-fast lint bench bench-nanoaod clean

setup:
	@missing=""; for tool in redis-server nginx; do \
	  command -v $$tool >/dev/null || [ -x /usr/sbin/$$tool ] || missing="$$missing $$tool"; done; \
	[ -z "$$missing" ] || { \
	  [ "$$(id -u)" = 0 ] || { echo "missing:$$missing (apt-get install$$missing)"; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; }
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[test]'

run: setup
	$(PYTHON) -m rhc local --workers 2 -- sh -c \
	  '$(PYTHON) examples/squares.py && $(PYTHON) examples/dimuon.py'

lint:
	$(PYTHON) -m ruff check rhc tests benchmarks examples
	$(PYTHON) -m ruff format --check rhc tests benchmarks examples

# Every tier once: unit, integration (real redis-server and workers), e2e, chaos.
test: setup lint
	$(PYTEST) tests

# Unit and integration only, for iterating.
test-fast: setup
	$(PYTEST) tests/unit tests/integration -x

bench: setup
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[bench]'
	$(PYTHON) benchmarks/core.py

# The NanoAOD benchmark: rhc against a local loop and coffea, and cold/warm reads over HTTP.
bench-nanoaod: setup
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[bench]'
	$(PYTHON) benchmarks/nanoaod.py

clean:
	rm -rf .cache .pytest_cache .ruff_cache build *.egg-info benchmarks/results
