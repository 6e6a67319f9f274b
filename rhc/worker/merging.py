# SPDX-License-Identifier: BSD-3-Clause
"""Which batches a worker has merged into each job's partial result and not yet stored.

Their entries stay unacknowledged until the partial result is stored with them, in one step:
if the worker dies first, the batches are redelivered and nothing is counted twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rhc.wire.protocol import PARTIAL, Failure, ResultMessage, TaskBatch, TaskEntry
from rhc.worker.store import Ran

WANTED_MEMORY = 60.0
"""How long a request for a job's partial results holds for batches of it that end here later."""


@dataclass
class Merging:
    """One job's batches merged in the task process since its last stored partial."""

    result_ttl: float
    started: float
    finished: float = 0.0
    entries: list[TaskEntry] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    since: float = field(default_factory=time.monotonic)
    ran: Ran = field(default_factory=lambda: Ran(0.0))

    def message(
        self, job: str, worker: str, body: bytes | None, error: str | None
    ) -> ResultMessage:
        """The partial result to store; if the merged value could not be packed, every task
        that had not failed already fails with that reason."""
        failures = list(self.failures)
        if error:
            failed = {failure.task for failure in failures}
            failures += [
                Failure(task, "exception", "SerializationError", error)
                for first, count in self.spans
                for task in range(first, first + count)
                if task not in failed
            ]
        return ResultMessage(
            kind=PARTIAL,
            job=job,
            worker=worker,
            batches=tuple(self.batches),
            spans=tuple(self.spans),
            failures=tuple(failures),
            started=self.started,
            finished=self.finished,
            has_value=body is not None,
        )


class Mergings:
    """The unstored merges of every job, and when each is due to be stored."""

    def __init__(self, flush_interval: float) -> None:
        self._flush_interval = flush_interval
        self._jobs: dict[str, Merging] = {}
        self._wanted: dict[str, float] = {}  # job -> when its manager asked

    def __contains__(self, job: str) -> bool:
        return job in self._jobs

    @property
    def jobs(self) -> list[str]:
        return list(self._jobs)

    def add(
        self,
        entry: TaskEntry,
        batch: TaskBatch,
        failures: list[Failure],
        started: float,
        finished: float,
        ran: Ran,
    ) -> None:
        merging = self._jobs.get(batch.job)
        if merging is None:
            merging = self._jobs[batch.job] = Merging(batch.result_ttl, started)
        merging.entries.append(entry)
        merging.spans.append((batch.first, batch.count))
        merging.batches.append(batch.batch)
        merging.failures.extend(failures)
        merging.finished = finished
        merging.ran += ran

    def want(self, job: str) -> None:
        """The job's manager asked for partial results: each worker is on its last batch of it,
        or all its tasks ran. Also for a job with nothing merged here yet: its last batch may be
        about to run here, and its partial is then stored right after."""
        now = time.monotonic()
        self._wanted = {
            wanted: when for wanted, when in self._wanted.items() if now - when < WANTED_MEMORY
        }
        self._wanted[job] = now

    def due(self) -> list[str]:
        now = time.monotonic()
        return [
            job
            for job, merging in self._jobs.items()
            if now - self._wanted.get(job, now - WANTED_MEMORY) < WANTED_MEMORY
            or now - merging.since >= self._flush_interval
        ]

    def take(self, job: str) -> Merging | None:
        self._wanted.pop(job, None)
        return self._jobs.pop(job, None)

    def take_all(self) -> list[TaskEntry]:
        """Forget every merge (the task process holding the values died); their entries."""
        entries = [entry for merging in self._jobs.values() for entry in merging.entries]
        self._jobs.clear()
        self._wanted.clear()
        return entries
