# SPDX-License-Identifier: BSD-3-Clause
"""The heartbeat thread: keeps a worker visibly alive, relays control notices, sweeps the dead.

It runs beside the supervisor's main loop so that a worker stays alive to others however long
its current task takes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable

import redis

from rhc.wire.activity import STARTED
from rhc.wire.connection import RETRYABLE
from rhc.wire.keys import Keys
from rhc.wire.protocol import WorkerInfo
from rhc.worker.reaper import Reaper

log = logging.getLogger(__name__)

SWEEPS_PER_INTERVAL = 2
"""How often in an interval a pool sweeps for the dead (its sweeper holds the lock, and
reclaims dead workers, that long): twice, so that a dead worker is gone within its TTL and one
interval, the sweep included, unless more died at once than a sweep has time to reclaim (the
rest go at the next sweeps)."""

ROUND_TRIPS_KEPT = 8
"""Beats whose round trip the published one is the least of: a busy moment does not count."""


class Heartbeat(threading.Thread):
    """Publishes WorkerInfo and refreshes the alive key every interval, and when asked."""

    def __init__(
        self,
        *,
        client: redis.Redis,
        keys: Keys,
        name: str,
        interval: float,
        ttl: float,
        reaper: Reaper,
        describe: Callable[[], WorkerInfo],
        on_control: Callable[[bytes], None],
    ) -> None:
        super().__init__(name="rhc-heartbeat", daemon=True)
        self._client = client
        self._keys = keys
        self._name = name
        self._interval = interval
        self._ttl = ttl
        self._reaper = reaper
        self._describe = describe
        self._on_control = on_control
        self._stopped = threading.Event()
        self._usage = _Usage()
        self._counted = 0
        self._round_trips: deque[float] = deque(maxlen=ROUND_TRIPS_KEPT)
        self._beating = threading.Lock()
        self._sweep_seconds = interval / SWEEPS_PER_INTERVAL

    def beat(self) -> None:
        """Announce the worker now: called once before it reads any task, and once the worker
        has been idle a while (from the supervisor's thread)."""
        self._announce(claim_sweep=False)

    def beat_and_sweep(self) -> int:
        """Announce the worker, claiming the pool's sweep lock in the same round trip (held for
        a part of an interval: one sweeper at a time); if this worker won it, re-queue what
        dead workers held. Returns how many task batches moved."""
        lock_expires = time.monotonic() + self._sweep_seconds  # at the latest
        if not self._announce(claim_sweep=True):
            return 0
        return self._reaper.sweep(self._name, until=lock_expires)

    def beat_now(self) -> None:
        """Publish the worker's state and counts at once, not at the next interval (a job's
        last batch just ended); if Redis refuses, the next interval's beat publishes them."""
        try:
            self.beat()
        except redis.RedisError as exc:
            log.debug("early heartbeat failed: %s", exc)

    def _announce(self, *, claim_sweep: bool) -> bool:
        """Publish WorkerInfo and refresh the alive key; True if the sweep lock was claimed and
        won."""
        with self._beating:  # one at a time: the usage and counts it keeps are between beats
            info = self._describe()
            info.heartbeat = time.time()
            self._usage.update(info)
            info.round_trip = min(self._round_trips, default=0.0)
            with self._client.pipeline(transaction=True) as pipe:
                pipe.set(self._keys.alive(self._name), info.heartbeat, px=int(self._ttl * 1000))
                pipe.hset(self._keys.workers, self._name, info.encode())
                if info.taken > self._counted:  # the tasks it took since: counted here, for free
                    pipe.hincrby(self._keys.counters, STARTED, info.taken - self._counted)
                if claim_sweep:
                    self._reaper.claim(pipe, self._name, self._sweep_seconds)
                started = time.perf_counter()
                replies = pipe.execute()
            self._round_trips.append(time.perf_counter() - started)
            self._counted = info.taken
            return claim_sweep and bool(replies[-1])

    def stop(self) -> None:
        self._stopped.set()

    def run(self) -> None:
        pubsub = None
        full = False
        while not self._stopped.is_set():
            started = time.monotonic()
            try:
                if pubsub is None:
                    pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(self._keys.control)
                self.beat_and_sweep()
                if full:
                    log.info("Redis has room again: heartbeats resumed")
                    full = False
                self._listen(pubsub, started + self._interval)
            except redis.OutOfMemoryError:
                if not full:  # once per spell: it may last long, and every beat would log it
                    log.error(
                        "Redis is full (maxmemory reached) and refuses heartbeats: this worker "
                        "waits for room; raise Redis's maxmemory or free memory in it"
                    )
                full = True
                self._stopped.wait(self._interval)
                continue
            except RETRYABLE as exc:
                log.warning("heartbeat could not reach Redis: %s", exc)
                if pubsub is not None:
                    pubsub.close()
                    pubsub = None
                self._stopped.wait(self._interval)
            except Exception:  # a bug here must not silently stop the heartbeat
                log.exception("heartbeat step failed")
                self._stopped.wait(self._interval)
        if pubsub is not None:
            pubsub.close()

    def _listen(self, pubsub: redis.client.PubSub, until: float) -> None:
        while not self._stopped.is_set():
            remaining = until - time.monotonic()
            if remaining <= 0:
                return
            message = pubsub.get_message(timeout=min(remaining, 0.5))
            if message and message.get("type") == "message":
                self._on_control(message["data"])


class _Usage:
    """CPU and memory of the worker's processes, from /proc (zero where there is none)."""

    def __init__(self) -> None:
        self._last: tuple[float, float, int] | None = None
        self._ticks = os.sysconf("SC_CLK_TCK")
        self._page = os.sysconf("SC_PAGE_SIZE")

    def update(self, info: WorkerInfo) -> None:
        pids = [info.pid] + [int(pid) for pid in info.extra.get("task_pid", "").split() if pid]
        cpu, rss = 0.0, 0
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            cpu += (int(fields[11]) + int(fields[12])) / self._ticks
            rss += int(fields[21]) * self._page
        now = time.monotonic()
        if self._last is not None:
            elapsed = now - self._last[0]
            if elapsed > 0:
                info.cpu_percent = round(100 * (cpu - self._last[1]) / elapsed, 1)
                info.tasks_per_second = round((info.done - self._last[2]) / elapsed, 1)
        info.rss_mb = round(rss / 2**20, 1)
        self._last = (now, cpu, info.done)
