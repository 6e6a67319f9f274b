# SPDX-License-Identifier: BSD-3-Clause
"""A worker's side of Redis while it serves: reading task entries, storing results with their
acknowledgements, handing entries back. (How it leaves is the Reaper's.)"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import redis

from rhc.wire.activity import (
    DEPARTURES_KEPT,
    FAILURES_KEPT,
    SPANS_KEPT,
    TEXT_KEPT,
    Departure,
    FailureNotice,
    Span,
    runtime_bucket,
)
from rhc.wire.connection import (
    RETRYABLE,
    Reconnector,
    execute,
    once,
    overlapped,
    read_streams,
    run_script,
    separate,
)
from rhc.wire.keys import Keys
from rhc.wire.protocol import (
    GROUP,
    JOB_SIGNED,
    RESULT_FIELD,
    RESULTS,
    ResultMessage,
    TaskEntry,
    merged_member,
)
from rhc.wire.scripts import ACK_AND_STORE, REQUEUE
from rhc.wire.serialization import seal

log = logging.getLogger(__name__)
T = TypeVar("T")

_DROPPED = 2
"""What ACK_AND_STORE returns when a batch it would store was marked as run already."""


class TaskStore:
    """The task streams one worker reads (its own first, then its class's shared stream).

    ``reconnect`` bounds how long each call waits for a lost Redis; the supervisor shortens it
    when it stops.
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        compat: str,
        name: str,
        secret: bytes,
        reconnect: Reconnector,
        read_reconnect: Reconnector,
    ) -> None:
        self._client = client
        self._keys = keys
        self._name = name
        self._secret = secret
        self.shared = keys.task_stream(compat)
        self.own = keys.worker_stream(name)
        self.reconnect = reconnect
        self._read_reconnect = read_reconnect
        # Reads on connections of their own, which close_reads() can close under a blocked read.
        self._reader = separate(client)
        self._reading = True
        self._seen = {self.own: b"0", self.shared: b"0"}
        """The last entry id read from each stream: what a lost read took lies beyond it."""
        self._ack_and_store = client.register_script(ACK_AND_STORE)
        self._requeue = client.register_script(REQUEUE)

    def ensure_groups(self) -> None:
        for stream in (self.shared, self.own):
            try:
                self._client.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def load_results_script(self) -> None:
        """Have Redis compile the results script before the first result: otherwise that result
        finds it missing, loads it and tries again (a millisecond on a fresh worker's first
        result, the last chunk of a first analysis)."""
        self._client.script_load(ACK_AND_STORE)

    def read(self, block: float, check: Callable[[TaskEntry], T]) -> list[tuple[TaskEntry, T]]:
        """Wait up to `block` seconds for the next entry of each stream; routed ones first, each
        with check(entry), called while Redis looks up whether its batch ran already (the
        verification of a signature then adds nothing to a task's way: see _not_run).

        A read whose connection broke may have been given entries that never arrived: Redis
        counts them as this worker's, and no one else would ever run them. So the read after a
        lost connection asks for this worker's pending entries beyond the last ones it saw."""

        def read(streams: dict[str, bytes | str], wait: int | None) -> list:
            try:
                return self._unless_closed(
                    lambda: read_streams(
                        self._reader, streams, count=1, block=wait, group=(GROUP, self._name)
                    ),
                    [],
                )
            except redis.ResponseError as exc:
                # NOGROUP: Redis restarted without its data. UNBLOCKED: this worker was taken
                # for dead (its heartbeat late) and swept while it waited on its own stream.
                if "NOGROUP" not in str(exc) and "UNBLOCKED" not in str(exc):
                    raise
                self.ensure_groups()
                return []

        fresh = {self.own: ">", self.shared: ">"}
        reply = self._read_reconnect.call(
            once(lambda: read(fresh, int(block * 1000)), then=lambda: read(dict(self._seen), None)),
            doing="reading tasks",
        )
        entries = []
        for stream, items in reply or []:
            for entry_id, fields in items:
                self._seen[stream.decode()] = entry_id
                if fields:  # none: removed from its stream since (re-queued by a sweeper)
                    entries.append(TaskEntry.parse(stream.decode(), entry_id, fields))
        entries.sort(key=lambda entry: entry.stream != self.own)
        return self._not_run(entries, check) if entries else []

    def _not_run(
        self, entries: list[TaskEntry], check: Callable[[TaskEntry], T]
    ) -> list[tuple[TaskEntry, T]]:
        """The entries whose batch no worker ran yet, checked; the others (a replay of a
        finished batch) are removed unrun. The entry's job and batch fields are checked against
        its signed header before it runs, so a replay cannot hide behind other ones; and the
        marks can only be added, never changed or removed, by a worker's Redis user."""
        commands = [("HGET", self._keys.ran(entry.job), str(entry.batch)) for entry in entries]

        def marks() -> tuple[list[T], list]:
            return overlapped(self._reader, commands, lambda: [check(e) for e in entries])

        # closed meanwhile (the worker stops): they are handed back unrun
        found = self._read_reconnect.call(
            lambda: self._unless_closed(marks, None), doing="reading tasks"
        )
        checked, marked = found or ([check(entry) for entry in entries], [None] * len(entries))
        fresh, replayed = [], []
        for entry, verdict, mark in zip(entries, checked, marked, strict=True):
            if mark is None:
                fresh.append((entry, verdict))
            else:
                replayed.append(entry)
        for entry in replayed:
            log.error(
                "removed task entry %s in %s unrun: batch %d of job %s already ran (a replayed "
                "entry)",
                entry.entry_id.decode(),
                entry.stream,
                entry.batch,
                entry.job,
            )
        if replayed:
            self.discard(replayed)
        return fresh

    def close_reads(self) -> None:
        """Stop reading for good (the worker stops): a read blocked now returns at once, empty.
        What Redis delivered to it before is in this worker's pending entries, for leave()."""
        self._reading = False
        self._reader.connection_pool.disconnect()

    def _unless_closed(self, operation: Callable[[], T], closed: T) -> T:
        """operation(), or `closed` once close_reads() was called, also in its midst."""
        if not self._reading:
            return closed
        try:
            return operation()
        except RETRYABLE:
            if self._reading:
                raise
            return closed

    def store(
        self,
        entries: list[TaskEntry],
        message: ResultMessage,
        body: bytes | None,
        ttl: float,
        ran: Ran,
    ) -> None:
        """Store a result and acknowledge the entries it covers, in one step (ACK_AND_STORE),
        which also counts them: `ran` says how long they ran and how many ran again."""
        sealed = seal(self._secret, message.header(), body or b"")
        keys = [
            self._keys.results(message.job),
            self._keys.job(message.job),
            self._keys.ran(message.job),
            self.shared,
            self._keys.counters,
            self._keys.spans(message.job),
            *(entry.stream for entry in entries),
        ]
        tasks = message.task_count
        span = _span(message) if message.kind == RESULTS else None
        args = [
            GROUP,
            int(ttl * 1000),
            sealed,
            tasks,
            self._name,
            len(message.failures),
            ran.retried,
            runtime_bucket(ran.seconds / max(tasks, 1)),
            repr(ran.seconds),
            "" if span is None else f"{span.started!r} {span.finished!r} {span.tasks}",
            json.dumps(ran.counts) if ran.counts else "",
            len(message.batches),
            *message.batches,
            *(entry.entry_id for entry in entries),
        ]
        stored = self.reconnect.call(
            lambda: run_script(self._client, self._ack_and_store, keys, args),
            doing="storing results",
        )
        if stored == _DROPPED:
            log.warning(
                "results of job %s batches %s were dropped: a copy of one of them ran elsewhere",
                message.job,
                list(message.batches),
            )
        elif not stored:
            log.warning(
                "results of job %s batches %s were dropped: their tasks had been "
                "re-queued while this worker was presumed dead",
                message.job,
                list(message.batches),
            )
        elif message.failures:
            self._record_failures(message)

    def _record_failures(self, message: ResultMessage) -> None:
        """Keep the latest failures where people look (the dashboard): display only."""
        notices = [
            FailureNotice(
                job=message.job,
                task=str(failure.task),
                worker=self._name,
                kind=failure.kind,
                error=failure.error_type,
                message=failure.message[:TEXT_KEPT],
                traceback=failure.traceback[-TEXT_KEPT:],
                argument=failure.argument,
                time=message.finished,
            )
            for failure in message.failures[:FAILURES_KEPT]
        ]

        def record() -> None:
            with self._client.pipeline(transaction=False) as pipe:
                for notice in notices:
                    notice.append_to(pipe, self._keys.failures, FAILURES_KEPT)
                pipe.execute()

        self.reconnect.call(record, doing="recording failures")

    def record_departure(self, departure: Departure) -> None:
        """Keep a note of why the task process died (the worker lives on), for people."""
        key = self._keys.departures

        def record() -> None:
            with self._client.pipeline(transaction=False) as pipe:
                departure.append_to(pipe, key, DEPARTURES_KEPT)
                pipe.execute()

        self.reconnect.call(record, doing="recording a lost task process")

    def publish(self, entry: TaskEntry, message: ResultMessage, ttl: float) -> None:
        """Report progress that acknowledges nothing (a merged job's batch ran), and mark the
        entry merged: should this worker die, it is not the one to blame."""
        sealed = seal(self._secret, message.header())
        results, merged = self._keys.results(message.job), self._keys.merged(self._name)
        spans = self._keys.spans(message.job)

        def publish() -> None:
            with self._client.pipeline(transaction=False) as pipe:
                pipe.xadd(results, {RESULT_FIELD: sealed})
                pipe.pexpire(results, int(ttl * 1000))
                _span(message).append_to(pipe, spans, SPANS_KEPT)
                pipe.pexpire(spans, int(ttl * 1000))
                pipe.sadd(merged, merged_member(entry.stream, entry.entry_id))
                execute(pipe)  # every merged batch comes here: no redis-py reply handling

        self.reconnect.call(publish, doing="reporting progress")

    def requeue(self, entries: list[TaskEntry], *, delivery_failed: bool = False) -> None:
        """Hand entries back to the shared stream for any worker to take."""
        by_stream: dict[str, list[bytes]] = defaultdict(list)
        for entry in entries:
            by_stream[entry.stream].append(entry.entry_id)
        for stream, ids in by_stream.items():
            self.reconnect.call(
                lambda stream=stream, ids=ids: self._requeue(
                    keys=[stream, self.shared], args=[GROUP, int(delivery_failed), *ids]
                ),
                doing="handing back tasks",
            )

    def forget_merged(self, entries: list[TaskEntry]) -> None:
        """Unmark entries whose partial result was stored (or that were handed back)."""
        members = [merged_member(entry.stream, entry.entry_id) for entry in entries]
        if members:
            key = self._keys.merged(self._name)
            self.reconnect.call(lambda: self._client.srem(key, *members), doing="storing results")

    def discard(self, entries: list[TaskEntry]) -> None:
        """Acknowledge and delete entries that must not run (their job was cancelled, or they are
        forged or replayed)."""

        def discard() -> None:
            with self._client.pipeline(transaction=True) as pipe:
                for entry in entries:
                    pipe.xack(entry.stream, GROUP, entry.entry_id)
                    pipe.xdel(entry.stream, entry.entry_id)
                pipe.execute()

        self.reconnect.call(discard, doing="removing task entries")

    def reject(self, entry: TaskEntry, reason: str) -> None:
        """Remove an entry that failed verification, unrun. Nobody is told: a forged entry
        names whatever job it likes, and a notice would let it stop that job. (A notebook whose
        key the workers do not trust learns it from their registry, before it sends.)"""
        log.error(
            "rejected task entry %s in %s (claims job %r) without unpickling it: %s",
            entry.entry_id.decode(),
            entry.stream,
            entry.job,
            reason,
        )
        self.discard([entry])

    def function(self, digest: str) -> bytes | None:
        """A job's sealed function, or None if Redis no longer has it."""
        key = self._keys.function(digest)
        return self.reconnect.call(lambda: self._client.get(key), doing="fetching a function")

    def job_status(self, job: str) -> bytes | None:
        """The job's signed JobStatus, unverified, or None."""
        key = self._keys.job(job)
        return self.reconnect.call(
            lambda: self._client.hget(key, JOB_SIGNED), doing="checking a job"
        )


@dataclass(frozen=True)
class Ran:
    """What a stored result's tasks cost: seconds they ran together, how many of them ran
    again because the worker running them before was lost, and what they counted."""

    seconds: float
    retried: int = 0
    counts: dict[str, float] = field(default_factory=dict)

    def __add__(self, other: Ran) -> Ran:
        counts = dict(self.counts)
        for name, amount in other.counts.items():
            counts[name] = counts.get(name, 0) + amount
        return Ran(self.seconds + other.seconds, self.retried + other.retried, counts)


def _span(message: ResultMessage) -> Span:
    """Where and when a batch ran, for its job's timeline."""
    first, count = message.spans[0]
    return Span(message.worker, message.started, message.finished, f"{first}-{first + count - 1}")
