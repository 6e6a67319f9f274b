# The two commands of the README: `make run` (a local cluster running the example) and
# `make test` (every test tier). Both install what they need first.
PYTHON ?= python3
PYTEST = $(PYTHON) -m pytest

.PHONY: setup run test test-fast lint bench clean

setup:
	@command -v redis-server >/dev/null || { \
	  [ "$$(id -u)" = 0 ] || { echo "redis-server is missing: apt-get install redis-server"; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[test]'

run: setup
	$(PYTHON) -m rhc local --workers 2 -- $(PYTHON) examples/squares.py

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

clean:
	rm -rf .cache .pytest_cache .ruff_cache build *.egg-info benchmarks/results
