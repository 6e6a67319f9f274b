# SPDX-License-Identifier: BSD-3-Clause
"""The compose stack of compose/compose.yaml, brought up once for the e2e tests by pytest-docker
under a project name of its own (its own network, volumes, secrets and Jupyter port), with the
mini pool evicting a worker every 30 s, and torn down with its volumes at the end.

The images must exist (`make images`); a Docker engine must answer (`make setup-docker`).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import tomllib
from pytest_docker.plugin import Services, get_docker_services

from rhc import __version__
from rhc.condor.minipool.execution import ENGINE_TIMEOUT
from rhc.local import free_port
from tests.conftest import REPOSITORY
from tests.e2e.terminal import Typed, type_in_terminal

COMPOSE_FILE = REPOSITORY / "compose" / "compose.yaml"
STACK_SCRIPT = REPOSITORY / "compose" / "stack.sh"
PROBE = Path(__file__).with_name("probe.py")
IMAGES = ("worker", "worker-coffea", "manager", "minicondor", "redis", "nginx", "xrootd")
STACK_LABEL = "org.rhc.stack"
POOL_LABEL = "rhc.minipool"  # rhc.condor.minipool.execution.POOL_LABEL; its value: the project
EVICT_EVERY = 30  # seconds: containers take seconds to start on the vfs storage driver
README_COMMAND = "rhc condor submit -n 2"
"""What the README has a newcomer type in a JupyterLab terminal to get workers."""
FIGURES: dict[str, object] = {}
"""What the e2e run measured, printed at the end of the run."""


class Stack:
    """One compose project of the rhc stack: commands in its containers, its secrets."""

    def __init__(self, project: str, state: Path) -> None:
        self.project = project
        self.state = state
        self.env_file = state / ".env"
        self.environment = dict(
            line.split("=", 1) for line in self.env_file.read_text().splitlines() if "=" in line
        )
        self.jupyter_url = f"http://127.0.0.1:{self.environment['RHC_JUPYTER_PORT']}"
        self.dashboard_url = f"http://127.0.0.1:{self.environment['RHC_DASHBOARD_PORT']}/"

    @property
    def command(self) -> list[str]:
        return [
            *("docker", "compose", "--env-file", str(self.env_file)),
            *("-f", str(COMPOSE_FILE), "-p", self.project),
        ]

    def compose(self, *arguments: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self.command, *arguments], capture_output=True, text=True, timeout=timeout
        )

    def exec_command(
        self, *arguments: str, service: str = "jupyter", environment: dict | None = None
    ) -> list[str]:
        """The argv of a command in a service's container (by default jupyter, as an analyst
        types it in its terminal). `docker exec`: `docker compose exec` loses the exit status
        on this engine."""
        variables = [f"--env={name}={value}" for name, value in (environment or {}).items()]
        return ["docker", "exec", "-i", *variables, f"{self.project}-{service}-1", *arguments]

    def exec(
        self,
        *arguments: str,
        service: str = "jupyter",
        stdin: str | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.exec_command(*arguments, service=service),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def probe(self, *arguments: str, config: str | None = None, timeout: float = 180) -> object:
        """Run the probe in the jupyter container; config: its RHC_CONFIG_FILE there, if not
        the notebook's own."""
        environment = {"RHC_CONFIG_FILE": config} if config else {}
        command = self.exec_command("python", "-", *arguments, environment=environment)
        done = subprocess.run(
            command, input=PROBE.read_text(), capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, f"probe {arguments} failed: {done.stderr}"
        return json.loads(done.stdout.strip().splitlines()[-1])

    def secrets(self) -> dict[str, str]:
        """The generated secrets, by what they are: the Jupyter, pool and dashboard tokens, the rhc
        secret, the task key, the password of every Redis user, and the TLS key."""
        directory = self.state / "secrets"
        found = {"jupyter_token": (directory / "jupyter_token").read_text().strip()}
        found["pool token"] = (directory / "pool_token").read_text().strip()
        found["dashboard token"] = self.dashboard_token
        for name in ("rhc.toml", "worker.toml", "monitor.toml", "admin.toml"):
            found[f"Redis password in {name}"] = self.settings(name)["redis_password"]
        found["rhc secret"] = self.settings("rhc.toml")["secret"]
        found["task key"] = self.settings("rhc.toml")["task_key"].split(":", 1)[1]
        key = (directory / "redis" / "tls" / "redis.key").read_text()
        found["TLS key"] = "".join(key.strip().splitlines()[1:-1])
        return found

    @property
    def dashboard_token(self) -> str:
        return (self.state / "secrets" / "dashboard_token").read_text().strip()

    def settings(self, name: str) -> dict:
        """A generated config file's settings (read as the test's uid, whoever owns it)."""
        return tomllib.loads((self.state / "secrets" / name).read_text())

    def containers(self, engine: docker.DockerClient) -> list:
        """Every container of the project: its services and the workers its pool started."""
        found = {}
        for label in (f"{STACK_LABEL}={self.project}", f"{POOL_LABEL}={self.project}"):
            for container in engine.containers.list(all=True, filters={"label": label}):
                found[container.id] = container
        return list(found.values())


def init_stack(directory: Path, project: str, **environment: str) -> Stack:
    """Generate the secrets and .env of a stack as `make run` does, without starting it."""
    subprocess.run(
        [str(STACK_SCRIPT), "init"],
        env={**os.environ, "RHC_STATE_DIR": str(directory), "RHC_PROJECT": project, **environment},
        check=True,
    )
    return Stack(project, directory)


@pytest.fixture(scope="session")
def engine() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env(timeout=ENGINE_TIMEOUT)
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"no Docker engine answers ({exc}): start one with `make setup-docker`")
    missing = [name for name in IMAGES if not client.images.list(f"rhc/{name}:{__version__}")]
    if missing:
        pytest.fail(f"images {missing} of version {__version__} are missing: run `make images`")
    worker = client.images.get(f"rhc/worker:{__version__}")
    FIGURES["worker image, MB"] = round(worker.attrs["Size"] / 1e6)
    FIGURES["worker image base"] = worker.labels.get("org.opencontainers.image.base.name", "?")
    yield client
    client.close()


