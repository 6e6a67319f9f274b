# SPDX-License-Identifier: BSD-3-Clause
"""A job: one function mapped over many arguments, from the first batch sent to the last result.

Its loop turns in a background thread (or in the caller's, for remote_map): the Sender sends
what the window allows, the loop reads results as workers store them and collects them, then
looks after the job: the Sender re-sends what Redis lost; a re-attached job, which has no
Sender, follows the process that sends it (SenderWatch). Every Redis command goes through the
Broker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

from rhc.errors import (
    ARGUMENT_UNAVAILABLE,
    ArgumentError,
    ClientClosedError,
    JobCancelledError,
    JobIncompleteError,
    ResultTimeoutError,
    SignatureError,
    TaskError,
)
from rhc.manager.broker import Broker
from rhc.manager.options import JobOptions
from rhc.manager.progress import Progress, ProgressBar
from rhc.manager.reattach import SenderWatch, read_record
from rhc.manager.results import Collector
from rhc.manager.sending import Sender
from rhc.wire.protocol import (
    CANCEL,
    CANCEL_FIELD,
    CANCELLED,
    DELIVERED,
    FINISHED,
    RESULT_FIELD,
    RUNNING,
    ControlMessage,
    JobRecord,
    JobStatus,
    ResultMessage,
)
from rhc.wire.serialization import unseal, verify
from rhc.wire.signing import TrustedKeys

log = logging.getLogger(__name__)


class Job:
    """A submitted map: wait for its results, iterate them as they come, or cancel it.

    Made by Manager.submit() and Manager.remote_map() with the Sender that sends its tasks,
    or by Manager.job(id) without one, to re-attach to a job another process sends.
    """

    def __init__(
        self,
        broker: Broker,
        record: JobRecord,
        job_id: str,
        *,
        reducer: Callable | None,
        options: JobOptions,
        trusted: TrustedKeys,
        sender: Sender | None = None,
    ) -> None:
        self.id = job_id
        self._broker = broker
        self._trusted = trusted
        self._options = options
        self._sender = sender
        self._status = JobStatus(broker.settings.namespace, job_id, record.function, record.reduce)
        self._sender_finished = record.state in (FINISHED, DELIVERED)
        self._watch = (
            SenderWatch(broker, trusted, job_id, record, lambda: self.progress)
            if sender is None
            else None
        )
        self._total = record.total  # a re-attached job's; a sending job's is its Sender's
        self._collector = Collector(
            job_id, reducer, self._argument_of, max_payload=broker.settings.max_payload_bytes
        )
        self._state = RUNNING
        self._error: BaseException | None = None
        self._cancel_requested = False
        self._cancel_reason = ""
        self._delivered = False
        self._last_result_id = b"0-0"
        self._paging = broker.pagings.of(record.function)
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Job(id={self.id!r}, state={self._state!r}, {self.progress})"

    # -- what the user calls -------------------------------------------------------------------

    @property
    def progress(self) -> Progress:
        total = self._sender.expected_total if self._sender is not None else self._total
        return self._collector.progress(total)

    @property
    def state(self) -> str:
        return self._state

    @property
    def partials(self) -> int | None:
        """Partial results of a merged job (reduce=) taken in so far: about one per worker,
        however many tasks ran; None for a job that is not merged."""
        return None if self._collector.merged is None else self._collector.merged.partials

    @property
    def failures(self) -> list[TaskError]:
        """The tasks that failed so far, as exceptions carrying remote tracebacks and arguments."""
        with self._condition:
            errors = self._collector.errors
            return [errors[task] for task in sorted(errors)]

    def results(self, timeout: float | None = None, *, progress: bool = False) -> object:
        """Wait for the job and return its results in input order, or the one merged value.

        Raises:
          TaskError: a task failed (unless the job collects failures: return_exceptions=True).
          JobCancelledError: the job was cancelled.
          ResultTimeoutError: timeout seconds passed first.
        """
        self.wait(timeout, progress=progress)
        with self._condition:
            value = self._collector.value()
        self._deliver()
        return value

    def as_completed(self, timeout: float | None = None) -> Iterator[tuple[int, object]]:
        """Yield (task index, result) as tasks finish, in completion order.

        Raises:
          ArgumentError: the job merges its results (reduce=): it has no per-task results.
        """
        if self._collector.merged is not None:
            raise ArgumentError(
                "as_completed() yields per-task results; a merged job has one result"
            )
        deadline = None if timeout is None else time.monotonic() + timeout
        seen = 0
        while True:
            with self._condition:
                fresh = self._collector.completed_since(seen)
                seen += len(fresh)
            yield from fresh
            if self._state != RUNNING and seen == self._collector.map.count:
                self._raise_if_unsuccessful()
                self._deliver()
                return
            if not fresh:
                self._wait_for_news(deadline)

    def wait(self, timeout: float | None = None, *, progress: bool = False) -> None:
        """Block until the job ends.

        Raises:
          TaskError, JobCancelledError, ResultTimeoutError: as results().
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = ProgressBar(progress, self.id)
        try:
            while self._state == RUNNING:
                self._wait_for_news(deadline)
                bar.show(self.progress)
        finally:
            bar.close()
        self._raise_if_unsuccessful()

    def cancel(self) -> None:
        """Stop the job: queued tasks are dropped, running ones interrupted; results() raises."""
        with self._condition:
            if self._state != RUNNING:
                return
            self._cancel_requested = True
            self._condition.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        else:
            self._end_cancelled()

    # -- driving -------------------------------------------------------------------------------

    def start(self) -> Job:
        """Run the job loop in a background thread (submit() and re-attached jobs)."""
        self._thread = threading.Thread(target=self._run, name=f"rhc-job-{self.id}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while self._state == RUNNING and not self._cancel_requested:
            self._step()
        if self._cancel_requested and self._state == RUNNING:
            self._end_cancelled()

    def _wait_for_news(self, deadline: float | None) -> None:
        if deadline is not None and time.monotonic() >= deadline:
            raise ResultTimeoutError(
                f"job {self.id} not finished within the timeout: {self.progress}{self._idle_hint()}"
            )
        if self._thread is None:
            self._step()
            return
        with self._condition:
            if self._state == RUNNING:
                wait = 1.0 if deadline is None else min(max(deadline - time.monotonic(), 0), 1.0)
                self._condition.wait(wait)

    def _idle_hint(self) -> str:
        """Why a job may not be moving: nobody is there to run it."""
        if self._broker.registry.runnable_names():
            return ""
        return (
            f". No worker is running in namespace {self._broker.settings.namespace!r}: start "
            "some (`rhc worker`, `rhc condor submit`); the tasks wait in Redis for them"
        )

    def _step(self) -> None:
        """One turn: send what the window allows, read results, look after the job."""
        try:
            if self._sender is not None:
                self._sender.send()
            self._receive(block=True)
            self._keep_up()
            if self._complete():
                self._finish()
        except BaseException as exc:
            self._abort(exc)

    def _raise_if_unsuccessful(self) -> None:
        if self._error is not None:
            raise self._error
        if self._state == CANCELLED and self._cancel_reason:
            raise JobCancelledError(
                f"job {self.id} was stopped by an error in the process that sent it: "
                f"{self._cancel_reason}"
            )
        if self._state == CANCELLED:
            raise JobCancelledError(f"job {self.id} was cancelled")

    @property
    def _known_total(self) -> int | None:
        """The number of tasks, once known: its Sender's, or as its sender signed it."""
        return self._sender.total if self._sender is not None else self._total

    def _complete(self) -> bool:
        return self._collector.complete(self._known_total)

    # -- receiving -----------------------------------------------------------------------------

    def _receive(self, *, block: bool) -> None:
        """One read, waiting a little for results; not blocking: every result stored by now."""
        full = True
        while full:
            after, count = self._last_result_id, self._paging.count
            entries = self._broker.read_results(self.id, after, count=count, block=block)
            if not entries:
                return
            self._paging.saw(entries)
            with self._condition:
                for entry_id, fields in entries:
                    self._last_result_id = entry_id
                    self._apply(fields)
                self._condition.notify_all()
            full = not block and len(entries) == count

    def _apply(self, fields: dict[bytes, bytes]) -> None:
        notice = fields.get(CANCEL_FIELD.encode())
        if notice is not None:
            self._cancelled_elsewhere(notice)
            return
        try:
            header, body = unseal(self._broker.settings.secret, fields[RESULT_FIELD.encode()])
            message = ResultMessage.from_header(header)
        except (SignatureError, KeyError, TypeError) as exc:
            log.error("job %s: ignored an unverified result (not unpickled): %s", self.id, exc)
            return
        if message.job != self.id:
            return
        log.debug(
            "job %s: %s from %s, %d tasks",
            self.id,
            message.kind,
            message.worker,
            message.task_count,
        )
        added = self._collector.add(message, body)
        if not added.accepted:
            log.warning(
                "job %s: ignored a partial result from %s overlapping merged ones; "
                "checking for tasks to send again",
                self.id,
                message.worker,
            )
        if self._sender is not None:
            self._sender.heard(message, accepted=added.accepted)
        if added.failures and not self._options.return_exceptions:
            raise added.failures[0]

    def _cancelled_elsewhere(self, notice: bytes) -> None:
        """Whoever holds a task key (the dashboard, another kernel) cancelled this job: it
        ends here too, as if cancel() had been called."""
        try:
            message = ControlMessage.from_header(verify(self._trusted, notice)[0])
        except (SignatureError, TypeError) as exc:
            log.error("job %s: ignored a cancel notice that failed verification: %s", self.id, exc)
            return
        ours = (CANCEL, self.id, self._status.namespace)
        if (message.op, message.job, message.namespace) == ours:
            record = read_record(self._broker, self._trusted, self.id)  # why, if an error
            self._cancel_reason = record.reason if record is not None else ""
            self._state = CANCELLED
            self._condition.notify_all()

    def _argument_of(self, task: int) -> object:
        if self._sender is None:
            return ARGUMENT_UNAVAILABLE
        return self._sender.argument(task)

    # -- looking after the job -----------------------------------------------------------------

    def _keep_up(self) -> None:
        if self._sender is None:
            self._follow_sender()
        else:
            self._sender.keep_up(receive=lambda: self._receive(block=False))

    def _routes(self) -> set[str]:
        """The workers this job sends tasks to directly."""
        return self._sender.routes if self._sender is not None else set()

    def _follow_sender(self) -> None:
        """A re-attached job learns the total once its sender has sent every task, and that the
        job was cancelled (by its sender, or by an error there): no result would ever come."""
        record = self._watch.news()
        if record is None:
            return
        if record.state == CANCELLED:
            self._cancel_reason = record.reason
            self._set_state(CANCELLED)
            return
        self._total = record.total
        self._sender_finished = record.state in (FINISHED, DELIVERED)
        if record.state == DELIVERED and not self._complete():
            raise JobIncompleteError(
                f"job {self.id}'s results were delivered to another caller, and removed from "
                f"Redis before this one read them all ({self.progress})"
            )

    def _finish(self) -> None:
        # Its caller waits in results() (remote_map): the results are delivered as it finishes
        delivered = self._thread is None
        if self._sender is not None:
            self._sender.finish(delivered=delivered)
            self._delivered = delivered
        self._set_state(FINISHED)

    def _deliver(self) -> None:
        """The results reached the caller: Redis need not keep them (once)."""
        if self._delivered:
            return
        self._delivered = True
        if self._sender is None and not self._sender_finished:
            return  # its sender still reads them: theirs to remove
        self._broker.delivered(replace(self._status, total=self._known_total))

    def _end_cancelled(self, reason: str = "") -> None:
        """Cancel the job in Redis; reason: the error that stopped it, if one did."""
        try:
            self._broker.cancel(self._status, reason, self._routes())
        finally:
            self._set_state(CANCELLED)

    def _abort(self, exc: BaseException) -> None:
        """The job cannot go on: stop its tasks (best effort) and hand the error to the waiter."""
        with self._condition:
            self._error = exc
        # only its sender stops a job on an error, unless closed; a re-attached one reports it
        created = self._sender is not None and self._sender.created
        if created and not isinstance(exc, (JobIncompleteError, ClientClosedError)):
            try:
                self._end_cancelled(reason=f"{type(exc).__name__}: {exc}")
            except Exception as cleanup:  # the original error matters more than this one
                log.warning("job %s: could not cancel after an error: %s", self.id, cleanup)
        self._set_state(CANCELLED)

    def _set_state(self, state: str) -> None:
        with self._condition:
            self._state = state
            self._condition.notify_all()
