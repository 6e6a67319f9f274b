# SPDX-License-Identifier: BSD-3-Clause
"""A job: one function mapped over many arguments, from the first batch sent to the last result.

The job loop sends batches while fewer than a window of them are unfinished (back-pressure: a
million-task map streams in bounded memory, and the batches of concurrent jobs interleave in the
shared stream, so each running job is served in turn), reads results as workers store them, and
sends again any batch that Redis lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from tqdm.auto import tqdm

from rhc import defaults
from rhc.broker import Broker
from rhc.dispatch import Dispatcher, SentBatch
from rhc.errors import (
    ARGUMENT_UNAVAILABLE,
    BrokerError,
    JobCancelledError,
    JobIncompleteError,
    ResultTimeoutError,
    SecretMismatchError,
    SignatureError,
    TaskError,
)
from rhc.protocol import (
    CANCEL,
    CANCELLED,
    FINISHED,
    FLUSH,
    JOB_REASON,
    JOB_STATE,
    JOB_SUBMITTED,
    JOB_TOTAL,
    PARTIAL,
    PROGRESS,
    REJECTED_FIELD,
    REJECTED_WORKER_FIELD,
    RESULT_FIELD,
    RUNNING,
    ControlMessage,
    JobRecord,
    ResultMessage,
    TaskEntry,
)
from rhc.results import Collector, Progress
from rhc.serialization import unseal

log = logging.getLogger("rhc.job")

STALL_CHECK = 10.0
"""Seconds without news after which a job checks that Redis still holds its batches."""

FLUSH_REPEAT = 2.0
"""How often a merged job whose tasks all ran asks workers for their partial results."""

ABANDONED_AFTER = 60.0
"""Seconds a re-attached job waits for a sender that stopped sending before giving up."""

ACTIVITY_REFRESH = 10.0
"""How often a sending job marks itself active, so re-attached jobs know it is alive."""


class Job:
    """A submitted map: wait for its results, iterate them as they come, or cancel it.

    Made by Manager.submit() and Manager.remote_map(), or by Manager.job(id) to re-attach.
    """

    def __init__(
        self,
        broker: Broker,
        record: JobRecord,
        job_id: str,
        *,
        reducer: Callable | None,
        dispatcher: Dispatcher | None = None,
        sealed_function: bytes | None = None,
        return_exceptions: bool = False,
        affinity: Sequence[str | None] | None = None,
    ) -> None:
        self.id = job_id
        self._broker = broker
        self._keys = broker.keys
        self._record = record
        self._dispatcher = dispatcher
        self._sealed_function = sealed_function
        self._return_exceptions = return_exceptions
        self._total = record.total
        self._collector = Collector(job_id, reducer, self._argument_of)
        self._affinity = affinity
        self._ran_on: dict[str, str] = {}  # affinity key -> worker that ran it, for next time
        self._state = RUNNING
        self._error: BaseException | None = None
        self._created = dispatcher is None
        self._cancel_requested = False
        self._cancel_reason = ""
        self._last_result_id = b"0-0"
        self._last_news = time.monotonic()
        self._last_flush_request = 0.0
        self._last_sender_check = 0.0
        self._last_activity = time.monotonic()
        self._losses_seen = broker.reconnect.losses
        self._recover_soon = False
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Job(id={self.id!r}, state={self._state!r}, {self.progress})"

    # -- what the user calls -------------------------------------------------------------------

    @property
    def progress(self) -> Progress:
        total = self._total
        if total is None and self._dispatcher is not None:
            total = self._dispatcher.expected_total
        return self._collector.progress(total)

    @property
    def state(self) -> str:
        return self._state

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
            return self._collector.value()

    def as_completed(self, timeout: float | None = None) -> Iterator[tuple[int, object]]:
        """Yield (task index, result) as tasks finish, in completion order."""
        if self._collector.merged is not None:
            raise TypeError("as_completed() yields per-task results; a merged job has one result")
        deadline = None if timeout is None else time.monotonic() + timeout
        seen = 0
        while True:
            with self._condition:
                fresh = self._collector.completed_since(seen)
                seen += len(fresh)
            yield from fresh
            if self._state != RUNNING and seen == self._collector.map.count:
                self._raise_if_unsuccessful()
                return
            if not fresh:
                self._wait_for_news(deadline)

    def wait(self, timeout: float | None = None, *, progress: bool = False) -> None:
        """Block until the job ends.

        Raises:
          TaskError, JobCancelledError, ResultTimeoutError: as results().
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = _ProgressBar(progress, self.id)
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
        if self._broker.runnable_names():
            return ""
        return (
            f". No worker is running in namespace {self._broker.settings.namespace!r}: start "
            "some (`rhc worker`, `rhc condor submit`); the tasks wait in Redis for them"
        )

    def _step(self) -> None:
        """One turn: send what the window allows, read results, look after the job."""
        try:
            if self._dispatcher is not None:
                self._send()
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

    def _complete(self) -> bool:
        return self._collector.complete(self._total)

    # -- sending -------------------------------------------------------------------------------

    def _send(self) -> None:
        dispatcher, broker = self._dispatcher, self._broker
        workers, alive = broker.runnable_workers(), broker.runnable_names()
        for name in dispatcher.departed_routes(alive):
            broker.reroute_departed(name)
        fresh = dispatcher.next_batches(2 * max(workers, 1) + 2, workers, alive)
        if dispatcher.total is not None:
            self._total = dispatcher.total
        if fresh or not self._created:
            broker.call(lambda: self._enqueue(fresh), doing="sending tasks")

    def _enqueue(self, batches: list[SentBatch]) -> None:
        keys, broker = self._keys, self._broker
        job_key = keys.job(self.id)
        with broker.client.pipeline(transaction=False) as pipe:
            if not self._created:
                broker.queue_function(pipe, self._record.function, self._sealed_function)
                pipe.hset(job_key, mapping=self._record.to_fields())
            for sent in batches:
                pipe.xadd(self._stream(sent.route), sent.fields)
            pipe.hset(job_key, JOB_SUBMITTED, self._dispatcher.submitted)
            if self._total is not None:
                pipe.hset(job_key, JOB_TOTAL, self._total)
            pipe.expire(job_key, int(broker.settings.result_ttl))
            pipe.zadd(keys.jobs, {self.id: time.time()})
            pipe.execute()
        if not self._created:
            broker.function_stored(self._record.function)
            self._created = True

    # -- receiving -----------------------------------------------------------------------------

    def _receive(self, *, block: bool) -> None:
        results_key = self._keys.results(self.id)
        wait = int(defaults.DEFAULT_READ_BLOCK * 1000) if block else None
        reply = self._broker.call(
            lambda: self._broker.client.xread(
                {results_key: self._last_result_id}, count=10_000, block=wait
            ),
            doing="waiting for results",
        )
        for _, entries in reply or []:
            with self._condition:
                for entry_id, fields in entries:
                    self._last_result_id = entry_id
                    self._apply(fields)
                self._condition.notify_all()

    def _apply(self, fields: dict[bytes, bytes]) -> None:
        if REJECTED_FIELD.encode() in fields:
            worker = fields.get(REJECTED_WORKER_FIELD.encode(), b"?").decode(errors="replace")
            raise SecretMismatchError(
                f"worker {worker} rejected the tasks of job {self.id}: their signature does not "
                "match its secret. The notebook and the workers must share one secret (RHC_SECRET, "
                "or `secret` in the config file the workers read)"
            )
        try:
            header, body = unseal(self._broker.settings.secret, fields[RESULT_FIELD.encode()])
            message = ResultMessage.from_header(header)
        except (SignatureError, KeyError, TypeError) as exc:
            log.error(
                "job %s: ignored a result that failed verification (not unpickled): %s",
                self.id,
                exc,
            )
            return
        if message.job != self.id:
            return
        self._last_news = time.monotonic()
        added = self._collector.add(message, body)
        if not added.accepted:
            log.warning(
                "job %s: ignored a partial result from %s overlapping merged ones; "
                "checking for tasks to send again",
                self.id,
                message.worker,
            )
            self._recover_soon = True
        elif self._dispatcher is not None:
            self._account(message)
        if added.failures and not self._return_exceptions:
            raise added.failures[0]

    def _account(self, message: ResultMessage) -> None:
        """Free the window slots of the batches a message finished, learn their speed, and
        where their data now is."""
        dispatcher = self._dispatcher
        if self._affinity is not None and message.kind != PARTIAL:
            for first, count in message.spans:
                for key in self._affinity[first : first + count]:
                    if key is not None:
                        self._ran_on[key] = message.worker
        for number in message.batches:
            if message.kind == PROGRESS:
                dispatcher.processed(number)
            else:
                dispatcher.settle(number)
        if message.kind != PARTIAL:
            dispatcher.sizer.observe(message.finished - message.started, message.task_count)

    def _argument_of(self, task: int) -> object:
        if self._dispatcher is None:
            return ARGUMENT_UNAVAILABLE
        return self._dispatcher.argument(task)

    # -- looking after the job -----------------------------------------------------------------

    def _keep_up(self) -> None:
        now = time.monotonic()
        dispatcher = self._dispatcher
        if dispatcher is None:
            self._follow_sender(now)
            return
        if now - self._last_activity >= ACTIVITY_REFRESH:
            self._last_activity = now
            self._broker.call(
                lambda: self._broker.client.zadd(self._keys.jobs, {self.id: time.time()}),
                doing="marking the job active",
            )
        if (
            self._collector.merged is not None
            and dispatcher.sending_done
            and dispatcher.in_flight == 0
            and now - self._last_flush_request >= FLUSH_REPEAT
        ):
            self._last_flush_request = now
            self._publish(FLUSH)
        lost_redis = self._broker.reconnect.losses != self._losses_seen
        if (
            lost_redis
            or self._recover_soon
            or (dispatcher.sent and now - self._last_news > STALL_CHECK)
        ):
            self._recover(lost_redis)

    def _recover(self, lost_redis: bool) -> None:
        """Send again every batch that has neither a result nor a queue entry."""
        self._losses_seen = self._broker.reconnect.losses
        self._recover_soon = False
        self._last_news = time.monotonic()
        if lost_redis:
            self._broker.forget_functions()
            self._created = False  # the job hash and function may be gone: write them again
            self._enqueue([])
        queued = self._broker.call(self._queued_batches, doing="checking queued tasks")
        self._receive(block=False)  # results stored since the scan settle their batches
        lost = self._dispatcher.lost(queued)
        if lost:
            log.warning(
                "job %s: sending %d batch(es) again that Redis no longer held", self.id, len(lost)
            )
            self._broker.call(lambda: self._enqueue(lost), doing="sending tasks again")

    def _queued_batches(self) -> set[int]:
        return {entry.batch for entry in self._queued_entries()}

    def _stream(self, route: str | None) -> str:
        """Where a batch goes: its worker's own stream, or the shared one."""
        return self._keys.worker_stream(route) if route else self._broker.stream

    def _queued_entries(self) -> list[TaskEntry]:
        """This job's entries in the task streams it uses, waiting or taken and unacknowledged."""
        routes = self._dispatcher.routes if self._dispatcher is not None else set()
        found: list[TaskEntry] = []
        for stream in [self._broker.stream, *map(self._stream, routes)]:
            start: str | bytes = "-"
            while True:
                entries = self._broker.client.xrange(stream, min=start, count=1000)
                parsed = (TaskEntry.parse(stream, entry_id, fields) for entry_id, fields in entries)
                found += [entry for entry in parsed if entry.job == self.id]
                if len(entries) < 1000:
                    break
                start = b"(" + entries[-1][0]
        return found

    def _follow_sender(self, now: float) -> None:
        """A re-attached job learns the total once its sender has sent every task, and that the
        job was cancelled (by its sender, or by an error there): no result would ever come."""
        if now - self._last_sender_check < 1.0:
            return
        self._last_sender_check = now
        client, keys = self._broker.client, self._keys

        def read() -> tuple[dict, float | None]:
            return client.hgetall(keys.job(self.id)), client.zscore(keys.jobs, self.id)

        raw, active = self._broker.call(read, doing="reading the job")
        record = JobRecord.from_fields(raw) if raw else self._record
        if record.state == CANCELLED:
            self._cancel_reason = record.reason
            self._set_state(CANCELLED)
            return
        if record.total is not None:
            self._total = record.total
            return
        if active is None or time.time() - active > ABANDONED_AFTER:
            raise JobIncompleteError(
                f"job {self.id} cannot finish: the process that submitted it stopped after "
                f"sending {record.submitted} tasks, before sending them all ({self.progress})"
            )

    def _finish(self) -> None:
        keys, broker = self._keys, self._broker
        ttl = int(broker.settings.result_ttl)
        speed = self._dispatcher.sizer.seconds_per_task if self._dispatcher else None
        if speed is not None:
            broker.speeds[self._record.function] = speed

        def close() -> None:
            with broker.client.pipeline(transaction=False) as pipe:
                pipe.hset(keys.job(self.id), mapping={JOB_STATE: FINISHED, JOB_TOTAL: self._total})
                pipe.expire(keys.job(self.id), ttl)
                pipe.expire(keys.results(self.id), ttl)
                pipe.zrem(keys.jobs, self.id)
                if speed is not None:
                    pipe.hset(keys.function_stats, self._record.function, speed)
                    pipe.expire(keys.function_stats, ttl)
                pipe.execute()

        if self._dispatcher is not None:
            try:
                broker.call(close, doing="closing the job")
                broker.remember_routes(self._ran_on)
            except BrokerError as exc:  # every result is in hand: they matter more than records
                log.warning(
                    "job %s: all results are in, but Redis refused to close it: %s", self.id, exc
                )
        self._set_state(FINISHED)

    def _end_cancelled(self, reason: str = "") -> None:
        """Cancel the job in Redis; reason: the error that stopped it, if one did."""
        keys, broker = self._keys, self._broker

        def cancel() -> None:
            with broker.client.pipeline(transaction=False) as pipe:
                pipe.hset(keys.job(self.id), mapping={JOB_STATE: CANCELLED, JOB_REASON: reason})
                pipe.publish(keys.control, ControlMessage(CANCEL, self.id).encode())
                pipe.zrem(keys.jobs, self.id)
                pipe.expire(keys.results(self.id), int(broker.settings.result_ttl))
                pipe.execute()
            for entry in self._queued_entries():  # taken ones too: their workers drop them
                broker.client.xdel(entry.stream, entry.entry_id)

        try:
            broker.call(cancel, doing="cancelling the job")
        finally:
            self._set_state(CANCELLED)

    def _abort(self, exc: BaseException) -> None:
        """The job cannot go on: stop its tasks (best effort) and hand the error to the waiter."""
        with self._condition:
            self._error = exc
        if self._created and not isinstance(exc, JobIncompleteError):
            try:
                self._end_cancelled(reason=f"{type(exc).__name__}: {exc}")
            except Exception as cleanup:  # the original error matters more than this one
                log.warning("job %s: could not cancel after an error: %s", self.id, cleanup)
        self._set_state(CANCELLED)

    def _publish(self, op: str) -> None:
        message = ControlMessage(op, self.id).encode()
        self._broker.call(
            lambda: self._broker.client.publish(self._keys.control, message),
            doing="notifying workers",
        )

    def _set_state(self, state: str) -> None:
        with self._condition:
            self._state = state
            self._condition.notify_all()


class _ProgressBar:
    """A tqdm bar (a widget in Jupyter, text in a terminal) that follows a job."""

    def __init__(self, enabled: bool, job_id: str) -> None:
        self._bar = tqdm(desc=f"job {job_id}", unit="task", dynamic_ncols=True) if enabled else None

    def show(self, progress: Progress) -> None:
        if self._bar is None:
            return
        if progress.total is not None and self._bar.total != progress.total:
            self._bar.total = progress.total
        self._bar.update(progress.done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
