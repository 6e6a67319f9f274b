# SPDX-License-Identifier: BSD-3-Clause
"""A manager's access to Redis: its connection, its namespace's keys, stored functions, and the
registry of workers it reads to size batches and to refuse jobs no worker can run."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import redis

from rhc.config import Settings
from rhc.connection import Reconnector, connect
from rhc.errors import VersionMismatchError
from rhc.protocol import DRAIN, Keys, WorkerInfo, compat_tag, incompatibility, versions
from rhc.status import worker_infos

log = logging.getLogger("rhc.manager")
T = TypeVar("T")

REGISTRY_REFRESH = 2.0
"""Seconds a manager trusts its last read of the worker registry."""


class Broker:
    """Redis, as one manager sees it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = connect(settings, role="manager")
        self.keys = Keys(settings.namespace)
        self.versions = versions()
        self.compat = compat_tag(self.versions)
        self.stream = self.keys.task_stream(self.compat)
        self.reconnect = Reconnector(settings, settings.reconnect_timeout)
        self._drain = self.client.register_script(DRAIN)
        self._stored_functions: set[str] = set()
        self.speeds: dict[str, float] = {}
        self._registry: list[WorkerInfo] = []
        self._registry_read = -REGISTRY_REFRESH
        self._warned: set[str] = set()

    def call(self, operation: Callable[[], T], *, doing: str) -> T:
        return self.reconnect.call(operation, doing=doing)

    def workers(self, *, fresh: bool = False) -> list[WorkerInfo]:
        """Live workers (heartbeat within its TTL), read at most every REGISTRY_REFRESH seconds."""
        now = time.monotonic()
        if fresh or now - self._registry_read >= REGISTRY_REFRESH:
            infos = self.call(lambda: worker_infos(self.client, self.keys), doing="reading workers")
            cutoff = time.time() - self.settings.heartbeat_ttl
            self._registry = [info for info in infos if info.heartbeat >= cutoff]
            self._registry_read = now
        return self._registry

    def runnable_workers(self, *, fresh: bool = False) -> int:
        """How many live workers can run this manager's jobs.

        Raises:
          VersionMismatchError: workers are running, but none can load what this process pickles.
        """
        workers = self.workers(fresh=fresh)
        able = [info for info in workers if info.compat == self.compat]
        unable = [
            (info, incompatibility(self.versions, info.versions))
            for info in workers
            if info.compat != self.compat
        ]
        if unable and not able:
            details = "; ".join(f"worker {info.name}: {why}" for info, why in unable[:3])
            raise VersionMismatchError(
                f"no worker can run this job. {details}. Start workers from an environment with "
                f"Python {'.'.join(self.versions['python'].split('.')[:2])} and cloudpickle "
                f"{self.versions['cloudpickle'].split('.')[0]}.x, as in this notebook"
            )
        for info, why in unable:
            if info.name not in self._warned:
                self._warned.add(info.name)
                log.warning("worker %s will not get tasks from this process: %s", info.name, why)
        if not workers and "" not in self._warned:
            self._warned.add("")
            log.warning(
                "no worker is running in namespace %r: tasks wait in Redis until one "
                "starts (`rhc worker`)",
                self.settings.namespace,
            )
        return len(able)

    def runnable_names(self) -> set[str]:
        """The names of the live workers that can run this manager's jobs."""
        return {info.name for info in self.workers() if info.compat == self.compat}

    def reroute_departed(self, name: str) -> int:
        """Move what a departed worker's own stream still holds to the shared stream, where
        the others read; how many batches moved."""
        moved = self.call(
            lambda: self._drain(keys=[self.keys.worker_stream(name), self.stream]),
            doing="re-routing the tasks of a departed worker",
        )
        if moved:
            log.info("moved %d task batch(es) routed to departed worker %s", moved, name)
        return moved

    def routes(self, keys: list[str]) -> list[str | None]:
        """The worker that last processed each piece of data (cache affinity), or None."""
        if not keys:
            return []
        found = self.call(
            lambda: self.client.hmget(self.keys.affinity, keys),
            doing="reading where data was cached",
        )
        return [name.decode() if name else None for name in found]

    def remember_routes(self, routes: dict[str, str]) -> None:
        """Record which worker processed each piece of data, for the next run over it."""
        if not routes:
            return

        def remember() -> None:
            with self.client.pipeline(transaction=False) as pipe:
                pipe.hset(self.keys.affinity, mapping=routes)
                pipe.expire(self.keys.affinity, int(self.settings.result_ttl))
                pipe.execute()

        self.call(remember, doing="recording where data was cached")

    def queue_function(self, pipe: redis.client.Pipeline, digest: str, sealed: bytes) -> None:
        """Add to pipe what stores a function once (content addressed) and keeps it alive.

        Call function_stored() once the pipeline succeeded."""
        key = self.keys.function(digest)
        ttl = int(self.settings.result_ttl)
        if digest in self._stored_functions:
            pipe.expire(key, ttl)
        else:
            pipe.set(key, sealed, nx=True, ex=ttl)

    def seconds_per_task(self, digest: str) -> float | None:
        """What the last job running this function measured, so a re-run starts well batched."""
        if digest not in self.speeds:
            value = self.call(
                lambda: self.client.hget(self.keys.function_stats, digest),
                doing="reading task statistics",
            )
            if value is None:
                return None
            self.speeds[digest] = float(value)
        return self.speeds[digest]

    def function_stored(self, digest: str) -> None:
        self._stored_functions.add(digest)

    def forget_functions(self) -> None:
        """After Redis lost data: store functions again on next use."""
        self._stored_functions.clear()
