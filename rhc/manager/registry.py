# SPDX-License-Identifier: BSD-3-Clause
"""Which live workers can run what this process pickles: read through the broker at most every
few seconds, to size batches, route work, and refuse a job nobody could load."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from rhc.errors import VersionMismatchError
from rhc.wire.protocol import WorkerInfo, compat_tag, incompatibility, versions

log = logging.getLogger(__name__)

REGISTRY_REFRESH = 2.0
"""Seconds a manager trusts its last read of the worker registry."""


class WorkerRegistry:
    """The workers of one namespace, as this process sees them.

    Parameters:
      read: returns every registered worker (the broker's read of the registry hash).
      namespace: named in the warning that no worker runs.
      heartbeat_ttl: a worker silent this long is not counted as live.
    """

    def __init__(
        self, read: Callable[[], list[WorkerInfo]], *, namespace: str, heartbeat_ttl: float
    ) -> None:
        self._read = read
        self._namespace = namespace
        self._heartbeat_ttl = heartbeat_ttl
        self.versions = versions()
        self.compat = compat_tag(self.versions)
        self._live: list[WorkerInfo] = []
        self._read_at = -REGISTRY_REFRESH
        self._warned: set[str] = set()

    def workers(self, *, fresh: bool = False) -> list[WorkerInfo]:
        """Live workers (heartbeat within its TTL), read at most every REGISTRY_REFRESH seconds."""
        now = time.monotonic()
        if fresh or now - self._read_at >= REGISTRY_REFRESH:
            cutoff = time.time() - self._heartbeat_ttl
            self._live = [info for info in self._read() if info.heartbeat >= cutoff]
            self._read_at = now
        return self._live

    def runnable_count(self, *, fresh: bool = False) -> int:
        """How many live workers can run this process's jobs.

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
                self._namespace,
            )
        return len(able)

    def runnable_names(self) -> set[str]:
        """The names of the live workers that can run this process's jobs."""
        return {info.name for info in self.workers() if info.compat == self.compat}
