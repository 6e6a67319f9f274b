# SPDX-License-Identifier: BSD-3-Clause
"""What the notebook side states, signed with its task key, beyond tasks: a job's status (what a
re-attached job and the workers trust of it) and control notices to the workers."""

from __future__ import annotations

from rhc.errors import ConfigurationError
from rhc.wire.protocol import JOB_SIGNED, JOB_STATE, ControlMessage, JobStatus
from rhc.wire.serialization import sign
from rhc.wire.signing import TaskKey


class Statements:
    """Signs statements of one namespace; without a key (`rhc status`), refuses to."""

    def __init__(self, key: TaskKey | None, namespace: str) -> None:
        self._key = key
        self._namespace = namespace

    def status(self, status: JobStatus, **plain: object) -> dict[str, object]:
        """The job hash's fields that say its status: plain (for display), and signed."""
        return {JOB_STATE: status.state, **plain, JOB_SIGNED: self._signed(status.header())}

    def control(self, op: str, job_id: str) -> bytes:
        return self._signed(ControlMessage(op, job_id, self._namespace).header())

    def _signed(self, header: dict) -> bytes:
        if self._key is None:
            raise ConfigurationError("this broker reads only: it holds no task key to sign with")
        return sign(self._key, header)
