# SPDX-License-Identifier: BSD-3-Clause
"""`docker compose down` leaves nothing of the stack: not the services, not the worker
containers its mini pool started, not its network or volumes. A stack of its own, so that the
other e2e tests keep theirs."""

from __future__ import annotations

import os
import time

from pytest_docker.plugin import get_docker_services

from rhc.local import free_port
from tests.e2e.conftest import COMPOSE_FILE, FIGURES, POOL_LABEL, STACK_LABEL, init_stack


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


def test_down_leaves_no_container_network_or_volume_of_the_stack(engine, tmp_path):
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
        assert len(held["containers"]) == 6 and held["networks"] and len(held["volumes"]) == 2
    # When it is brought down (compose down --volumes), then nothing of it is left
    assert leftovers(engine, stack.project) == {"containers": [], "networks": [], "volumes": []}
