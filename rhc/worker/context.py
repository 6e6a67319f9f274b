# SPDX-License-Identifier: BSD-3-Clause
"""What user code sees of the worker it runs on: rhc.get_worker()."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rhc.errors import NotInWorkerError
from rhc.worker.cache import MemoryCache


@dataclass
class WorkerContext:
    """The worker running the current task, and its caches (they outlive single tasks).

    ``cache`` keeps values in memory within a budget; ``cache_dir`` is where what was read of
    remote data may be kept, within ``disk_cache_bytes``; ``local`` is where libraries keep
    per-worker objects (open files, readers, their disk caches); count() adds to the job's
    counts.
    """

    name: str
    host: str
    namespace: str
    condor_id: str | None
    cache: MemoryCache
    cache_dir: Path
    disk_cache_bytes: int
    local: dict[str, object] = field(default_factory=dict)
    counts: dict[str, float] = field(default_factory=dict)
    """What the current batch's tasks counted (count()): sent with its results."""

    def count(self, name: str, amount: float = 1) -> None:
        """Add to a count of the current job people watch (the dashboard, /metrics), e.g.
        count("events", n): a NanoAOD run counts its events and the bytes it read."""
        self.counts[name] = self.counts.get(name, 0) + amount


# One per task process, set once when it starts: user functions reach their worker's caches
# through get_worker() instead of the original tool's injection into __globals__.
_current: WorkerContext | None = None


def get_worker() -> WorkerContext:
    """Return the worker running the current task.

    Raises:
      NotInWorkerError: called in the notebook or anywhere else that is not a task on a worker.
    """
    if _current is None:
        raise NotInWorkerError(
            "get_worker() works only inside a task running on an rhc worker, not in the notebook"
        )
    return _current


def activate(context: WorkerContext) -> None:
    global _current
    _current = context
