# SPDX-License-Identifier: BSD-3-Clause
"""The worker: a supervisor that takes task batches from Redis and runs them in a task process.

The supervisor never runs user code. It verifies each batch's signature (the notebook side's task
key) and that the batch is the one its entry claims, in this namespace, has the Executor run it
in the task process, and stores the results together with the acknowledgement. SIGTERM (condor's
eviction and condor_rm) makes it hand back everything it holds at once and exit 0.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections.abc import Sequence
from pathlib import Path

import redis

from rhc import defaults
from rhc.config import Settings, batch_environment, resolve_settings
from rhc.errors import RhcError, SignatureError
from rhc.wire.connection import RETRYABLE, Reconnector, connect
from rhc.wire.keys import Keys
from rhc.wire.protocol import (
    CANCEL,
    CANCELLED,
    FLUSH,
    PROGRESS,
    RESULTS,
    TaskBatch,
    TaskEntry,
    WorkerInfo,
    compat_tag,
    versions,
)
from rhc.worker.control import Controls
from rhc.worker.execution import Executor, Outcome, Run, failed_outcome
from rhc.worker.fetcher import Fetcher
from rhc.worker.heartbeat import Heartbeat
from rhc.worker.identity import cache_budget, condor_job_id, default_worker_name, job_memory_bytes
from rhc.worker.merging import Mergings
from rhc.worker.reaper import Reaper
from rhc.worker.store import TaskStore
from rhc.worker.tally import Tally
from rhc.worker.taskprocess import TaskProcess
from rhc.worker.trust import Trust
from rhc.worker.wakeup import Wakeup

log = logging.getLogger(__name__)

SHUTDOWN_RECONNECT_TIMEOUT = 5.0
"""How long a stopping worker waits for a lost Redis to hand back its tasks; if it cannot, they
come back when its heartbeat expires."""


class Worker:
    """Runs tasks of one namespace until stopped by SIGTERM, SIGINT or stop().

    Parameters:
      redis_url: where Redis is; the password may come from the config file instead.
      name: unique among workers; defaults to host-ClusterId.ProcId under condor, host-pid else.
      merge_flush_interval: the longest a merged partial result stays unstored.
      cache_bytes: the budget of get_worker().cache; at most (and by default) half the memory
        of the job (condor's RequestMemory, or the cgroup limit).
      cache_dir, disk_cache_bytes: where the byte ranges read from remote files are kept
        (default: the job's scratch directory), and their budget.
      preload: modules the task process imports (and warms up) before taking tasks.
      reconnect_timeout: how long to wait for a lost Redis before exiting non-zero.
    """

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        secret: str | bytes | None = None,
        namespace: str | None = None,
        name: str | None = None,
        settings: Settings | None = None,
        merge_flush_interval: float = defaults.DEFAULT_MERGE_FLUSH_INTERVAL,
        cache_bytes: int | None = None,
        cache_dir: Path | None = None,
        disk_cache_bytes: int = defaults.DEFAULT_DISK_CACHE_BYTES,
        preload: Sequence[str] = (),
        reconnect_timeout: float = defaults.DEFAULT_WORKER_RECONNECT_TIMEOUT,
    ) -> None:
        self.settings = settings or resolve_settings(
            redis_url=redis_url, secret=secret, namespace=namespace
        )
        batch = batch_environment()
        self.host = socket.gethostname()
        self.condor_id = condor_job_id(batch.job_ad)
        self.name = name or default_worker_name(self.host, self.condor_id, os.getpid())
        self.versions = versions()
        self.compat = compat_tag(self.versions)
        self.keys = Keys(self.settings.namespace)
        self._trust = Trust(self.settings)
        self._reconnect_timeout = reconnect_timeout
        self._child = TaskProcess(
            {
                "name": self.name,
                "host": self.host,
                "namespace": self.settings.namespace,
                "condor_id": self.condor_id,
                "cache_bytes": cache_budget(cache_bytes, job_memory_bytes(batch.job_ad)),
                "cache_dir": str(cache_dir or batch.scratch_dir / f"rhc-cache-{os.getuid()}"),
                "disk_cache_bytes": disk_cache_bytes,
                "preload": list(preload),
                "max_payload_bytes": self.settings.max_payload_bytes,
            }
        )
        self._mergings = Mergings(merge_flush_interval)
        self._wakeup = Wakeup()
        self._controls = Controls(self._wakeup.set, self._trust)
        self._stopping = False
        self._state = "starting"
        self._job: str | None = None
        self._tally = Tally(self.name, self.host, self.condor_id)
        self._started = time.time()

    def __repr__(self) -> str:
        return f"Worker(name={self.name!r}, url={self.settings.masked_url!r})"

    def stop(self) -> None:
        """Ask the worker to hand back what it holds and return from run()."""
        self._stopping = True
        self._wakeup.set()

    def run(self, *, handle_signals: bool = True) -> None:
        """Serve tasks until stopped. SIGTERM and SIGINT stop gracefully; a second one at once."""
        if handle_signals:  # first: an eviction may come at any moment, even while starting
            self._wakeup.catch_signals(self._on_signal)
        client = connect(self.settings, role="worker")
        self._store = TaskStore(
            client,
            self.keys,
            compat=self.compat,
            name=self.name,
            secret=self.settings.secret,
            reconnect=Reconnector(self.settings, self._reconnect_timeout),
            read_reconnect=Reconnector(self.settings, self._reconnect_timeout),
        )
        self._reaper = Reaper(client, self.keys, self.compat)
        self._reaper.reclaim(self.name, self.compat)  # what a previous life under this name held
        # After the reclaim, which deletes this name's own stream: reading it must not have to
        # create its group, a write a full Redis would refuse.
        self._store.ensure_groups()
        self._store.load_results_script()
        self._executor = Executor(
            self._child,
            self,
            trust=self._trust,
            fetch_function=self._store.function,
        )
        self._heartbeat = Heartbeat(
            client=client,
            keys=self.keys,
            name=self.name,
            interval=self.settings.heartbeat_interval,
            ttl=self.settings.heartbeat_ttl,
            reaper=self._reaper,
            describe=self._describe,
            on_control=self._controls.deliver,
        )
        self._child.start()  # ready (modules preloaded) before the worker shows itself
        self._heartbeat.beat()
        self._fetcher = Fetcher(
            lambda block: self._store.read(block, self._trust.verdict), self._wakeup.set
        )
        self._fetcher.start()
        self._heartbeat.start()
        log.info(
            "worker %s serving namespace %r at %s (%s)",
            self.name,
            self.settings.namespace,
            self.settings.masked_url,
            self.compat,
        )
        with self._tally:
            try:
                while not self._stopping:
                    due = self._mergings.due()
                    if due and not self._executor.busy:
                        self._flush(due)
                    self._fill()
                    if self._executor.busy:
                        self._complete(*self._executor.next_outcome())
                    else:
                        self._idle()
            except Exception as exc:
                self._tally.leaving = f"{type(exc).__name__}: {exc}"
                raise
            finally:
                self._shutdown()

    # -- the loop -------------------------------------------------------------------------

    def _idle(self) -> None:
        self._state, self._job = "idle", None
        with self._fetcher.parked(self._fill):
            self._fetcher.want()
            self.wait([], timeout=1.0)
        self._process_controls()
        # idle a whole read: its counts show now, not a beat late, nor at once (the next small
        # map would wait behind the beat)
        if self._fetcher.empty_streak == 1:
            self._heartbeat.beat_now()
        if self._fetcher.empty_streak >= defaults.IDLE_FLUSH_READS and self._mergings.jobs:
            self._flush(self._mergings.jobs)

    def _fill(self) -> None:
        """Hand the task process the batches in hand while it has room for them, unless merged
        results are due: their flush needs it idle."""
        while self._executor.has_room and not self._stopping and not self._mergings.due():
            fetched = self._fetcher.take()
            if fetched is None:
                return
            self._take(*fetched)
            self._state, self._job = "busy", self._executor.current_job

    def _take(self, entry: TaskEntry, verdict: tuple[TaskBatch, bytes] | SignatureError) -> None:
        if isinstance(verdict, SignatureError):
            self._store.reject(entry, str(verdict))
            return
        batch, body = verdict
        if self._is_cancelled(batch.job, entry):
            self._store.discard([entry])
            return
        run = Run(entry, batch, body)
        if entry.redeliveries >= batch.max_attempts:
            lost = (
                f"the workers running these tasks stopped {entry.redeliveries} times "
                "before finishing them (killed, evicted or out of memory)"
            )
            self._complete(run, failed_outcome(batch, set(), "lost", "WorkerLost", lost))
        else:
            self._executor.submit(run)
            self._tally.took(batch)

    def _complete(self, run: Run, outcome: Outcome | None) -> None:
        entry, batch = run.entry, run.batch
        if self._controls.is_cancelled(batch.job):  # it may have ended before the interrupt
            self._store.discard([entry])
            if batch.reduce:
                self._child.send(("forget", batch.job))
            return
        if outcome is None:  # interrupted: another worker may take it
            self._store.requeue([entry])
            return
        self._tally.finished(batch, len(outcome.failures))
        ran = outcome.ran(batch, entry)
        if batch.reduce:
            self._mergings.add(
                entry, batch, outcome.failures, outcome.started, outcome.finished, ran
            )
            message = outcome.message(PROGRESS, batch, self.name)
            self._store.publish(entry, message, batch.result_ttl)
        else:  # the next batch is already running in the task process while this is stored
            message = outcome.message(RESULTS, batch, self.name)
            self._store.store([entry], message, outcome.body, batch.result_ttl, ran)

    def _flush(self, jobs: list[str]) -> None:
        """Store the merged partial results of jobs, with the acknowledgements they cover."""
        for job in jobs:
            merging = self._mergings.take(job)
            if merging is None:
                continue
            reply = self._executor.ask(("flush", job))
            if reply is None:  # the task process died with the value: run the batches again
                self._store.requeue(merging.entries)
            else:
                _, _, body, error = reply
                self._store.store(
                    merging.entries,
                    merging.message(job, self.name, body, error),
                    body,
                    merging.result_ttl,
                    merging.ran,
                )
            self._store.forget_merged(merging.entries)

    def _is_cancelled(self, job: str, entry: TaskEntry) -> bool:
        if self._controls.is_cancelled(job):
            return True
        if (
            entry.redeliveries
            and self._trust.job_state(job, self._store.job_status(job)) == CANCELLED
        ):
            self._controls.cancel(job)  # re-queued work may outlive its job
            return True
        return False

    # -- what the Executor asks of its host -------------------------------------------------------

    def wait(self, waitables: list, timeout: float) -> None:
        self._wakeup.wait(waitables, timeout)
        if self._fetcher.error is not None:
            raise self._fetcher.error

    def on_wake(self, batches: list[TaskBatch]) -> bool:
        self._process_controls()
        if self._stopping:
            self._store.requeue(self._fetcher.drain())  # hand back what is in hand at once
            return True
        if any(self._controls.is_cancelled(batch.job) for batch in batches):
            return True
        self._fill()
        return False

    def prefetch(self) -> None:
        self._fetcher.want()

    def lost_task_process(self, reason: str) -> None:
        self._store.record_departure(self._tally.departure(reason, left=False))
        lost = self._mergings.take_all()
        if lost:
            log.warning(
                "re-queued %d batch(es) whose merged results died with the task process", len(lost)
            )
            self._store.requeue(lost)
            self._store.forget_merged(lost)

    # -- control, signals, shutdown ---------------------------------------------------------------

    def _process_controls(self) -> None:
        for message in self._controls.take():
            if message.op == CANCEL:
                self._cancel(message.job)
            elif message.op == FLUSH:
                self._mergings.want(message.job)

    def _cancel(self, job: str) -> None:
        self._controls.cancel(job)
        merging = self._mergings.take(job)
        if merging is not None:
            self._child.send(("forget", job))
            self._store.discard(merging.entries)
            self._store.forget_merged(merging.entries)

    def _on_signal(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if self._stopping:
            log.warning(
                "second %s: exiting now; what this worker held is re-queued when its "
                "heartbeat expires",
                name,
            )
            os._exit(128 + signum)
        log.info("%s: handing back tasks and stopping", name)
        self._tally.signalled(name)
        self._stopping = True

    def _describe(self) -> WorkerInfo:
        return WorkerInfo(
            name=self.name,
            host=self.host,
            pid=os.getpid(),
            compat=self.compat,
            versions=self.versions,
            started=self._started,
            task_keys=self._trust.key_ids,
            secret_id=self._trust.secret_id,
            condor_id=self.condor_id,
            state=self._state,
            job=self._job,
            task=self._child.current_task()[0],
            **self._tally.counts(),
            extra={"task_pid": str(self._child.pid or "")},
        )

    def _shutdown(self) -> None:
        self._stopping = True  # also after an error: what runs is interrupted and handed back
        self._state = "stopping"
        # Condor follows SIGTERM with SIGKILL: spend seconds, not the full budget, on a lost Redis.
        self._store.reconnect = Reconnector(self.settings, SHUTDOWN_RECONNECT_TIMEOUT)
        try:
            self._fetcher.stop()
            self._store.close_reads()  # an idle worker's read may otherwise wait seconds
            self._store.requeue(self._fetcher.drain())
            while self._executor.busy:  # interrupted by now: hand them back
                self._complete(*self._executor.next_outcome())
            self._fetcher.join(timeout=defaults.IDLE_READ_BLOCK + SHUTDOWN_RECONNECT_TIMEOUT)
            self._store.requeue(self._fetcher.drain())
            if self._child.is_alive:
                self._flush(self._mergings.jobs)
            else:
                self.lost_task_process(self._child.exit_reason())
        except (RhcError, *RETRYABLE) as exc:
            log.error("could not hand back tasks (%s): re-queued once its heartbeat expires", exc)
        finally:
            self._heartbeat.stop()
            self._heartbeat.join()
            self._child.stop(timeout=5.0)
        try:
            self._reaper.leave(self.name, self._tally.departure(self._tally.leaving, left=True))
        except (RhcError, redis.RedisError) as exc:
            log.error("could not deregister (%s): others sweep it when its heartbeat expires", exc)
