# SPDX-License-Identifier: BSD-3-Clause
"""How a mini pool is set up: its slots, where jobs run, how they are stopped. Durations in
seconds."""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path

from rhc.condor.minipool.errors import MiniPoolError

DEFAULT_PORT = 9618
"""The port the pool listens on: HTCondor's own (the collector's)."""

DEFAULT_POOL_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
"""Where clients look for a pool when they are not told."""

DEFAULT_SLOTS = 4
"""How many slots (jobs running at once)."""

DEFAULT_SLOT_CPUS = 1
"""Cpus of each slot."""

DEFAULT_SLOT_MEMORY_MB = 2048
"""Memory of each slot, in MB."""

DEFAULT_GRACE = 10.0
"""Time between SIGTERM and SIGKILL when a job is removed, evicted or the pool stops."""

DEFAULT_NAME = "minipool"
"""The pool's name: slot names (slot1@minipool) and the label on the containers it starts."""

DEFAULT_ALLOWED_IMAGES = ("rhc/worker:*", "rhc/worker-coffea:*")
"""The docker images jobs may name (fnmatch patterns): rhc's workers, of any version."""

DEFAULT_PIDS_LIMIT = 1024
"""Processes and threads a job's container may hold at once (a fork bomb stops there)."""

NOBODY = "65534:65534"
"""The user containers run as when the pool itself runs as root and is told none."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_USER = re.compile(r"^\d+(:\d+)?$")


@dataclass(frozen=True)
class PoolSettings:
    """Everything a Pool needs; validated on creation.

    ``docker_host_work_dir`` is the work directory as the Docker engine sees it, when the pool
    itself runs in a container with the engine's socket (bind mounts name host paths); by default
    the engine sees the same path as the pool.
    """

    work_dir: Path
    name: str = DEFAULT_NAME
    slots: int = DEFAULT_SLOTS
    slot_cpus: int = DEFAULT_SLOT_CPUS
    slot_memory_mb: int = DEFAULT_SLOT_MEMORY_MB
    grace: float = DEFAULT_GRACE
    evict_every: float | None = None
    seed: int | None = None
    network: str | None = None
    docker_user: str | None = None
    docker_host_work_dir: Path | None = None
    allow_vanilla: bool = False
    """Vanilla jobs run as the pool's own user, with any executable on its host: off unless
    the pool is told, since whoever may submit could then run anything the pool may."""
    allowed_images: tuple[str, ...] = DEFAULT_ALLOWED_IMAGES
    pids_limit: int = DEFAULT_PIDS_LIMIT

    def __post_init__(self) -> None:
        object.__setattr__(self, "work_dir", Path(self.work_dir).absolute())
        if not _NAME.match(self.name):
            raise MiniPoolError(f"pool name {self.name!r}: use letters, digits, '.', '_', '-'")
        object.__setattr__(self, "allowed_images", tuple(self.allowed_images))
        for field in ("slots", "slot_cpus", "slot_memory_mb", "pids_limit"):
            if getattr(self, field) < 1:
                raise MiniPoolError(f"{field} must be at least 1, not {getattr(self, field)}")
        if self.grace < 0:
            raise MiniPoolError(f"grace must not be negative, not {self.grace}")
        if self.evict_every is not None and self.evict_every < 0:
            raise MiniPoolError(f"evict_every must not be negative, not {self.evict_every}")
        if self.evict_every == 0:  # 0 means none, so a configuration can always pass a number
            object.__setattr__(self, "evict_every", None)
        if self.docker_user is not None and not _USER.match(self.docker_user):
            raise MiniPoolError(f"docker_user {self.docker_user!r}: give UID or UID:GID")
        if self.docker_user is not None and 0 in map(int, self.docker_user.split(":")):
            raise MiniPoolError(
                f"docker_user {self.docker_user}: uid or gid 0 is root's, and containers of the "
                "pool never run as root"
            )

    @property
    def container_user(self) -> str:
        """The uid:gid docker-universe jobs run as: the configured one, else the pool's own,
        else (the pool runs as root) nobody's."""
        if self.docker_user:
            return self.docker_user
        return NOBODY if os.getuid() == 0 else f"{os.getuid()}:{os.getgid()}"

    def copy(self, **overrides: object) -> PoolSettings:
        return dataclasses.replace(self, **overrides)
