# SPDX-License-Identifier: BSD-3-Clause
"""What a worker accepts from the notebook side: only what its task key signed (a public key
verifies it; a worker can sign nothing), and only for this namespace and the key or entry it
was found under. Everything else is refused unread: a stolen worker config, or Redis access
alone, must not make a worker run anything, nor stop a job."""

from __future__ import annotations

import logging
import time

from rhc.config import Settings
from rhc.errors import SignatureError
from rhc.wire.protocol import ControlMessage, JobStatus, TaskBatch, TaskEntry, function_header
from rhc.wire.serialization import secret_id, verify
from rhc.wire.signing import trusted_keys

log = logging.getLogger(__name__)


class Trust:
    """Verifies what the notebook side signed, against the task keys in the settings."""

    def __init__(self, settings: Settings) -> None:
        self._keys = trusted_keys(settings)
        self._namespace = settings.namespace
        self.secret_id = secret_id(settings.secret)
        """Which shared secret this worker signs results with, as it advertises it."""
        if settings.task_key:
            log.warning(
                "this worker's settings hold the notebook's task_key: a worker needs only its "
                "public half (task_public_key). Whoever reads this config can sign tasks"
            )

    @property
    def key_ids(self) -> list[str]:
        """The ids of the task keys trusted, as the worker advertises them."""
        return self._keys.ids

    def batch(self, entry: TaskEntry) -> tuple[TaskBatch, bytes]:
        """An entry's batch header and its body (the pickled arguments).

        Raises:
          SignatureError: not signed by a trusted task key, or signed for another namespace,
            job or batch than the entry claims (copied from elsewhere).
        """
        try:
            header, body = verify(self._keys, entry.sealed)
            batch = TaskBatch.from_header(header)
        except TypeError as exc:
            raise SignatureError(f"signed header is not a task batch: {exc}") from exc
        if (batch.namespace, batch.job, batch.batch) != (self._namespace, entry.job, entry.batch):
            raise SignatureError(
                f"signed for namespace {batch.namespace!r}, job {batch.job} batch {batch.batch}, "
                f"found as job {entry.job} batch {entry.batch} in {self._namespace!r}"
            )
        late = time.time() - batch.not_after
        if late > 0:
            raise SignatureError(
                f"batch {batch.batch} of job {batch.job} expired {late:.0f} s ago (a replay, or "
                "queued past its result_ttl: its sender signs it again)"
            )
        return batch, body

    def verdict(self, entry: TaskEntry) -> tuple[TaskBatch, bytes] | SignatureError:
        """batch(entry), or the error that refuses it: for the fetcher thread, which verifies
        an entry while Redis answers whether it ran (TaskStore.read), and hands it on."""
        try:
            return self.batch(entry)
        except SignatureError as exc:
            return exc

    def function(self, digest: str, sealed: bytes) -> bytes:
        """A function's body, if signed for the key it was stored under.

        Raises:
          SignatureError: as batch().
        """
        header, body = verify(self._keys, sealed)
        if header != function_header(self._namespace, digest):
            raise SignatureError(f"signed for another function key: {header}")
        return body

    def control(self, data: bytes) -> ControlMessage:
        """A control notice.

        Raises:
          SignatureError: as batch().
        """
        try:
            message = ControlMessage.from_header(verify(self._keys, data)[0])
        except TypeError as exc:
            raise SignatureError(f"signed header is not a control notice: {exc}") from exc
        if message.namespace != self._namespace:
            raise SignatureError(f"a control notice for namespace {message.namespace!r}")
        return message

    def job_state(self, job: str, signed: bytes | None) -> str | None:
        """A job's state as its sender signed it (a job hash's JOB_SIGNED), None if unknown or
        not verified."""
        try:
            status = JobStatus.from_header(verify(self._keys, signed or b"")[0])
        except (SignatureError, TypeError):
            return None
        return status.state if (status.namespace, status.job) == (self._namespace, job) else None
