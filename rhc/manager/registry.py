# SPDX-License-Identifier: BSD-3-Clause
"""Which live workers can run what this process pickles: read through the broker at most every
few seconds, to size batches, route work, and refuse a job nobody could load."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from rhc.errors import RhcError, SecretMismatchError, VersionMismatchError
from rhc.wire.protocol import WorkerInfo, compat_tag, incompatibility, versions

log = logging.getLogger(__name__)

REGISTRY_REFRESH = 2.0
"""Seconds a manager trusts its last read of the worker registry."""

MAX_ROUND_TRIP = 0.5
"""The longest round trip to Redis a worker's claim can make batches long enough to hide."""


class WorkerRegistry:
    """The workers of one namespace, as this process sees them.

    Parameters:
      read: returns every registered worker (the broker's read of the registry hash).
      namespace: named in the warning that no worker runs.
      heartbeat_ttl: a worker silent this long is not counted as live.
      key_id: the id of the task key this process signs with; workers that do not trust it
        cannot run its jobs (None: this process sends nothing).
      secret_id: the id of its shared secret; workers with another one cannot either.
    """

    def __init__(
        self,
        read: Callable[[], list[WorkerInfo]],
        *,
        namespace: str,
        heartbeat_ttl: float,
        key_id: str | None = None,
        secret_id: str = "",
    ) -> None:
        self._read = read
        self._key_id = key_id
        self._secret_id = secret_id
        self._namespace = namespace
        self._heartbeat_ttl = heartbeat_ttl
        self.versions = versions()
        self.compat = compat_tag(self.versions)
        self._live: list[WorkerInfo] = []
        self._obstacles: dict[str, tuple[type[RhcError], str]] = {}
        """Why each live worker unable to run this process's jobs cannot, by name."""
        self._read_at = -REGISTRY_REFRESH
        self._warned: set[str] = set()

    def workers(self, *, fresh: bool = False) -> list[WorkerInfo]:
        """Live workers (heartbeat within its TTL), read at most every REGISTRY_REFRESH seconds."""
        now = time.monotonic()
        if fresh or now - self._read_at >= REGISTRY_REFRESH:
            cutoff = time.time() - self._heartbeat_ttl
            self._live = [info for info in self._read() if info.heartbeat >= cutoff]
            self._obstacles = {
                info.name: why for info in self._live if (why := self._obstacle(info))
            }
            self._read_at = now
        return self._live

    def runnable_count(self, *, fresh: bool = False, check: bool = True) -> int:
        """How many live workers can run this process's jobs; check: raise, rather than warn,
        when workers run and none can.

        Raises:
          VersionMismatchError: workers are running, but none can load what this process pickles.
          SecretMismatchError: workers are running, but none trusts this process's task key.
        """
        workers = self.workers(fresh=fresh)
        unable = [
            (info, self._obstacles[info.name]) for info in workers if info.name in self._obstacles
        ]
        if unable and len(unable) == len(workers) and check:
            raise self._refusal(unable)
        for info, (_, why) in unable:
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
        return len(workers) - len(unable)

    def round_trip(self) -> float:
        """Seconds the slowest live worker's round trips to Redis take (0 with none), at most
        MAX_ROUND_TRIP: what a worker claims must not make every batch huge."""
        slowest = max((info.round_trip for info in self.workers()), default=0.0)
        return min(slowest, MAX_ROUND_TRIP)

    def runnable_names(self) -> set[str]:
        """The names of the live workers that can run this process's jobs."""
        return {info.name for info in self.workers() if info.name not in self._obstacles}

    def _obstacle(self, info: WorkerInfo) -> tuple[type[RhcError], str] | None:
        """Why a worker cannot run this process's jobs (what to raise, and the reason), if it
        cannot: it cannot load their pickles, refuses their signature, or signs its results
        with another secret."""
        why = incompatibility(self.versions, info.versions)
        if why is not None:
            return VersionMismatchError, why
        if self._key_id is not None and self._key_id not in info.task_keys:
            trusted = ", ".join(info.task_keys) or "none"
            return SecretMismatchError, (
                f"trusts task keys {trusted}, and this notebook signs with {self._key_id}"
            )
        if self._key_id is not None and info.secret_id != self._secret_id:
            return SecretMismatchError, "signs results with another secret than this notebook's"
        return None

    def _refusal(self, unable: list) -> RhcError:
        """The error that no worker can run this job, from the first worker's obstacle."""
        kind = unable[0][1][0]
        details = "; ".join(f"worker {info.name}: {why}" for info, (_, why) in unable[:3])
        if kind is SecretMismatchError:
            return SecretMismatchError(
                f"no worker can run this job. {details}. The notebook's config and the workers' "
                "(worker_config, which `rhc condor submit` sends) must be written together "
                "(`rhc init`, `rhc redis namespace`)"
            )
        return VersionMismatchError(
            f"no worker can run this job. {details}. Start workers from an environment with "
            f"Python {'.'.join(self.versions['python'].split('.')[:2])} and cloudpickle "
            f"{self.versions['cloudpickle'].split('.')[0]}.x, as in this notebook"
        )
