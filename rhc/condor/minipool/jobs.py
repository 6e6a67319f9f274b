# SPDX-License-Identifier: BSD-3-Clause
"""The pool's records: jobs and slots, their states, and how the API describes them (with the
reason a job waits, was held, or ended)."""

from __future__ import annotations

import fnmatch
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rhc.condor.minipool.errors import SubmitFileError
from rhc.condor.minipool.execution import Execution
from rhc.condor.minipool.settings import PoolSettings
from rhc.condor.minipool.submitfile import JobSpec

IDLE, RUNNING, COMPLETED, REMOVED, HELD = "Idle", "Running", "Completed", "Removed", "Held"
STATES = (IDLE, RUNNING, COMPLETED, REMOVED, HELD)


@dataclass
class Slot:
    """A share of the machine that runs one job at a time."""

    name: str
    cpus: int
    memory_mb: int
    job: Job | None = None

    def fits(self, spec: JobSpec) -> bool:
        return spec.request_cpus <= self.cpus and spec.request_memory_mb <= self.memory_mb

    def describe(self) -> dict:
        return {
            "name": self.name,
            "cpus": self.cpus,
            "memory_mb": self.memory_mb,
            "state": "Claimed" if self.job else "Unclaimed",
            "job": self.job.id if self.job else None,
        }


@dataclass
class Job:
    """One proc of a cluster, and what happened to it.

    ``stopping`` says why a running job was sent SIGTERM ("remove", "evict", "shutdown"), which
    decides its state once it has exited.
    """

    cluster: int
    spec: JobSpec
    owner: str
    files: Mapping[str, tuple[bytes, int]]
    submitted: float
    scratch: Path
    state: str = IDLE
    note: str = ""
    slot: Slot | None = None
    started: float | None = None
    exit_code: int | None = None
    exit_signal: int | None = None
    evictions: int = 0
    starts: int = 0
    stopping: str | None = None
    execution: Execution | None = field(default=None, repr=False)

    @property
    def id(self) -> str:
        return f"{self.cluster}.{self.spec.proc}"


def describe(job: Job, slots: Sequence[Slot], grace: float) -> dict:
    """A job as GET /jobs shows it."""
    spec = job.spec
    return {
        "cluster": job.cluster,
        "proc": spec.proc,
        "id": job.id,
        "state": job.state,
        "reason": reason(job, slots, grace),
        "owner": job.owner,
        "batch_name": spec.batch_name,
        "universe": spec.universe,
        "request_cpus": spec.request_cpus,
        "request_memory_mb": spec.request_memory_mb,
        "slot": job.slot.name if job.slot else None,
        "started": job.started,
        "exit_code": job.exit_code,
        "exit_signal": job.exit_signal,
        "evictions": job.evictions,
        "stopping": job.stopping,
        "scratch_dir": str(job.scratch),
    }


def reason(job: Job, slots: Sequence[Slot], grace: float) -> str:
    """Why a job is in its state: what it waits for, why it is held, how it ended."""
    evicted = f"evicted {job.evictions} time(s)" if job.evictions else ""
    if job.state == IDLE:
        reasons = [unmatchable(job.spec, slots) or "waiting for a free slot", job.note, evicted]
    elif job.state == RUNNING and job.stopping:
        reasons = [f"{job.stopping}: SIGTERM sent, SIGKILL after {grace:g} s", evicted]
    elif job.state == COMPLETED:
        ended = (
            f"killed by signal {job.exit_signal}"
            if job.exit_signal is not None
            else f"exited with code {job.exit_code}"
        )
        reasons = [ended, evicted]
    else:
        reasons = [job.note, evicted]
    return "; ".join(text for text in reasons if text)


def unmatchable(spec: JobSpec, slots: Sequence[Slot]) -> str:
    """Why no slot could ever run spec, or '' if one could."""
    if any(slot.fits(spec) for slot in slots):
        return ""
    memory = max(slot.memory_mb for slot in slots)
    cpus = max(slot.cpus for slot in slots)
    if spec.request_memory_mb > memory:
        return (
            f"request_memory {spec.request_memory_mb} MB exceeds every slot (largest: {memory} MB)"
        )
    if spec.request_cpus > cpus:
        return f"request_cpus {spec.request_cpus} exceeds every slot (largest: {cpus})"
    return f"no slot has both {spec.request_cpus} cpu(s) and {spec.request_memory_mb} MB"


def check_transfers(spec: JobSpec, files: Mapping[str, object]) -> None:
    """Refuse a job whose input files were not sent, or whose executable cannot be found.

    Raises:
      SubmitFileError: what is missing.
    """
    for name in spec.input_names:
        if name not in files:
            raise SubmitFileError(
                f"proc {spec.proc} names input file {name}, but no file of that name was sent"
            )
    if (
        spec.universe == "vanilla"
        and spec.executable_name not in files
        and not Path(spec.executable or "").is_absolute()
    ):
        raise SubmitFileError(
            f"executable {spec.executable} was not sent: send the file, or give an absolute "
            "path on the pool's host"
        )


def policy_refusal(spec: JobSpec, settings: PoolSettings, universes: Container[str]) -> str:
    """Why the pool's policy holds a job (a universe it does not run, an image it does not
    allow), or ''."""
    if spec.universe not in universes:
        return (
            f"the {spec.universe} universe is off in this pool: its jobs would run as the pool's "
            "own user, any program of its host; start the pool with --allow-vanilla"
        )
    image, allowed = spec.docker_image, settings.allowed_images
    if image is not None and not any(fnmatch.fnmatchcase(image, pattern) for pattern in allowed):
        return (
            f"docker image {image} is not allowed in this pool (allowed: "
            f"{', '.join(allowed) or 'none'}); start the pool with --allow-image PATTERN"
        )
    return ""
