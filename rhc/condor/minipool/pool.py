# SPDX-License-Identifier: BSD-3-Clause
"""The mini pool's schedd and startd in one object: a queue of jobs, N slots, matching by cpus
and memory in submit order, removal, eviction, and a shutdown that leaves nothing running.

Every job runs in a thread of its own that starts it, waits for it and records how it ended;
state changes happen under one lock, and each one re-runs matching. When a run ends, its
output files are copied to output/ID in the work directory and its scratch directory (which
holds the transferred config file, with its credentials) is removed; a job that leaves the queue
(completed or removed) drops its transferred files and is kept only as a line of history.
"""

from __future__ import annotations

import logging
import os
import pwd
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path

from rhc.condor.minipool import scratch
from rhc.condor.minipool.errors import HoldError, MiniPoolError
from rhc.condor.minipool.execution import DockerRunner, Runner, VanillaRunner
from rhc.condor.minipool.jobs import (
    COMPLETED,
    HELD,
    IDLE,
    REMOVED,
    RUNNING,
    Job,
    Slot,
    check_transfers,
    describe,
    policy_refusal,
    reason,
)
from rhc.condor.minipool.settings import PoolSettings
from rhc.condor.minipool.submitfile import interpret

log = logging.getLogger(__name__)

# Why a running job is being stopped, strongest last: a removal is not undone by an eviction.
_STOP_STRENGTH = {"evict": 0, "shutdown": 1, "remove": 2}
_SHUTDOWN_MARGIN = 30.0
OUTPUT_DIR = "output"
"""Where, in the work directory, each job's output, error and log files are kept (ID/NAME)."""
HISTORY = 1000
"""How many jobs that left the queue GET /jobs still shows, as condor_history would."""


