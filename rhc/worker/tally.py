# SPDX-License-Identifier: BSD-3-Clause
"""What a worker counts of itself for people to watch (its WorkerInfo, the dashboard): tasks
taken, done and failed, and the last warning it logged — what a person asks first of a worker
that left."""

from __future__ import annotations

import logging
import time

from rhc.wire.activity import Departure
from rhc.wire.protocol import ARGUMENT_KEPT, TaskBatch

log = logging.getLogger(__name__)

_WATCHED = "rhc.worker"
"""The logger whose warnings are a worker's: its own modules log under it."""


STOPPED = "stopped"
"""Why a worker leaves when nothing else is said: stop() or the end of its run."""


class Tally(logging.Handler):
    """The counts of one worker, the first line of the last warning or error it logged, and
    why it leaves, should it (a signal, stop(), an error)."""

    def __init__(self, worker: str, host: str, condor_id: str | None) -> None:
        super().__init__(level=logging.WARNING)
        self._where = {"worker": worker, "host": host, "condor_id": condor_id or ""}
        self.taken = 0
        self.done = 0
        self.failed = 0
        self.last_error = ""
        self.leaving = STOPPED

    def counts(self) -> dict[str, int | str]:
        """The WorkerInfo fields it keeps."""
        return {
            "taken": self.taken,
            "done": self.done,
            "failed": self.failed,
            "last_error": self.last_error,
        }

    def signalled(self, name: str) -> None:
        """A signal stops the worker: under condor, its eviction or removal."""
        self.leaving = (
            f"{name} (evicted or removed by condor)" if self._where["condor_id"] else name
        )

    def departure(self, reason: str, *, left: bool) -> Departure:
        """Why the worker left (`left`), or lost its task process, for people to read."""
        return Departure(
            **self._where,
            reason=reason,
            last_error=self.last_error,
            left=str(int(left)),
            time=time.time(),
        )

    def took(self, batch: TaskBatch) -> None:
        self.taken += batch.count

    def finished(self, batch: TaskBatch, failed: int) -> None:
        self.done += batch.count - failed
        self.failed += failed

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage().strip().splitlines()[:1]
        self.last_error = line[0][:ARGUMENT_KEPT] if line else ""

    def __enter__(self) -> Tally:
        logging.getLogger(_WATCHED).addHandler(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        logging.getLogger(_WATCHED).removeHandler(self)
        log.info(
            "worker %s stopped after %d tasks (%d failed)%s",
            self._where["worker"],
            self.done,
            self.failed,
            "" if self.leaving == STOPPED else f": {self.leaving}",
        )
