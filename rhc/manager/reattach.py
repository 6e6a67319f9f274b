# SPDX-License-Identifier: BSD-3-Clause
"""Re-attaching to a job another process sends (a notebook kernel that restarted): what this
process can learn of it, and of its sender, from Redis alone."""

from __future__ import annotations

import time
from collections.abc import Callable

from rhc.errors import JobIncompleteError, JobNotFoundError
from rhc.manager.broker import Broker
from rhc.manager.progress import Progress
from rhc.wire.protocol import CANCELLED, JobRecord
from rhc.wire.serialization import loads, unseal

ABANDONED_AFTER = 60.0
"""Seconds a re-attached job waits for a sender that stopped sending before giving up."""

SENDER_CHECK = 1.0
"""How often a re-attached job reads its record for news of its sender."""


def read_job(broker: Broker, job_id: str) -> tuple[JobRecord, object]:
    """The record of a job and its reduce function (None if it has none).

    Raises:
      JobNotFoundError: no such job in this namespace, its results expired, or its function did.
    """
    record = broker.job_record(job_id)
    if record is None:
        raise JobNotFoundError(
            f"no job {job_id!r} in namespace {broker.settings.namespace!r}: a wrong id, or its "
            f"results expired ({broker.settings.result_ttl:.0f} s after it ended)"
        )
    if not record.reduce:
        return record, None
    sealed = broker.function(record.function)
    if sealed is None:
        raise JobNotFoundError(f"job {job_id}'s function expired: its result cannot be merged")
    _, body = unseal(broker.settings.secret, sealed)
    _, reducer = loads(body, what="the job's function", limit=broker.settings.max_payload_bytes)
    return record, reducer


class SenderWatch:
    """Follows the process that sends a job: the job's total once it sent every task, that it
    cancelled the job, or that it stopped before sending everything."""

    def __init__(
        self, broker: Broker, job_id: str, record: JobRecord, progress: Callable[[], Progress]
    ) -> None:
        self._broker = broker
        self._job_id = job_id
        self._record = record
        self._progress = progress
        self._checked = 0.0

    def news(self) -> JobRecord | None:
        """The job's record once its total is known or it was cancelled; None until then.

        Raises:
          JobIncompleteError: the sender stopped showing it is alive before sending every task.
        """
        now = time.monotonic()
        if now - self._checked < SENDER_CHECK:
            return None
        self._checked = now
        record = self._broker.job_record(self._job_id) or self._record
        if record.state == CANCELLED or record.total is not None:
            return record
        active = self._broker.last_active(self._job_id)
        if active is None or time.time() - active > ABANDONED_AFTER:
            raise JobIncompleteError(
                f"job {self._job_id} cannot finish: the process that submitted it stopped after "
                f"sending {record.submitted} tasks, before sending them all ({self._progress()})"
            )
        return None
