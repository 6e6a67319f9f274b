# SPDX-License-Identifier: BSD-3-Clause
"""The notebook side's one owner of Redis: every command a manager, its jobs and `rhc status`
send is here, each retried through connection loss, with the keys of rhc.wire.keys."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TypeVar

import redis

from rhc import defaults
from rhc.config import Settings
from rhc.manager.deferred import DeferredWrites, Write
from rhc.manager.paging import PagingByFunction
from rhc.manager.registry import WorkerRegistry
from rhc.manager.statements import Statements
from rhc.wire.activity import RECENT_JOBS_KEPT, RECENT_JOBS_TRIM_EVERY, SUBMITTED
from rhc.wire.connection import Reconnector, connect, execute, once, read_streams
from rhc.wire.keys import Keys
from rhc.wire.protocol import (
    CANCEL,
    CANCEL_FIELD,
    CANCELLED,
    DELIVERED,
    FINISHED,
    JOB_DONE,
    JOB_REASON,
    JOB_SUBMITTED,
    JOB_TOTAL,
    JobRecord,
    JobStatus,
    TaskEntry,
    WorkerInfo,
)
from rhc.wire.scripts import DRAIN
from rhc.wire.serialization import secret_id
from rhc.wire.signing import TaskKey

log = logging.getLogger(__name__)
T = TypeVar("T")

_PAGE = 1000

REATTACH_ADVICE = ". Results stored so far are kept in Redis: re-attach with Manager().job(id)"


class Broker:
    """Redis, as one manager sees it: its connection, its namespace's keys and its workers.

    Parameters:
      key: the task key, which signs what changes what workers do (control notices) and what a
        re-attached job trusts (the job's status); None for a reader (`rhc status`).
      role: how its connection is named in Redis (CLIENT LIST).
      reconnect_timeout: how long a command waits for a lost Redis (default: the setting).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        key: TaskKey | None = None,
        role: str = "manager",
        reconnect_timeout: float | None = None,
    ) -> None:
        self.settings = settings
        self._statements = Statements(key, settings.namespace)
        self._client = connect(settings, role=role)
        self._keys = Keys(settings.namespace)
        timeout = settings.reconnect_timeout if reconnect_timeout is None else reconnect_timeout
        self._reconnect = Reconnector(settings, timeout, advice=REATTACH_ADVICE)
        self.registry = WorkerRegistry(
            self.read_workers,
            namespace=settings.namespace,
            heartbeat_ttl=settings.heartbeat_ttl,
            key_id=key.key_id.hex() if key is not None else None,
            secret_id=secret_id(settings.secret),
        )
        self._stream = self._keys.task_stream(self.registry.compat)
        self._drain = self._client.register_script(DRAIN)
        self._stored_functions: set[str] = set()
        self._jobs_created = 0  # by this broker: the recent-jobs list is trimmed now and then
        self._speeds: dict[str, float] = {}
        self.pagings = PagingByFunction()
        """How many result entries its jobs read at once, per function."""
        self._ttl = int(settings.result_ttl)
        self._deferred = DeferredWrites(self._send_writes)

    def close(self) -> None:
        """Its jobs end (ClientClosedError) rather than reconnect: their tasks stay in Redis."""
        self._deferred.close()
        self._reconnect.close()
        self._client.close()

    def _send_writes(self, writes: list[Write]) -> None:
        if self._reconnect.closed:  # added after close() (a late results()): they cannot go,
            return  # and what they would record expires with result_ttl

        def send() -> None:
            with self._client.pipeline(transaction=False) as pipe:
                for write in writes:
                    write(pipe)
                execute(pipe)

        self._call(send, doing="recording finished jobs")

    def _call(self, operation: Callable[[], T], *, doing: str) -> T:
        return self._reconnect.call(operation, doing=doing)

    @property
    def losses(self) -> int:
        """How many times Redis was lost and found again: it may have lost data meanwhile."""
        return self._reconnect.losses

    # -- workers ---------------------------------------------------------------------------------

    def read_workers(self) -> list[WorkerInfo]:
        """Every registered worker, live or not, by name."""
        raw = self._call(lambda: self._client.hgetall(self._keys.workers), doing="reading workers")
        infos = []
        for value in raw.values():
            try:
                infos.append(WorkerInfo.decode(value))
            except (ValueError, TypeError):
                continue
        return sorted(infos, key=lambda info: info.name)

    def reroute_departed(self, name: str) -> int:
        """Move what a departed worker's own stream still holds to the shared stream, where
        the others read; how many batches moved."""
        moved = self._call(
            lambda: self._drain(keys=[self._keys.worker_stream(name), self._stream]),
            doing="re-routing the tasks of a departed worker",
        )
        if moved:
            log.info("moved %d task batch(es) routed to departed worker %s", moved, name)
        return moved

    # -- where data was cached -------------------------------------------------------------------

    def routes(self, keys: list[str]) -> list[str | None]:
        """The worker that last processed each piece of data (cache affinity), or None."""
        if not keys:
            return []
        found = self._call(
            lambda: self._client.hmget(self._keys.affinity, keys),
            doing="reading where data was cached",
        )
        return [name.decode() if name else None for name in found]

    def remember_routes(self, routes: dict[str, str]) -> None:
        """Record which worker processed each piece of data, for the next run over it."""
        if not routes:
            return

        def remember() -> None:
            with self._client.pipeline(transaction=False) as pipe:
                pipe.hset(self._keys.affinity, mapping=routes)
                pipe.expire(self._keys.affinity, self._ttl)
                pipe.execute()

        self._call(remember, doing="recording where data was cached")

    # -- functions -------------------------------------------------------------------------------

    def function(self, digest: str) -> bytes | None:
        """A job's sealed function, or None if it expired."""
        key = self._keys.function(digest)
        return self._call(lambda: self._client.get(key), doing="reading the job's function")

    def seconds_per_task(self, digest: str) -> float | None:
        """What the last job running this function measured, so a re-run starts well batched."""
        if digest not in self._speeds:
            value = self._call(
                lambda: self._client.hget(self._keys.function_stats, digest),
                doing="reading task statistics",
            )
            if value is None:
                return None
            self._speeds[digest] = float(value)
        return self._speeds[digest]

    def forget_functions(self) -> None:
        """After Redis lost data: store functions again on next use."""
        self._stored_functions.clear()

    # -- a job's life ------------------------------------------------------------------------------

    def send(
        self,
        job_id: str,
        batches: Iterable[tuple[str | None, dict[str, object]]],
        *,
        submitted: int,
        new_tasks: int,
        total: int | None,
        created: tuple[JobRecord, bytes] | None = None,
        status: JobStatus | None = None,
    ) -> None:
        """Queue task entries, each on its worker's stream (a route) or the shared one, and
        bring the job hash up to date (`submitted` tasks so far, `new_tasks` of them sent for
        the first time now); `created` stores the job's record and sealed function first;
        `status`, what it says now (signed)."""
        job_key = self._keys.job(job_id)

        def send() -> None:
            with self._client.pipeline(transaction=False) as pipe:
                if created is not None:
                    record, sealed_function = created
                    self._queue_function(pipe, record.function, sealed_function)
                    fields = record.to_fields()
                    # written again after a lost connection: the workers' count stays if Redis
                    # still holds it
                    pipe.hsetnx(job_key, JOB_DONE, fields.pop(JOB_DONE))
                    pipe.hset(job_key, mapping=fields)
                    # integer milliseconds: a small sorted set stores its scores as text, and
                    # every insert reads them all back; integers read back 4x faster than floats
                    pipe.zadd(self._keys.recent_jobs, {job_id: int(record.created * 1000)})
                    self._jobs_created += 1
                    if self._jobs_created % RECENT_JOBS_TRIM_EVERY == 1:  # a few over: fine
                        pipe.zremrangebyrank(self._keys.recent_jobs, 0, -RECENT_JOBS_KEPT - 1)
                    # the marks of batches run exist from now on, to expire with the job
                    pipe.hsetnx(self._keys.ran(job_id), "job", job_id)
                for route, entry in batches:
                    pipe.xadd(self._task_stream(route), entry)
                # after the tasks, in one write: a total (or status) read means all are queued
                pipe.hset(job_key, mapping=self._progress_fields(submitted, total, status))
                pipe.hincrby(self._keys.counters, SUBMITTED, new_tasks)
                self._keep(pipe, job_id)
                pipe.zadd(self._keys.jobs, {job_id: time.time()})
                execute(pipe)  # a small map waits for this: no redis-py reply handling

        self._call(once(send, then=self._client.ping), doing="sending tasks")
        if created is not None:
            self._stored_functions.add(created[0].function)

    def _progress_fields(self, submitted: int, total: int | None, status: JobStatus | None) -> dict:
        fields: dict[str, object] = {JOB_SUBMITTED: submitted}
        if total is not None:
            fields[JOB_TOTAL] = total
        if status is not None:
            fields.update(self._statements.status(status))
        return fields

    def _queue_function(self, pipe: redis.client.Pipeline, digest: str, sealed: bytes) -> None:
        """Store a function once (content addressed) and keep it alive."""
        key = self._keys.function(digest)
        if digest in self._stored_functions:
            pipe.expire(key, self._ttl)
        else:
            pipe.set(key, sealed, nx=True, ex=self._ttl)

    def _task_stream(self, route: str | None) -> str:
        """Where a batch goes: its worker's own stream, or the shared one."""
        return self._keys.worker_stream(route) if route else self._stream

    def read_results(
        self, job_id: str, after: bytes, *, count: int, block: bool
    ) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """Up to `count` of the job's result entries after entry id `after`; block: wait a
        little for some."""
        key = self._keys.results(job_id)
        wait = int(defaults.DEFAULT_READ_BLOCK * 1000) if block else None
        reply = self._call(
            lambda: read_streams(self._client, {key: after}, count=count, block=wait),
            doing="waiting for results",
        )
        return [entry for _, entries in reply or [] for entry in entries]

    def mark_active(self, job_id: str, function: str) -> None:
        """Tell re-attached jobs that the sender of this one is alive; keep its records and
        its function (queued tasks may wait long for a worker)."""

        def mark() -> None:
            with self._client.pipeline(transaction=False) as pipe:
                pipe.zadd(self._keys.jobs, {job_id: time.time()})
                pipe.expire(self._keys.function(function), self._ttl)
                self._keep(pipe, job_id)
                pipe.execute()

        self._call(mark, doing="marking the job active")

    def _keep(self, pipe: redis.client.Pipeline, job_id: str) -> None:
        """Keep a job's hash and marks of batches run for result_ttl from now: the marks
        outlive every batch signed before (each valid for result_ttl)."""
        pipe.expire(self._keys.job(job_id), self._ttl)
        pipe.expire(self._keys.ran(job_id), self._ttl)

    def ran(self, job_id: str, batches: list[int]) -> list[int]:
        """Those of the job's batches a worker ran and stored a result of."""
        marks = self._call(
            lambda: self._client.hmget(self._keys.ran(job_id), [str(n) for n in batches]),
            doing="reading which batches ran",
        )
        return [number for number, mark in zip(batches, marks, strict=True) if mark is not None]

    def notify(self, op: str, job_id: str) -> None:
        """Publish a control message to every worker of the namespace."""
        message = self._statements.control(op, job_id)
        self._call(
            lambda: self._client.publish(self._keys.control, message), doing="notifying workers"
        )

    def queued_entries(self, job_id: str, routes: Iterable[str]) -> list[TaskEntry]:
        """The job's entries in the task streams it uses, waiting or taken and unacknowledged."""
        return self._call(
            lambda: self._queued_entries(job_id, routes), doing="checking queued tasks"
        )

    def _queued_entries(self, job_id: str, routes: Iterable[str]) -> list[TaskEntry]:
        found: list[TaskEntry] = []
        for stream in [self._stream, *map(self._task_stream, routes)]:
            start: str | bytes = "-"
            while True:
                entries = self._client.xrange(stream, min=start, count=_PAGE)
                parsed = (TaskEntry.parse(stream, entry_id, fields) for entry_id, fields in entries)
                found += [entry for entry in parsed if entry.job == job_id]
                if len(entries) < _PAGE:
                    break
                start = b"(" + entries[-1][0]
        return found

    def job_record(self, job_id: str) -> JobRecord | None:
        """The job's hash, or None if Redis does not hold it (never sent, or expired)."""
        self._deferred.wait()
        raw = self._call(
            lambda: self._client.hgetall(self._keys.job(job_id)), doing="reading the job"
        )
        return JobRecord.from_fields(raw) if raw else None

    def last_active(self, job_id: str) -> float | None:
        """When the job's sender last showed it was alive (epoch seconds), or None once it
        finished or stopped."""
        self._deferred.wait()
        return self._call(
            lambda: self._client.zscore(self._keys.jobs, job_id), doing="reading the job"
        )

    def finish(self, status: JobStatus, speed: float | None, *, delivered: bool) -> None:
        """Mark the job finished (status: its total), and remember how long its function's
        tasks took. Its results are deleted if delivered (the caller has them), else kept for
        result_ttl. Written a moment later, behind the caller (see rhc.manager.deferred)."""
        keys, job_id, function = self._keys, status.job, status.function
        status = replace(status, state=DELIVERED if delivered else FINISHED)

        def finish(pipe: redis.client.Pipeline) -> None:
            fields = self._statements.status(status, **{JOB_TOTAL: status.total})
            pipe.hset(keys.job(job_id), mapping=fields)
            self._keep(pipe, job_id)
            if delivered:
                pipe.delete(keys.results(job_id))
            else:
                pipe.expire(keys.results(job_id), self._ttl)
            pipe.zrem(keys.jobs, job_id)
            if speed is not None:
                pipe.hset(keys.function_stats, function, speed)
                pipe.expire(keys.function_stats, self._ttl)

        if speed is not None:
            self._speeds[function] = speed
        self._deferred.add(finish)

    def delivered(self, status: JobStatus) -> None:
        """The job's results reached its caller: delete them, and say so in its status
        (behind the caller, after its finish)."""

        def delivered(pipe: redis.client.Pipeline) -> None:
            fields = self._statements.status(replace(status, state=DELIVERED))
            pipe.hset(self._keys.job(status.job), mapping=fields)
            pipe.delete(self._keys.results(status.job))
            self._keep(pipe, status.job)

        self._deferred.add(delivered)

    def cancel(self, status: JobStatus, reason: str, routes: Iterable[str]) -> None:
        """Mark the job cancelled (reason: the error that stopped it, if one did), tell the
        workers, and delete its queued entries, taken ones too: their workers drop them."""
        keys, job_id = self._keys, status.job
        fields = self._statements.status(
            replace(status, state=CANCELLED, reason=reason), **{JOB_REASON: reason}
        )
        control = self._statements.control(CANCEL, job_id)

        def cancel() -> None:
            with self._client.pipeline(transaction=False) as pipe:
                pipe.hset(keys.job(job_id), mapping=fields)
                pipe.publish(keys.control, control)
                pipe.xadd(keys.results(job_id), {CANCEL_FIELD: control})
                pipe.zrem(keys.jobs, job_id)
                pipe.expire(keys.results(job_id), self._ttl)
                self._keep(pipe, job_id)
                pipe.execute()
            for entry in self._queued_entries(job_id, routes):
                self._client.xdel(entry.stream, entry.entry_id)

        self._call(cancel, doing="cancelling the job")
