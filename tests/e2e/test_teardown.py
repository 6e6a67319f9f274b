# SPDX-License-Identifier: BSD-3-Clause
"""`compose/stack.sh up` (what `make run` runs) prints the URL to open, with its token;
`compose/stack.sh down` (what `make down` runs) lets the pool's workers leave while Redis still
runs, and leaves nothing of the stack: not the services, not the worker containers its mini pool
started, not its networks or volumes, and no copy of a secret in the pool's directory (its jobs'
scratch directories held their config files). A stack of its own, so that the other e2e tests
keep theirs."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from pytest_docker.plugin import get_docker_services

from rhc.local import free_port
from tests.e2e.conftest import (
    COMPOSE_FILE,
    FIGURES,
    POOL_LABEL,
    STACK_LABEL,
    STACK_SCRIPT,
    Stack,
    init_stack,
)


def leftovers(engine, project: str) -> dict[str, list[str]]:
    """What the engine still holds of the project, by kind."""
    stack, pool = f"{STACK_LABEL}={project}", f"{POOL_LABEL}={project}"
    return {
        "containers": [
            container.name
            for label in (stack, pool)
            for container in engine.containers.list(all=True, filters={"label": label})
        ],
        "networks": [network.name for network in engine.networks.list(filters={"label": stack})],
        "volumes": [volume.name for volume in engine.volumes.list(filters={"label": stack})],
    }


def files_holding(directory: Path, secrets: dict[str, str]) -> dict[str, list[str]]:
    """The files under directory holding each secret (read as root, whoever owns them)."""
    found: dict[str, list[str]] = {}
    for path in directory.rglob("*"):
        if path.is_file() and not path.is_symlink():
            content = path.read_bytes()
            for name, value in secrets.items():
                if value.encode() in content:
                    found.setdefault(name, []).append(str(path.relative_to(directory)))
    return found


def stack_command(command: str, stack: Stack, **environment: str) -> subprocess.CompletedProcess:
    """compose/stack.sh COMMAND for this stack, as `make run` and `make down` run it."""
    return subprocess.run(
        [str(STACK_SCRIPT), command],
        env={**os.environ, "RHC_STATE_DIR": str(stack.state), **environment},
        capture_output=True,
        text=True,
        timeout=300,
    )


# A whole second stack up, a pool worker, and down: 300 s did not suffice on a loaded 2-core
# machine (2026-12-03: the pool's worker registered 2 min after `up`, `down` was cut short).
@pytest.mark.timeout(600)
def test_up_prints_the_url_with_its_token_and_down_lets_workers_leave_and_leaves_nothing(
    engine, tmp_path
):
    # Given a stack of its own, brought up as `make run` does
    ports = {"RHC_JUPYTER_PORT": str(free_port()), "RHC_DASHBOARD_PORT": str(free_port())}
    port, dashboard_port = ports["RHC_JUPYTER_PORT"], ports["RHC_DASHBOARD_PORT"]
    stack = init_stack(tmp_path, f"rhc-e2e-down-{os.getpid()}", **ports)
    started = time.monotonic()
    with get_docker_services(  # only its cleanup: should the test fail before `down`
        f"docker compose --env-file {stack.env_file}",
        str(COMPOSE_FILE),
        stack.project,
        [],
        ["--profile workers down --volumes --remove-orphans --timeout 60"],
    ):
        up = stack_command("up", stack, RHC_PROJECT=stack.project, **ports)
        assert up.returncode == 0, up.stderr
        FIGURES["second stack healthy after, s"] = round(time.monotonic() - started, 1)
        # Then it printed the URL to open, token included, and how to reach it from elsewhere
        # (checked with the token masked: a failure's message shows no secret)
        secrets = stack.secrets()
        shown = up.stdout.replace(secrets["jupyter_token"], "<the token>")
        shown = shown.replace(secrets["dashboard token"], "<its token>")
        assert f"JupyterLab: http://127.0.0.1:{port}/lab?token=<the token>\n" in shown, shown
        assert f"ssh -L {port}:127.0.0.1:{port} " in shown, shown
        assert f"dashboard: http://127.0.0.1:{dashboard_port}/?token=<its token>\n" in shown, shown
        # Given a worker started by its pool and one scaled directly
        assert stack.exec("rhc", "condor", "submit", "-n", "1").returncode == 0
        scaled = stack.compose("--profile", "workers", "up", "--detach", "--scale", "worker=1")
        assert scaled.returncode == 0, scaled.stderr
        workers = stack.probe("workers", "2", "120")
        assert sorted(worker["condor_id"] is not None for worker in workers) == [False, True]
        held = leftovers(engine, stack.project)
        assert len(held["containers"]) == 8 and len(held["networks"]) == 3
        assert len(held["volumes"]) == 2
        # (the pool's worker has its config file, with its Redis password, in its scratch)
        pool = Path(stack.environment["RHC_POOL_DIR"])
        assert "Redis password in worker.toml" in files_holding(pool, secrets)
        # When it is brought down as `make down` does
        down = stack_command("down", stack)
        assert down.returncode == 0, down.stderr
    # Then nothing of it is left: no container, network or volume
    assert leftovers(engine, stack.project) == {"containers": [], "networks": [], "volumes": []}
    # And no scratch directory, and no copy of any secret, in the pool's directory
    assert sorted(path.name for path in pool.iterdir()) == ["output"]
    assert files_holding(pool, secrets) == {}
    # And the pool's worker left while Redis ran: its log (kept by the pool) ends with its
    # stop, and never says it could not deregister
    logs = {path.name: path.read_text(errors="replace") for path in pool.rglob("rhc-worker.*")}
    assert logs, f"the pool kept no worker log: {sorted(pool.rglob('*'))}"
    for name, text in logs.items():
        assert "could not deregister" not in text, f"{name}:\n{text[-2000:]}"
    errors = [text for name, text in logs.items() if name.endswith(".err")]
    assert errors and all("stopped after" in text for text in errors), errors
