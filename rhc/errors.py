# SPDX-License-Identifier: BSD-3-Clause
"""Every exception rhc raises derives from RhcError."""

from __future__ import annotations

from collections.abc import Callable


class RhcError(Exception):
    """Base class for all rhc errors."""


class ArgumentError(RhcError, ValueError, TypeError):
    """Raised when a function is given an argument it cannot use: of the wrong type, out of range,
    unknown or empty. A ValueError and a TypeError too, as Python's own functions raise them."""


class MissingFileError(RhcError, FileNotFoundError):
    """Raised when a file rhc was asked to read does not exist; its filename names it."""


class ConfigurationError(RhcError):
    """Raised when a setting is missing, malformed, or stored unsafely."""


class BrokerError(RhcError):
    """Raised when Redis cannot be used."""


class BrokerConnectionError(BrokerError):
    """Raised when Redis cannot be reached, or stays unreachable past the reconnect timeout."""


class ClientClosedError(BrokerError):
    """Raised by a call on a client that was closed meanwhile (a closed Manager's jobs)."""


class BrokerAuthenticationError(BrokerError):
    """Raised when Redis refuses the password, or needs one that was not given."""


class SerializationError(RhcError):
    """Raised when an object cannot be pickled or unpickled."""


class PayloadTooLargeError(SerializationError):
    """Raised when a function, argument or result serializes to more than the payload limit."""


class SignatureError(RhcError):
    """Raised when a payload is unsigned, or signed with another secret.

    The rejected bytes stay on the exception (``data``) for inspection; they are never unpickled.
    """

    def __init__(self, message: str, data: bytes = b"") -> None:
        super().__init__(message)
        self.data = data


class SecretMismatchError(RhcError):
    """Raised when no live worker can run a job because none trusts the notebook's task key."""


class VersionMismatchError(RhcError):
    """Raised when no live worker can run a job: Python minor or cloudpickle major differ, or
    (rhc.coffea) none has the notebook's coffea; and by a coffea task on a worker with another."""


class JobError(RhcError):
    """Base class for errors about a job as a whole."""


class JobNotFoundError(JobError):
    """Raised when re-attaching to a job id that Redis does not know (never existed, or expired)."""


class JobCancelledError(JobError):
    """Raised when waiting on a job that was cancelled."""


class JobIncompleteError(JobError):
    """Raised when a re-attached job cannot finish: its sender stopped before sending all tasks."""


class MergeError(JobError):
    """Raised when the notebook cannot merge two workers' partial results with the job's reduce."""


class ResultTimeoutError(JobError, TimeoutError):
    """Raised when results are not all in within the time the caller allowed."""


class NotInWorkerError(RhcError):
    """Raised when get_worker() is called outside a task running on a worker."""


class PlaintextWarning(RhcError, UserWarning):
    """Warned when Redis across a network is reached without TLS."""


class _ArgumentUnavailable:
    """Stands for the argument of a failed task that this process never sent (a re-attached job)."""

    def __repr__(self) -> str:
        return "<argument not available: the job was sent from another process>"


ARGUMENT_UNAVAILABLE = _ArgumentUnavailable()


class TaskError(RhcError):
    """Raised in the notebook for a task that failed on a worker.

    Carries what is needed to reproduce it: the task index, the argument, and the remote traceback.
    ``kind`` is "exception" (the function raised), "crashed" (its process died), "timeout",
    "lost" (the workers running it kept dying) or "unloadable" (the worker could not load the
    function or the argument, e.g. a module missing on the worker).
    """

    def __init__(
        self,
        *,
        task: int,
        argument: object,
        kind: str,
        error_type: str,
        message: str,
        remote_traceback: str,
        worker: str,
    ) -> None:
        self.task = task
        self.argument = argument
        self.kind = kind
        self.error_type = error_type
        self.message = message
        self.remote_traceback = remote_traceback
        self.worker = worker
        super().__init__(self._summary())

    def _summary(self) -> str:
        argument = short_repr(self.argument)
        head = f"task {self.task} (argument {argument}) failed on worker {self.worker}: "
        head += f"{self.error_type}: {self.message}"
        if self.remote_traceback:
            head += "\n\nRemote traceback:\n" + self.remote_traceback.rstrip()
        return head

    def __reduce__(self) -> tuple:
        return (_rebuild_task_error, (self.__dict__.copy(),))


def _rebuild_task_error(state: dict) -> TaskError:
    return TaskError(**state)


def short_repr(value: object, limit: int = 200, *, render: Callable[[object], str] = repr) -> str:
    """What render (repr, or str) shows of a value, cut to limit characters, to name it in an
    error message."""
    try:
        text = render(value)
    except Exception as exc:  # a broken __repr__ must not hide the real failure
        text = f"<unrepresentable {type(value).__name__}: {exc}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
