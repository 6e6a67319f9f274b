# SPDX-License-Identifier: BSD-3-Clause
"""One look at the cluster: what the dashboard and /metrics show, read from Redis in a few
pipelined round trips whose size depends on the workers and jobs there are, never on the
tasks (no KEYS, no SCAN, no walk over task entries).

Everything here is read with the monitor role and only displayed: nothing is unpickled, and
the job fields shown are the plain ones (a worker's Redis user could falsify them; the
notebook trusts only the signed ones).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import redis

from rhc.wire.activity import (
    COUNTED,
    JOB_FAILED,
    JOB_RETRIED,
    SUCCEEDED,
    Departure,
    FailureNotice,
    bucket_bound,
    succeeded_from,
)
from rhc.wire.keys import Keys
from rhc.wire.protocol import GROUP, RUNNING, JobRecord, WorkerInfo

T = TypeVar("T")

SHOWN = 50
"""How many departures, failures and recent jobs a snapshot reads per namespace."""

IDLE, BUSY, LOST, LEAVING = "idle", "busy", "lost heartbeat", "leaving"
"""The states the dashboard sorts workers into."""


@dataclass(frozen=True)
class Queue:
    """One task stream: batches waiting for a worker, taken and unfinished, and how long the
    oldest waiting one has waited."""

    stream: str
    waiting: int
    pending: int
    oldest_age: float | None


@dataclass(frozen=True)
class JobView:
    """A job as people watch it: its record, its failure and retry counts, and when its
    sender last showed it was alive (None once it ended)."""

    id: str
    record: JobRecord
    failed: int
    retried: int
    active: float | None
    counts: dict[str, float] = field(default_factory=dict)
    """What its tasks counted (rhc.get_worker().count), e.g. events, bytes_read."""


@dataclass
class NamespaceView:
    """What one namespace holds."""

    name: str
    workers: list[WorkerInfo] = field(default_factory=list)
    counters: dict[str, float] = field(default_factory=dict)
    queues: list[Queue] = field(default_factory=list)
    routed_waiting: int = 0
    jobs: list[JobView] = field(default_factory=list)
    departures: list[Departure] = field(default_factory=list)
    failures: list[FailureNotice] = field(default_factory=list)

    def runtime_buckets(self) -> list[tuple[float, float]]:
        """The task runtime histogram as (upper bound, count) pairs, not cumulative, sorted."""
        buckets = [
            (bound, value)
            for name, value in self.counters.items()
            if (bound := bucket_bound(name)) is not None
        ]
        return sorted(buckets)


@dataclass
class Snapshot:
    """The whole picture at one moment; `error` says why Redis could not be read."""

    taken: float
    redis_up: bool
    error: str = ""
    redis_memory: int = 0
    redis_max_memory: int = 0
    round_trip: float = 0.0
    namespaces: list[NamespaceView] = field(default_factory=list)
    commands: int = 0
    """How many Redis commands reading it took: bounded by workers and jobs, not tasks."""


LATE_BEATS = 3
"""How many heartbeat intervals a worker's last beat may be old before it shows as lost: well
before its TTL runs out and a live worker sweeps it (it then shows among the departures)."""


def worker_state(info: WorkerInfo, now: float, heartbeat_interval: float) -> str:
    """Idle, busy, leaving, or lost: registered, but LATE_BEATS heartbeats overdue."""
    if now - info.heartbeat > LATE_BEATS * heartbeat_interval:
        return LOST
    if info.state == "stopping":
        return LEAVING
    return BUSY if info.state == "busy" else IDLE


class SnapshotReader:
    """Reads snapshots of some namespaces."""

    def __init__(self, client: redis.Redis, namespaces: list[str]) -> None:
        self._client = client
        self._keys = [Keys(namespace) for namespace in namespaces]

    def read(self) -> Snapshot:
        """A snapshot.

        Raises:
          redis.RedisError: Redis went away (the caller shows that, and tries again later).
        """
        counter = _Counter(self._client)
        started = time.perf_counter()
        counter.call(lambda c: c.ping())
        round_trip = time.perf_counter() - started
        memory = counter.call(lambda c: c.info("memory"))
        views = [self._namespace(keys, counter) for keys in self._keys]
        return Snapshot(
            taken=time.time(),
            redis_up=True,
            redis_memory=int(memory.get("used_memory", 0)),
            redis_max_memory=int(memory.get("maxmemory", 0)),
            round_trip=round_trip,
            namespaces=views,
            commands=counter.commands,
        )

    def _namespace(self, keys: Keys, counter: _Counter) -> NamespaceView:
        workers, counters, running, recent, departures, failures = counter.pipeline(
            lambda pipe: (
                pipe.hgetall(keys.workers),
                pipe.hgetall(keys.counters),
                pipe.zrange(keys.jobs, 0, -1, withscores=True),
                pipe.zrevrange(keys.recent_jobs, 0, SHOWN - 1),
                pipe.xrevrange(keys.departures, count=SHOWN),
                pipe.xrevrange(keys.failures, count=SHOWN),
            )
        )
        view = NamespaceView(
            name=keys.namespace,
            workers=_workers(workers),
            counters=_counters(counters),
            departures=[Departure.from_fields(fields) for _, fields in departures],
            failures=[FailureNotice.from_fields(fields) for _, fields in failures],
        )
        active = {job.decode(): score for job, score in running}
        job_ids = list(dict.fromkeys([*active, *(job.decode() for job in recent)]))
        compats = sorted({info.compat for info in view.workers})
        replies = counter.pipeline(
            lambda pipe: (
                [pipe.hgetall(keys.job(job_id)) for job_id in job_ids],
                [pipe.xlen(keys.worker_stream(info.name)) for info in view.workers],
                _read_streams(pipe, keys, compats),
            ),
            raise_on_error=False,
        )
        job_hashes, routed, lengths, groups = _split(
            replies, len(job_ids), len(view.workers), len(compats)
        )
        for job_id, raw in zip(job_ids, job_hashes, strict=True):
            job = _job(job_id, raw, active.get(job_id)) if isinstance(raw, dict) else None
            if job is not None:  # else expired
                view.jobs.append(job)
        view.jobs.sort(key=lambda job: job.record.created, reverse=True)
        view.routed_waiting = sum(n for n in routed if isinstance(n, int))
        # A running job's stream that no live worker reads: its batches wait all the same (no
        # worker started yet, or none of its Python), and that backlog is what to show.
        running = {job.record.compat for job in view.jobs if job.active is not None}
        unread = sorted(running - set(compats))
        if unread:
            more = counter.pipeline(
                lambda pipe: _read_streams(pipe, keys, unread), raise_on_error=False
            )
            more_lengths, more_groups = _split(more, len(unread))
            compats, lengths, groups = (
                compats + unread,
                lengths + more_lengths,
                groups + more_groups,
            )
        view.queues = self._queues(keys, compats, lengths, groups, counter)
        return view

    def _queues(
        self, keys: Keys, compats: list[str], lengths: list, groups: list, counter: _Counter
    ) -> list[Queue]:
        """Each shared task stream's depth; the age of its oldest waiting batch is the time in
        the id of the first entry after the last one delivered."""
        found = []
        for compat, length, info in zip(compats, lengths, groups, strict=True):
            listed = info if isinstance(info, list) else []  # an error: no stream yet
            group = next((g for g in listed if g["name"] == GROUP.encode()), None)
            pending = int(group["pending"]) if group else 0
            last = group["last-delivered-id"].decode() if group else "0-0"
            length = length if isinstance(length, int) else 0
            found.append((keys.task_stream(compat), length - pending, pending, last))
        oldest = counter.pipeline(
            lambda pipe: [
                pipe.xrange(stream, min=f"({last}", count=1)
                for stream, waiting, _, last in found
                if waiting > 0
            ]
        )
        ages = iter(oldest)
        now_ms = time.time() * 1000
        queues = []
        for stream, waiting, pending, _ in found:
            age = None
            if waiting > 0 and (first := next(ages)):
                age = max(0.0, (now_ms - int(first[0][0].split(b"-")[0])) / 1000)
            queues.append(Queue(stream.removeprefix(keys.prefix), waiting, pending, age))
        return queues


class _Counter:
    """Sends commands and pipelines, counting the commands (the cost of a snapshot)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self.commands = 0

    def call(self, command: Callable[[redis.Redis], T]) -> T:
        self.commands += 1
        return command(self._client)

    def pipeline(
        self, queue: Callable[[redis.client.Pipeline], object], *, raise_on_error: bool = True
    ) -> list:
        with self._client.pipeline(transaction=False) as pipe:
            queue(pipe)
            self.commands += len(pipe.command_stack)
            return pipe.execute(raise_on_error=raise_on_error)


