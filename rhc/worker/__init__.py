# SPDX-License-Identifier: BSD-3-Clause
"""The worker: a supervisor process, its task process, heartbeat, fetcher and reaper."""

from rhc.worker.context import WorkerContext, get_worker
from rhc.worker.supervisor import Worker

__all__ = ["Worker", "WorkerContext", "get_worker"]
