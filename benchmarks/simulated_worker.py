"""A worker that speaks the real protocol with a trivial executor, for the swarm benchmark.

Each SimulatedWorker reads, verifies, acknowledges and stores through the worker's own parts
(TaskStore, Fetcher, Trust, Tally, Heartbeat, Reaper), so its batches, beats and sweeps send
the Redis commands a real worker's do. Left out with the task process: a batch "runs" for
`task_seconds` per task without using the CPU, and its values are its arguments; so no function
is fetched (a real worker GETs it once per job), nothing is merged, and it prefetches from its
first batch on. Also left out: the control channel (a Pub/Sub connection per worker). So
hundreds of workers fit in one process, and what the benchmark measures is what they cost
Redis and the notebook, which a real pool pays the same.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import redis

from rhc.config import Settings
from rhc.errors import RhcError
from rhc.wire.connection import Reconnector
from rhc.wire.keys import Keys
from rhc.wire.protocol import RESULTS, TaskBatch, TaskEntry, WorkerInfo, compat_tag, versions
from rhc.wire.serialization import dumps, loads
from rhc.worker.execution import PREFETCH_HORIZON, Outcome
from rhc.worker.fetcher import Fetcher
from rhc.worker.heartbeat import Heartbeat
from rhc.worker.reaper import Reaper
from rhc.worker.store import TaskStore
from rhc.worker.tally import STOPPED, Tally
from rhc.worker.trust import Trust

RECONNECT_SECONDS = 30.0
"""How long a simulated worker waits for a lost Redis before it gives up."""


class SimulatedWorker:
    """One worker's Redis side, with batches that take `task_seconds` per task and return
    their arguments."""

    def __init__(
        self, settings: Settings, client: redis.Redis, name: str, task_seconds: float
    ) -> None:
        self.name = name
        self._settings = settings
        self._task_seconds = task_seconds
        self._versions = versions()
        self._compat = compat_tag(self._versions)
        keys = Keys(settings.namespace)
        self._store = TaskStore(
            client,
            keys,
            compat=self._compat,
            name=name,
            secret=settings.secret,
            reconnect=Reconnector(settings, RECONNECT_SECONDS),
            read_reconnect=Reconnector(settings, RECONNECT_SECONDS),
        )
        self.reaper = Reaper(client, keys, self._compat)
        self._trust = Trust(settings)
        self._tally = Tally(name, socket.gethostname(), None)
        self.heartbeat = Heartbeat(
            client=client,
            keys=keys,
            name=name,
            interval=settings.heartbeat_interval,
            ttl=settings.heartbeat_ttl,
            reaper=self.reaper,
            describe=self._describe,
            on_control=lambda message: None,
        )
        self._woken = threading.Event()
        self._fetcher = Fetcher(
            lambda block: self._store.read(block, self._trust.verdict), self._woken.set
        )
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"serve-{name}", daemon=True)
        self._state, self._job = "starting", None
        self._started = time.time()
        self.error: BaseException | None = None

    def start(self) -> None:
        """Join the namespace as a real worker does: groups, a first beat, then reading."""
        self._store.ensure_groups()
        self.heartbeat.beat()
        self._fetcher.start()
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._woken.set()
        self._fetcher.stop()
        self._store.close_reads()

    def leave(self) -> None:
        """After stop(): hand back what it holds and deregister, as a real worker leaves."""
        self._thread.join()
        self._fetcher.join()
        self._store.requeue(self._fetcher.drain())
        self.reaper.leave(self.name, self._tally.departure(STOPPED, left=True))

    def _serve(self) -> None:
        try:
            self._fetcher.want()
            running = None
            while not self._stopped.is_set():
                if running is None:
                    running = self._take()
                    if running is None:
                        self._idle()
                        continue
                running = self._run(*running)
        except BaseException as exc:  # the benchmark reports it, and stops
            self.error = exc

    def _idle(self) -> None:
        self._state, self._job = "idle", None
        self._woken.wait()  # the fetcher wakes it after every read, stop() too
        if self._fetcher.error is not None:
            raise self._fetcher.error
        if self._fetcher.empty_streak == 1:  # as the supervisor does
            self.heartbeat.beat_now()

    def _take(self) -> tuple[TaskEntry, TaskBatch, bytes, float] | None:
        self._woken.clear()
        fetched = self._fetcher.take()
        if fetched is None:
            return None
        entry, verdict = fetched
        if isinstance(verdict, Exception):
            raise verdict
        batch, body = verdict
        if batch.reduce:
            raise RhcError("a simulated worker does not merge: map without reduce")
        self._tally.took(batch)
        self._state, self._job = "busy", batch.job
        return entry, batch, body, time.time()

    def _run(
        self, entry: TaskEntry, batch: TaskBatch, body: bytes, started: float
    ) -> tuple[TaskEntry, TaskBatch, bytes, float] | None:
        """Run a batch to its end, with the next one fetched before it; store its results
        after the next one has started, as the task process goes straight on to it."""
        ends = started + batch.count * self._task_seconds
        self._stopped.wait(max(0.0, ends - PREFETCH_HORIZON - time.time()))
        self._fetcher.want()
        self._stopped.wait(max(0.0, ends - time.time()))
        if self._stopped.is_set():
            self._store.requeue([entry])
            return None
        following = self._take()
        values = loads(body, what="arguments", limit=self._settings.max_payload_bytes)
        limit = self._settings.max_payload_bytes
        outcome = Outcome(dumps(values, what="results", limit=limit), [], started, time.time())
        self._tally.finished(batch, 0)
        self._store.store(
            [entry],
            outcome.message(RESULTS, batch, self.name),
            outcome.body,
            batch.result_ttl,
            outcome.ran(batch, entry),
        )
        return following

    def _describe(self) -> WorkerInfo:
        return WorkerInfo(
            name=self.name,
            host=socket.gethostname(),
            pid=os.getpid(),
            compat=self._compat,
            versions=self._versions,
            started=self._started,
            task_keys=self._trust.key_ids,
            secret_id=self._trust.secret_id,
            state=self._state,
            job=self._job,
            **self._tally.counts(),
        )