def _read_streams(pipe: redis.client.Pipeline, keys: Keys, compats: list[str]) -> None:
    """Queue each shared task stream's length, then its consumer groups."""
    for compat in compats:
        pipe.xlen(keys.task_stream(compat))
    for compat in compats:
        pipe.xinfo_groups(keys.task_stream(compat))


def _split(replies: list, *sizes: int) -> list[list]:
    parts, start = [], 0
    for size in sizes:
        parts.append(replies[start : start + size])
        start += size
    parts.append(replies[start:])
    return parts


def _workers(raw: dict[bytes, bytes]) -> list[WorkerInfo]:
    infos = []
    for value in raw.values():
        try:
            infos.append(WorkerInfo.decode(value))
        except (ValueError, TypeError):
            continue  # not one rhc wrote: nothing to show
    return sorted(infos, key=lambda info: info.name)


def _job(job_id: str, raw: dict[bytes, bytes], active: float | None) -> JobView | None:
    """The job's view, or None if its hash is not (or no longer) a whole record."""
    try:
        record = JobRecord.from_fields(raw)
    except (KeyError, ValueError):
        return None
    return JobView(
        id=job_id,
        record=record,
        failed=int(raw.get(JOB_FAILED.encode(), 0)),
        retried=int(raw.get(JOB_RETRIED.encode(), 0)),
        active=active if record.state == RUNNING else None,
        counts={
            key.decode().removeprefix(COUNTED): float(value)
            for key, value in raw.items()
            if key.startswith(COUNTED.encode())
        },
    )


def _counters(raw: dict[bytes, bytes]) -> dict[str, float]:
    counters = {key.decode(): float(value) for key, value in raw.items()}
    counters[SUCCEEDED] = succeeded_from(counters)
    return counters