class Pool:
    """A mock HTCondor schedd + startd. Call start() first and stop() last (or use `with`)."""

    def __init__(self, settings: PoolSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._slots = [
            Slot(f"slot{n}@{settings.name}", settings.slot_cpus, settings.slot_memory_mb)
            for n in range(1, settings.slots + 1)
        ]
        self._jobs: list[Job] = []
        self._history: deque[dict] = deque(maxlen=HISTORY)
        self._threads: set[threading.Thread] = set()
        self._next_cluster = 1
        self._stopping = False
        self._docker = DockerRunner(
            pool_name=settings.name,
            user=settings.container_user,
            work_dir=settings.work_dir,
            network=settings.network,
            host_work_dir=settings.docker_host_work_dir,
            pids_limit=settings.pids_limit,
        )
        self._runners: dict[str, Runner] = {"docker": self._docker}
        if settings.allow_vanilla:
            self._runners["vanilla"] = VanillaRunner()
        self._outputs = settings.work_dir / OUTPUT_DIR

    def start(self) -> Pool:
        work_dir = self.settings.work_dir
        work_dir.mkdir(parents=True, exist_ok=True)
        work_dir.chmod(0o700)  # scratch directories hold config files with credentials
        self._outputs.mkdir(mode=0o700, exist_ok=True)
        # Cluster ids go on from a previous pool's, so that no output is overwritten; a scratch
        # directory left by a pool that did not stop belongs to no job any more: removed.
        names = [*_names(work_dir), *_names(self._outputs)]
        used = [int(m.group(1)) for m in map(scratch.SCRATCH_NAME.match, names) if m]
        self._next_cluster = max(used, default=0) + 1
        removed = scratch.remove_all(work_dir)
        if removed:
            log.warning("removed %d scratch director(ies) a previous pool left", removed)
        if self.settings.evict_every:
            with self._lock:
                self._spawn("minipool-evictor", self._evict_periodically)
        log.info(
            "pool %s: %d slot(s) of %d cpu(s), %d MB; work dir %s",
            self.settings.name,
            len(self._slots),
            self.settings.slot_cpus,
            self.settings.slot_memory_mb,
            self.settings.work_dir,
        )
        return self

    def __enter__(self) -> Pool:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def submit(
        self, description: str, files: Mapping[str, tuple[bytes, int]], owner: str | None = None
    ) -> tuple[int, list[int]]:
        """Queue the jobs of a submit description; return (ClusterId, [ProcId, ...]).

        Raises:
          SubmitFileError: the description cannot run here, or names a file that was not sent.
          MiniPoolError: a bad file name or mode, or the pool is stopping.
        """
        for name, (_, mode) in files.items():
            scratch.check_file_name(name)
            scratch.check_mode(name, mode)
        owner = owner or pwd.getpwuid(os.getuid()).pw_name
        with self._lock:
            if self._stopping:
                raise MiniPoolError("the pool is stopping")
            cluster = self._next_cluster
            specs = interpret(description, cluster)
            for spec in specs:
                check_transfers(spec, files)
            self._next_cluster += 1
            now = time.time()
            for spec in specs:
                directory = self.settings.work_dir / f"{cluster}.{spec.proc}"
                job = Job(cluster, spec, owner, files, now, directory)
                refusal = policy_refusal(spec, self.settings, self._runners)
                if refusal:  # as condor's schedd holds a job its policy refuses
                    job.state, job.note, job.files = HELD, refusal, {}
                self._jobs.append(job)
            self._schedule()
        log.info("cluster %d: %d job(s) submitted by %s", cluster, len(specs), owner)
        return cluster, [spec.proc for spec in specs]

    def jobs(self) -> list[dict]:
        """The jobs in the queue and the last HISTORY that left it, in submit order, as
        condor_q and condor_history would describe them."""
        with self._lock:
            queued = [self._describe(job) for job in self._jobs]
            return sorted([*self._history, *queued], key=lambda job: (job["cluster"], job["proc"]))

    def _describe(self, job: Job) -> dict:
        described = describe(job, self._slots, self.settings.grace)
        return {**described, "output_dir": str(self._outputs / job.id)}

    def status(self) -> list[dict]:
        """The slots, as condor_status would describe them."""
        with self._lock:
            return [slot.describe() for slot in self._slots]

    def remove(
        self, cluster: int | None = None, proc: int | None = None, batch_name: str | None = None
    ) -> int:
        """Remove the matching jobs (all of them with no filter); how many were removed.

        Idle and held jobs are Removed at once; running ones get SIGTERM (SIGKILL after the
        grace period) and are Removed when they have exited.
        """
        removed = 0
        with self._lock:
            for job in self._select(cluster, proc, batch_name):
                if job.state in (IDLE, HELD):
                    job.note = f"removed while {job.state.lower()}"
                    job.state = REMOVED
                    self._retire(job)
                    removed += 1
                elif job.state == RUNNING and job.stopping != "remove":
                    self._stop_job(job, "remove")
                    removed += 1
        if removed:
            log.info("removed %d job(s)", removed)
        return removed

    def vacate(
        self, cluster: int | None = None, proc: int | None = None, batch_name: str | None = None
    ) -> int:
        """Evict the matching running jobs now, like condor_vacate_job: SIGTERM (SIGKILL after
        the grace period), then back to Idle to run again. How many were evicted."""
        evicted = 0
        with self._lock:
            for job in self._select(cluster, proc, batch_name):
                if _is_evictable(job):
                    log.info("vacating job %s", job.id)
                    self._stop_job(job, "evict")
                    evicted += 1
        return evicted

    def _select(self, cluster: int | None, proc: int | None, batch_name: str | None) -> list[Job]:
        """The jobs matching every filter given (lock held)."""
        if proc is not None and cluster is None:
            raise MiniPoolError("a proc id needs its cluster id")
        return [
            job
            for job in self._jobs
            if (cluster is None or job.cluster == cluster)
            and (proc is None or job.spec.proc == proc)
            and (batch_name is None or job.spec.batch_name == batch_name)
        ]

    def stop(self) -> None:
        """Stop every running job (SIGTERM, SIGKILL after the grace period), remove the
        containers the pool started, and return when nothing of it runs any more."""
        with self._lock:
            self._stopping = True
            for job in self._jobs:
                if job.state == RUNNING:
                    self._stop_job(job, "shutdown")
        self._halt.set()
        deadline = time.monotonic() + self.settings.grace + _SHUTDOWN_MARGIN
        while True:
            with self._lock:
                threads = [t for t in self._threads if t is not threading.current_thread()]
            if not threads or time.monotonic() > deadline:
                break
            for thread in threads:
                thread.join(max(deadline - time.monotonic(), 0.01))
        removed = self._docker.remove_all()
        with self._lock:
            for job in self._jobs:
                job.files = {}  # the queue ends with the pool: no copy of a secret stays
        scratch.remove_all(self.settings.work_dir)
        if threads:
            names = ", ".join(thread.name for thread in threads)
            raise MiniPoolError(f"the pool could not stop: still waiting for {names}")
        log.info("pool %s stopped (%d container(s) removed)", self.settings.name, removed)

    # -- matching and running; the methods below marked "lock held" expect self._lock taken.

    def _schedule(self) -> None:
        """Start idle jobs, in submit order, in free slots they fit (lock held)."""
        if self._stopping:
            return
        for job in self._jobs:
            free = [slot for slot in self._slots if slot.job is None]
            if not free:
                return
            if job.state != IDLE:
                continue
            slot = next((slot for slot in free if slot.fits(job.spec)), None)
            if slot is None:
                continue
            slot.job, job.slot, job.state = job, slot, RUNNING
            job.started, job.exit_code, job.exit_signal, job.note = time.time(), None, None, ""
            job.starts += 1
            self._spawn(f"minipool-job-{job.id}", self._run, job, slot)

    def _run(self, job: Job, slot: Slot) -> None:
        status = held = None
        try:
            launch = scratch.prepare_launch(job, slot)
            execution = self._runners[job.spec.universe].start(launch)
            log.info("job %s started in %s", job.id, slot.name)
            with self._lock:
                job.execution = execution
                if job.stopping:  # removed, evicted or shut down while it was starting
                    self._spawn(f"minipool-stop-{job.id}", execution.terminate, self.settings.grace)
            status = execution.wait()
        except HoldError as exc:
            held = str(exc)
        except OSError as exc:
            held = f"cannot prepare its scratch directory: {exc}"
        except Exception as exc:  # a bug here must not keep the slot claimed for ever
            log.exception("job %s failed in the pool", job.id)
            held = f"the pool failed to run it: {exc!r}"
        # Outside the lock: a worker's caches take a while to delete.
        scratch.end_run(job.scratch, job.spec, self._outputs / job.id)
        self._finish(job, status=status, held=held)

    def _finish(self, job: Job, *, status: int | None = None, held: str | None = None) -> None:
        with self._lock:
            if job.slot is not None:
                job.slot.job = None
            job.slot, job.execution = None, None
            why, job.stopping = job.stopping, None
            if status is not None and status < 0:  # kept for every end: how did it stop?
                job.exit_signal = -status
            else:
                job.exit_code = status
            if why == "remove":
                job.state, job.note = REMOVED, "removed while running"
            elif held is not None:  # never released here: its files are of no more use
                job.state, job.note, job.files = HELD, held, {}
            elif why == "evict":
                job.state, job.evictions = IDLE, job.evictions + 1
            elif why == "shutdown":
                job.state, job.note = IDLE, "the pool stopped while it ran"
            else:
                job.state = COMPLETED
            log.info(
                "job %s: %s (%s)", job.id, job.state, reason(job, self._slots, self.settings.grace)
            )
            if job.state in (COMPLETED, REMOVED):
                self._retire(job)
            self._schedule()

    def _retire(self, job: Job) -> None:
        """A job leaves the queue: its record, with the transferred files, is dropped, and a
        description of it kept in the history (lock held)."""
        self._history.append(self._describe(job))
        self._jobs.remove(job)
        job.files = {}

    def _stop_job(self, job: Job, why: str) -> None:
        """Ask a running job to stop: SIGTERM now, SIGKILL after the grace (lock held)."""
        if job.stopping is not None:
            if _STOP_STRENGTH[why] > _STOP_STRENGTH[job.stopping]:
                job.stopping = why  # already being stopped: only the outcome changes
            return
        job.stopping = why
        if job.execution is not None:
            self._spawn(f"minipool-stop-{job.id}", job.execution.terminate, self.settings.grace)

    def _evict_periodically(self) -> None:
        """Preemption: every evict_every seconds, evict a random running job. A fixed period,
        so that a test can bound how often its workers are preempted."""
        rng = random.Random(self.settings.seed)
        while not self._halt.wait(self.settings.evict_every):
            with self._lock:
                running = [job for job in self._jobs if _is_evictable(job)]
                if running:
                    job = rng.choice(running)
                    log.info("evicting job %s", job.id)
                    self._stop_job(job, "evict")

    def _spawn(self, name: str, target: Callable[..., object], *args: object) -> None:
        """Run target in a tracked thread, so that stop() can wait for it (lock held)."""

        def body() -> None:
            try:
                target(*args)
            finally:
                with self._lock:
                    self._threads.discard(thread)

        thread = threading.Thread(target=body, name=name, daemon=True)
        self._threads.add(thread)
        thread.start()


def _names(directory: Path) -> list[str]:
    return [entry.name for entry in directory.iterdir()]


def _is_evictable(job: Job) -> bool:
    """Running, not already being stopped, and not ended on its own: a job whose container has
    exited (its logs still being collected) ended by itself, whatever an eviction would say."""
    execution = job.execution
    return (
        job.state == RUNNING
        and job.stopping is None
        and execution is not None
        and not execution.ended.is_set()
    )
