# SPDX-License-Identifier: BSD-3-Clause
"""Re-attaching to a job another process sends (a notebook kernel that restarted): what this
process can learn of it, and of its sender, from Redis alone."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

from rhc.errors import JobIncompleteError, JobNotFoundError, SignatureError
from rhc.manager.broker import Broker
from rhc.manager.progress import Progress
from rhc.wire.protocol import CANCELLED, DELIVERED, FUNCTION, JobRecord, JobStatus
from rhc.wire.serialization import loads, verify
from rhc.wire.signing import TrustedKeys

log = logging.getLogger(__name__)

ABANDONED_AFTER = 60.0
"""Seconds a re-attached job waits for a sender that stopped sending before giving up."""

SENDER_CHECK = 1.0
"""How often a re-attached job reads its record for news of its sender."""


def read_job(broker: Broker, trusted: TrustedKeys, job_id: str) -> tuple[JobRecord, object]:
    """The record of a job (state and total as its sender signed them) and its reduce function
    (None if it has none).

    Raises:
      JobNotFoundError: no such job in this namespace, its results expired, or its function did.
      SignatureError: its function is not signed by a trusted task key.
    """
    record = read_record(broker, trusted, job_id)
    if record is None:
        raise JobNotFoundError(
            f"no job {job_id!r} in namespace {broker.settings.namespace!r}: a wrong id, or its "
            f"results expired ({broker.settings.result_ttl:.0f} s after it ended)"
        )
    if record.state == DELIVERED:
        raise JobNotFoundError(
            f"job {job_id}'s results were delivered (results() or as_completed() returned them) "
            "and are no longer kept in Redis"
        )
    if not record.reduce:
        return record, None
    sealed = broker.function(record.function)
    if sealed is None:
        raise JobNotFoundError(f"job {job_id}'s function expired: its result cannot be merged")
    header, body = verify(trusted, sealed)
    expected = {"kind": FUNCTION, "namespace": broker.settings.namespace, "digest": record.function}
    if header != expected:
        raise SignatureError(f"job {job_id}'s function is signed for another key: {header}")
    _, reducer = loads(body, what="the job's function", limit=broker.settings.max_payload_bytes)
    return record, reducer


def read_record(broker: Broker, trusted: TrustedKeys, job_id: str) -> JobRecord | None:
    """The job's record with its function, state, total and reason as its sender signed them:
    the plain fields of the hash are for display, and anyone who may write it could forge
    them (a smaller total would end a re-attached job early). Unsigned: running, total
    unknown. None if Redis does not hold the job."""
    record = broker.job_record(job_id)
    if record is None:
        return None
    status = JobStatus(broker.settings.namespace, job_id, record.function, record.reduce)
    try:
        header, _ = verify(trusted, record.signed)
        signed = JobStatus.from_header(header)
        if (signed.namespace, signed.job) == (status.namespace, status.job):
            status = signed
        else:
            log.error("job %s: its record holds the signed status of another job", job_id)
    except (SignatureError, TypeError) as exc:
        if record.signed:
            log.error("job %s: its signed status failed verification: %s", job_id, exc)
    trusted_record = replace(
        record,
        function=status.function,
        reduce=status.reduce,
        state=status.state,
        total=status.total,
        reason=status.reason,
    )
    if (record.state, record.total) != (status.state, status.total):
        log.warning(
            "job %s: its record says %s with %s tasks, its sender signed %s with %s: "
            "the signed values count",
            job_id,
            record.state,
            record.total,
            status.state,
            status.total,
        )
    return trusted_record


class SenderWatch:
    """Follows the process that sends a job: the job's total once it sent every task, that it
    cancelled the job, or that it stopped before sending everything."""

    def __init__(
        self,
        broker: Broker,
        trusted: TrustedKeys,
        job_id: str,
        record: JobRecord,
        progress: Callable[[], Progress],
    ) -> None:
        self._broker = broker
        self._trusted = trusted
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
        record = read_record(self._broker, self._trusted, self._job_id) or self._record
        if record.state == CANCELLED or record.total is not None:
            return record
        active = self._broker.last_active(self._job_id)
        if active is None or time.time() - active > ABANDONED_AFTER:
            raise JobIncompleteError(
                f"job {self._job_id} cannot finish: the process that submitted it stopped after "
                f"sending {record.submitted} tasks, before sending them all ({self._progress()})"
            )
        return None
