# SPDX-License-Identifier: BSD-3-Clause
"""`compose/stack.sh down` (what `make down` runs) leaves nothing of the stack: not the services,
not the worker containers its mini pool started, not its networks or volumes, and no copy of a
secret in the pool's directory (its jobs' scratch directories held their config files). A stack
of its own, so that the other e2e tests keep theirs."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from pytest_docker.plugin import get_docker_services

from rhc.local import free_port
from tests.e2e.conftest import (
    COMPOSE_FILE,
    FIGURES,
    POOL_LABEL,
    STACK_LABEL,
    STACK_SCRIPT,
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


def test_down_leaves_no_container_network_volume_or_secret_of_the_stack(engine, tmp_path):
    # Given a stack of its own, up, with a worker started by its pool and one scaled directly
    stack = init_stack(tmp_path, f"rhc-e2e-down-{os.getpid()}", RHC_JUPYTER_PORT=str(free_port()))
    started = time.monotonic()
    with get_docker_services(
        f"docker compose --env-file {stack.env_file}",
        str(COMPOSE_FILE),
        stack.project,
        ["up --detach --wait --wait-timeout 180"],
        ["--profile workers down --volumes --remove-orphans --timeout 60"],
    ):
        FIGURES["second stack healthy after, s"] = round(time.monotonic() - started, 1)
        assert stack.exec("rhc", "condor", "submit", "-n", "1").returncode == 0
        scaled = stack.compose("--profile", "workers", "up", "--detach", "--scale", "worker=1")
        assert scaled.returncode == 0, scaled.stderr
        workers = stack.probe("workers", "2", "120")
        assert sorted(worker["condor_id"] is not None for worker in workers) == [False, True]
        held = leftovers(engine, stack.project)
        assert len(held["containers"]) == 6 and len(held["networks"]) == 3
        assert len(held["volumes"]) == 2
        # (the pool's worker has its config file, with its Redis password, in its scratch)
        pool = Path(stack.environment["RHC_POOL_DIR"])
        secrets = stack.secrets()
        assert "Redis password in worker.toml" in files_holding(pool, secrets)
        # When it is brought down as `make down` does
        down = subprocess.run(
            [str(STACK_SCRIPT), "down"],
            env={**os.environ, "RHC_STATE_DIR": str(stack.state)},
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert down.returncode == 0, down.stderr
    # Then nothing of it is left: no container, network or volume
    assert leftovers(engine, stack.project) == {"containers": [], "networks": [], "volumes": []}
    # And no scratch directory, and no copy of any secret, in the pool's directory
    assert sorted(path.name for path in pool.iterdir()) == ["output"]
    assert files_holding(pool, secrets) == {}
