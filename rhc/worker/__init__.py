# SPDX-License-Identifier: BSD-3-Clause
"""The worker: a supervisor process, its task process, heartbeat, fetcher and reaper.

What tasks may use of it is exported here: get_worker(), the WorkerContext it returns, and the
MemoryCache on it. Everything else is the worker's own."""

from rhc.worker.cache import MemoryCache
from rhc.worker.context import WorkerContext, get_worker
from rhc.worker.supervisor import Worker

__all__ = ["MemoryCache", "Worker", "WorkerContext", "get_worker"]
