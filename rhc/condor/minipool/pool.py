# SPDX-License-Identifier: BSD-3-Clause
"""The mini pool's schedd and startd in one object: a queue of jobs, N slots, matching by cpus
and memory in submit order, removal, eviction, and a shutdown that leaves nothing running.

Every job runs in a thread of its own that starts it, waits for it and records how it ended;
state changes happen under one lock, and each one re-runs matching.
"""

from __future__ import annotations

import logging
import os
import pwd
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from rhc.condor.minipool import scratch
from rhc.condor.minipool.errors import HoldError, MiniPoolError
from rhc.condor.minipool.execution import DockerRunner, Launch, Runner, VanillaRunner
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
    reason,
)
from rhc.condor.minipool.settings import PoolSettings
from rhc.condor.minipool.submitfile import input_name, interpret

log = logging.getLogger(__name__)

# Why a running job is being stopped, strongest last: a removal is not undone by an eviction.
_STOP_STRENGTH = {"evict": 0, "shutdown": 1, "remove": 2}
_SCRATCH_NAME = re.compile(r"^(\d+)\.(\d+)$")
_SHUTDOWN_MARGIN = 30.0


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
        self._threads: set[threading.Thread] = set()
        self._next_cluster = 1
        self._stopping = False
        self._docker = DockerRunner(
            pool_name=settings.name,
            user=settings.container_user,
            work_dir=settings.work_dir,
            network=settings.network,
            host_work_dir=settings.docker_host_work_dir,
        )
        self._runners: dict[str, Runner] = {"vanilla": VanillaRunner(), "docker": self._docker}

    def start(self) -> Pool:
        self.settings.work_dir.mkdir(parents=True, exist_ok=True)
        # Cluster ids go on from a previous pool's, so no scratch directory is taken over.
        used = [int(m.group(1)) for m in map(_SCRATCH_NAME.match, _names(self.settings.work_dir))]
        self._next_cluster = max(used, default=0) + 1
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
                self._jobs.append(Job(cluster, spec, owner, files, now, directory))
            self._schedule()
        log.info("cluster %d: %d job(s) submitted by %s", cluster, len(specs), owner)
        return cluster, [spec.proc for spec in specs]

    def jobs(self) -> list[dict]:
        """Every job the pool has seen, in submit order, as condor_q would describe it."""
        with self._lock:
            return [describe(job, self._slots, self.settings.grace) for job in self._jobs]

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
        try:
            launch = self._prepare(job, slot)
            execution = self._runners[job.spec.universe].start(launch)
            log.info("job %s started in %s", job.id, slot.name)
            with self._lock:
                job.execution = execution
                if job.stopping:  # removed, evicted or shut down while it was starting
                    self._spawn(f"minipool-stop-{job.id}", execution.terminate, self.settings.grace)
            status = execution.wait()
        except HoldError as exc:
            self._finish(job, held=str(exc))
        except OSError as exc:
            self._finish(job, held=f"cannot prepare its scratch directory: {exc}")
        except Exception as exc:  # a bug here must not keep the slot claimed for ever
            log.exception("job %s failed in the pool", job.id)
            self._finish(job, held=f"the pool failed to run it: {exc!r}")
        else:
            self._finish(job, status=status)

    def _prepare(self, job: Job, slot: Slot) -> Launch:
        spec = job.spec
        name = spec.executable_name if spec.executable_name in job.files else None
        if name is not None:  # transferred: run the copy in the scratch directory
            command = (str(job.scratch / name), *spec.arguments)
        elif spec.executable is not None:  # a path on the pool's host, or in the image
            command = (spec.executable, *spec.arguments)
        else:  # a docker job without executable: the image's entrypoint gets the arguments
            command = spec.arguments
        scratch.prepare(job.scratch, job.files, name)
        sizes = sum(len(content) for content, _ in job.files.values())
        ad = scratch.write_job_ad(
            job.scratch,
            cluster=job.cluster,
            spec=spec,
            owner=job.owner,
            command=command,
            submitted=job.submitted,
            started=job.started or time.time(),
            starts=job.starts,
            disk_kb=spec.request_disk_kb or max(-(-sizes // 1024), 1),
        )
        directory = str(job.scratch)
        environment = {
            **spec.environment,
            "_CONDOR_SCRATCH_DIR": directory,
            "_CONDOR_JOB_AD": str(ad),
            "_CONDOR_JOB_IWD": directory,
            "_CONDOR_SLOT": slot.name.split("@")[0],
            "TMPDIR": directory,
            "TMP": directory,
            "TEMP": directory,
        }
        if spec.x509_proxy:
            environment["X509_USER_PROXY"] = str(job.scratch / input_name(spec.x509_proxy))
        return Launch(
            job_id=job.id,
            command=command,
            environment=environment,
            scratch=job.scratch,
            output=scratch.output_path(job.scratch, spec.output),
            error=scratch.output_path(job.scratch, spec.error),
            image=spec.docker_image,
        )

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
            elif held is not None:
                job.state, job.note = HELD, held
            elif why == "evict":
                job.state, job.evictions = IDLE, job.evictions + 1
            elif why == "shutdown":
                job.state, job.note = IDLE, "the pool stopped while it ran"
            else:
                job.state = COMPLETED
            log.info(
                "job %s: %s (%s)", job.id, job.state, reason(job, self._slots, self.settings.grace)
            )
            self._schedule()

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
