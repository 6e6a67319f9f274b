# SPDX-License-Identifier: BSD-3-Clause
"""Finding dead workers by their expired heartbeats, re-queueing the tasks they held, and the
one sequence by which any worker leaves, dead or alive.

Reclaim goes by heartbeat, never by idle time: a chunk may run for minutes, and XAUTOCLAIM on
idle time would steal it from a live worker.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from collections import defaultdict
from typing import NamedTuple

import redis

from rhc.wire.activity import DEPARTURES_KEPT, Departure
from rhc.wire.keys import Keys
from rhc.wire.protocol import GROUP, WorkerInfo, merged_member
from rhc.wire.scripts import DRAIN, FORGET_CONSUMER, FORGET_WORKER, REQUEUE

log = logging.getLogger(__name__)

_PAGE = 500


class Reaper:
    """Sweeps a namespace for dead workers; one sweeper at a time, the one whose claim() of a
    short lock won."""

    def __init__(self, client: redis.Redis, keys: Keys, compat: str) -> None:
        self._client = client
        self._keys = keys
        self._compat = compat
        self._requeue = client.register_script(REQUEUE)
        self._drain = client.register_script(DRAIN)
        self._forget = client.register_script(FORGET_WORKER)
        self._forget_consumer = client.register_script(FORGET_CONSUMER)
        self._warned_acl = False

    def claim(self, pipe: redis.client.Pipeline, me: str, lock_seconds: float) -> None:
        """Queue, in a pipeline of `me`'s, the claim of the sweep lock for lock_seconds: its
        reply is true if `me` is to sweep now."""
        pipe.set(self._keys.reaper_lock, me, nx=True, px=int(lock_seconds * 1000))

    def sweep(self, me: str, *, until: float) -> int:
        """Re-queue what dead workers held (`me` won the sweep lock), one after another while
        the next reclaim, as long as the last, ends before time.monotonic() reaches `until`
        (the lock's expiry): the rest wait for the next sweep. So after a whole rack died (a few
        round trips each, seconds over a WAN) a sweep neither outlives its lock nor holds up
        the sweeper's own heartbeat for long; each sweep reclaims one at least. Returns how many
        task batches moved. Only the names are read to find the dead (a pool of thousands says
        much more of itself)."""
        names = sorted(self._suspects() - {me})
        if not names:
            return 0
        dead = [name for name, alive in zip(names, self._alive(names), strict=True) if not alive]
        if not dead:
            return 0
        said = self._client.hmget(self._keys.workers, dead)
        moved, started = 0, time.monotonic()
        for name, raw in zip(dead, said, strict=True):
            try:
                moved += self.reclaim(name, *self._last_word(raw))
            except redis.ResponseError as exc:  # the others are not held up behind this one
                log.error("could not reclaim dead worker %s: %s", name, exc)
            now = time.monotonic()
            if now + (now - started) > until:  # the next, as long, would outlive the lock
                break
            started = now
        return moved

    def _alive(self, names: list[str]) -> list[bool]:
        """Whether each worker's heartbeat is current: one MGET, or one EXISTS each where the
        worker user's ACL predates MGET."""
        keys = [self._keys.alive(name) for name in names]
        try:
            return [beat is not None for beat in self._client.mget(keys)]
        except redis.exceptions.NoPermissionError:
            if not self._warned_acl:
                log.warning(
                    "this worker's Redis user may not MGET (its ACL was written by an older "
                    "rhc): sweeps send one EXISTS per worker instead; an operator updates the "
                    "users with `rhc redis namespace %s DIRECTORY --admin-config admin.toml`",
                    self._keys.namespace,
                )
                self._warned_acl = True
        with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.exists(key)
            return [bool(found) for found in pipe.execute()]

    def _suspects(self) -> set[str]:
        """Every registered worker and every consumer of our shared stream, in one round trip."""
        with self._client.pipeline(transaction=False) as pipe:
            pipe.hkeys(self._keys.workers)
            pipe.xinfo_consumers(self._keys.task_stream(self._compat), GROUP)
            registered, consumers = pipe.execute(raise_on_error=False)
        if isinstance(registered, Exception):
            raise registered
        if isinstance(consumers, redis.ResponseError):  # no stream or group yet: none read
            consumers = []
        elif isinstance(consumers, Exception):
            raise consumers
        suspects = {name.decode() for name in registered}
        for consumer in consumers:
            name = consumer["name"]
            suspects.add(name.decode() if isinstance(name, bytes) else name)
        return suspects

    def _last_word(self, raw: bytes | None) -> tuple[str, WorkerInfo | None]:
        """A dead worker's class and what it last said of itself, if it was registered."""
        if raw is None:
            return self._compat, None
        try:
            info = WorkerInfo.decode(raw)
        except (ValueError, TypeError):
            return self._compat, None
        return info.compat, info

    def reclaim(self, name: str, compat: str, info: WorkerInfo | None = None) -> int:
        """Re-queue the task batches dead worker `name` held or had routed to it; only the one
        it was running counts as a redelivery. `info`: what it last said of itself, if it was
        registered, for the record of its departure."""
        pending = self.held(name, compat)
        merged = {member.decode() for member in self._client.smembers(self._keys.merged(name))}
        unfinished = [e for e in pending if merged_member(e.stream, e.entry_id) not in merged]
        running = max(unfinished, key=lambda entry: entry.idle_ms, default=None)
        departure = None if info is None else _heartbeat_lost(info)
        moved = self._remove(name, compat, pending, charged=running, departure=departure)
        if moved:
            log.warning(
                "worker %s stopped sending heartbeats: re-queued %d task batch(es) it held",
                name,
                moved,
            )
        return moved

    def leave(self, name: str, departure: Departure) -> int:
        """Remove a worker that stops on its own: whatever it still holds goes back uncharged."""
        pending = self.held(name, self._compat)
        return self._remove(name, self._compat, pending, charged=None, departure=departure)

    def held(self, name: str, compat: str) -> list[Pending]:
        """What worker `name` holds: in its class's shared stream and in its own."""
        return [
            *pending_entries(self._client, self._keys.task_stream(compat), name),
            *pending_entries(self._client, self._keys.worker_stream(name), name),
        ]

    def _remove(
        self,
        name: str,
        compat: str,
        pending: list[Pending],
        charged: Pending | None,
        departure: Departure | None,
    ) -> int:
        """How a worker leaves, dead or alive: what it held and what was routed to it goes to
        the shared stream (`charged` counted as a redelivery), then every trace of it goes but
        the record of its `departure`, added only by the call that removed its registration:
        one however many sweepers reclaimed it, and none for a worker stopping after it was
        swept (its "heartbeat lost" stays). Its consumer stays while it holds entries it read
        after `pending` was listed (FORGET_CONSUMER). Returns how many task batches moved."""
        shared = self._keys.task_stream(compat)
        own = self._keys.worker_stream(name)
        batches: dict[tuple[str, bool], list[bytes]] = defaultdict(list)
        for entry in pending:
            batches[entry.stream, entry == charged].append(entry.entry_id)
        moved = sum(
            self._requeue(keys=[stream, shared], args=[GROUP, int(is_charged), *ids])
            for (stream, is_charged), ids in batches.items()
        )
        moved += self._drain(keys=[own, shared])
        with contextlib.suppress(redis.ResponseError):  # it never read the shared stream
            self._forget_consumer(keys=[shared], args=[GROUP, name])
        record = departure.to_fields() if departure is not None else {}
        self._forget(
            keys=[
                self._keys.merged(name),
                self._keys.alive(name),
                self._keys.workers,
                self._keys.departures,
            ],
            args=[name, DEPARTURES_KEPT, *itertools.chain.from_iterable(record.items())],
        )
        return moved


def _heartbeat_lost(info: WorkerInfo) -> Departure:
    return Departure(
        worker=info.name,
        host=info.host,
        condor_id=info.condor_id or "",
        reason=f"heartbeat lost (last heard {time.time() - info.heartbeat:.0f} s ago)",
        last_error=info.last_error,
        left="1",
        time=time.time(),
    )


class Pending(NamedTuple):
    """A task entry a worker has read and not acknowledged."""

    stream: str
    entry_id: bytes
    idle_ms: int
    """Milliseconds since it was delivered: the entry a worker was running is its oldest."""


def pending_entries(client: redis.Redis, stream: str, consumer: str) -> list[Pending]:
    """Every entry `consumer` holds in `stream`, page by page; none if there is no stream."""
    found: list[Pending] = []
    start: str | bytes = "-"
    while True:
        try:
            page = client.xpending_range(
                stream, GROUP, min=start, max="+", count=_PAGE, consumername=consumer
            )
        except redis.ResponseError:  # no such stream or group
            return found
        found += [
            Pending(stream, item["message_id"], item["time_since_delivered"]) for item in page
        ]
        if len(page) < _PAGE:
            return found
        start = b"(" + page[-1]["message_id"]