@pytest.fixture(scope="session")
def stack_state(engine, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    return init_stack(
        tmp_path_factory.mktemp("stack"),
        f"rhc-e2e-{os.getpid()}",
        RHC_JUPYTER_PORT=str(free_port()),
        RHC_DASHBOARD_PORT=str(free_port()),
        RHC_POOL_EVICT_EVERY=str(EVICT_EVERY),
    )


# pytest-docker's fixtures, pointed at our compose file and the project above
@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(COMPOSE_FILE)


@pytest.fixture(scope="session")
def docker_compose_project_name(stack_state: Stack) -> str:
    return stack_state.project


@pytest.fixture(scope="session")
def docker_compose_command(stack_state: Stack) -> str:
    return f"docker compose --env-file {stack_state.env_file}"


@pytest.fixture(scope="session")
def docker_setup() -> list[str]:
    return ["up --detach --wait --wait-timeout 180"]


@pytest.fixture(scope="session")
def docker_cleanup() -> list[str]:
    return ["--profile workers down --volumes --remove-orphans --timeout 60"]


@pytest.fixture(scope="package")
def docker_services(
    docker_compose_command: str,
    docker_compose_file: str,
    docker_compose_project_name: str,
    docker_setup: list[str],
    docker_cleanup: list[str],
) -> Iterator[Services]:
    """pytest-docker's, taken down when the e2e tests end, not with the session: the stack's pool
    evicts and starts a worker container every 30 s, which would slow the tiers after it."""
    started = time.monotonic()
    with get_docker_services(
        docker_compose_command,
        docker_compose_file,
        docker_compose_project_name,
        docker_setup,
        docker_cleanup,
    ) as services:
        FIGURES["stack healthy after, s"] = round(time.monotonic() - started, 1)
        yield services


@pytest.fixture(scope="package")
def stack(stack_state: Stack, docker_services: Services) -> Stack:
    """The stack, up and healthy."""
    return stack_state


@pytest.fixture(scope="package")
def terminal_submission(stack: Stack) -> Typed:
    """The README's command for workers, typed in a JupyterLab terminal as an analyst does."""
    return type_in_terminal(stack.jupyter_url, stack.secrets()["jupyter_token"], README_COMMAND)


@pytest.fixture(scope="package")
def pool_workers(stack: Stack, terminal_submission: Typed) -> list[dict]:
    """Two workers, submitted through the mini pool as an analyst would: the README's command
    in a JupyterLab terminal."""
    assert terminal_submission.status == 0, terminal_submission.output
    started = time.monotonic()
    workers = stack.probe("workers", "2", "180")
    FIGURES["2 pool workers registered after, s"] = round(time.monotonic() - started, 1)
    return workers


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The teardown test brings up a stack of its own: it runs first among the e2e tests, before
    the shared stack is up, so that two stacks never share the machine."""
    own = [item for item in items if item.path.name == "test_teardown.py"]
    rest = [item for item in items if item not in own]
    here = Path(__file__).parent
    first = next((k for k, item in enumerate(rest) if here in item.path.parents), len(rest))
    items[:] = [*rest[:first], *own, *rest[first:]]


def pytest_terminal_summary(terminalreporter) -> None:
    if FIGURES:
        terminalreporter.section("e2e figures")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")
