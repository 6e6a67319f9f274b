# SPDX-License-Identifier: BSD-3-Clause
"""A job's scratch directory: the transferred files with their modes, the job ad, what the
job is started with; and its end: the output files kept, the directory removed.

It is filled afresh at every start and removed after every run, so a job evicted and started
again sees what condor's starter would give it: the transferred files and nothing left from its
last run; and no copy of a transferred secret outlives a run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import time
from collections.abc import Collection, Mapping
from pathlib import Path

import classad2

from rhc.condor.minipool.errors import MiniPoolError
from rhc.condor.minipool.execution import Launch
from rhc.condor.minipool.jobs import Job, Slot
from rhc.condor.minipool.outputs import collect
from rhc.condor.minipool.submitfile import STDERR_NAME, STDOUT_NAME, JobSpec, input_name

log = logging.getLogger(__name__)

SCRATCH_NAME = re.compile(r"^(\d+)\.(\d+)$")
"""A scratch directory's name in the work directory: CLUSTER.PROC."""

JOB_AD_NAME = ".job.ad"
"""The job ad's file name in the scratch directory (what _CONDOR_JOB_AD points to)."""

Files = Mapping[str, tuple[bytes, int]]
"""Transferred files: name in the scratch directory -> (content, mode)."""

_RESERVED_NAMES = frozenset({JOB_AD_NAME, STDOUT_NAME, STDERR_NAME})


def check_file_name(name: str) -> None:
    """Refuse a transferred file's name that is not a plain name in the scratch directory.

    Raises:
      MiniPoolError: a path, '.', '..', or a name the pool writes itself.
    """
    if not name or "/" in name or "\0" in name or name in (".", ".."):
        raise MiniPoolError(f"file name {name!r}: give a plain file name, not a path")
    if name in _RESERVED_NAMES:
        raise MiniPoolError(f"file name {name!r} is written by the pool itself")


def check_mode(name: str, mode: object) -> int:
    """A transferred file's permission bits."""
    if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 0o7777:
        raise MiniPoolError(f"file {name}: mode {mode!r} is not a permission number (0o600 = 384)")
    return mode


def prepare(
    scratch: Path, files: Files, executable_name: str | None, private: Collection[str] = ()
) -> None:
    """Empty scratch and write every transferred file into it with its own mode (umask aside:
    a 0600 secret stays 0600). The transferred executable is made executable, as condor does;
    the files named in private (the x509 proxy) are 0600 whatever their mode was, as grid
    clients demand."""
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    scratch.chmod(0o700)
    for name, (content, mode) in files.items():
        if name == executable_name:
            mode |= 0o100
        if name in private:
            mode = 0o600
        fd = os.open(scratch / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(fd, mode)
            handle.write(content)


def write_job_ad(
    scratch: Path,
    *,
    cluster: int,
    spec: JobSpec,
    owner: str,
    command: tuple[str, ...],
    submitted: float,
    started: float,
    starts: int,
    disk_kb: int,
) -> Path:
    """Write the job ad in ClassAd text (one `Name = value` a line) and return its path."""
    attributes: list[tuple[str, object]] = [
        ("ClusterId", cluster),
        ("ProcId", spec.proc),
        ("Owner", owner),
    ]
    if spec.batch_name:
        attributes.append(("JobBatchName", spec.batch_name))
    attributes += [
        ("RequestCpus", spec.request_cpus),
        ("RequestMemory", spec.request_memory_mb),
        ("RequestDisk", disk_kb),
        ("Iwd", str(scratch)),
        ("JobUniverse", 5),  # docker jobs are vanilla jobs with WantDocker, as in condor
        ("QDate", int(submitted)),
        ("JobCurrentStartDate", int(started)),
        ("NumJobStarts", starts),
    ]
    if command:
        attributes.append(("Cmd", command[0]))
    if spec.docker_image:
        attributes += [("WantDocker", True), ("DockerImage", spec.docker_image)]
    lines = [f"{name} = {_classad_value(value)}" for name, value in attributes]
    lines += [f"{name} = {expression}" for name, expression in spec.attributes.items()]
    path = scratch / JOB_AD_NAME
    path.write_text("\n".join(lines) + "\n")
    return path


def _classad_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return classad2.quote(str(value))


def prepare_launch(job: Job, slot: Slot) -> Launch:
    """Fill the job's scratch directory and write its job ad; what starts it in slot."""
    spec = job.spec
    name = spec.executable_name if spec.executable_name in job.files else None
    if name is not None:  # transferred: run the copy in the scratch directory
        command = (str(job.scratch / name), *spec.arguments)
    elif spec.executable is not None:  # a path on the pool's host, or in the image
        command = (spec.executable, *spec.arguments)
    else:  # a docker job without executable: the image's entrypoint gets the arguments
        command = spec.arguments
    proxy = input_name(spec.x509_proxy) if spec.x509_proxy else None
    prepare(job.scratch, job.files, name, private=[proxy] if proxy else [])
    sizes = sum(len(content) for content, _ in job.files.values())
    ad = write_job_ad(
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
    if proxy:  # a docker job sees the scratch directory at the same path, bind-mounted
        environment["X509_USER_PROXY"] = str(job.scratch / proxy)
    return Launch(
        job_id=job.id,
        command=command,
        environment=environment,
        scratch=job.scratch,
        output=spec.output,
        error=spec.error,
        image=spec.docker_image,
        cpus=spec.request_cpus,
        memory_mb=spec.request_memory_mb,
        run=job.starts,
    )


def end_run(scratch: Path, spec: JobSpec, destination: Path) -> None:
    """After a run: copy its output, error and log files to destination (as condor transfers
    them back), then remove the scratch directory and the secrets in it."""
    names = [spec.output, spec.error, *filter(None, [spec.log])]
    try:
        if scratch.is_dir():
            collect(scratch, names, destination)
    except OSError as exc:
        log.warning("%s: could not keep the output files: %s", scratch.name, exc)
    shutil.rmtree(scratch, ignore_errors=True)


def remove_all(work_dir: Path) -> int:
    """Remove every scratch directory (CLUSTER.PROC) in work_dir; how many there were."""
    found = [path for path in work_dir.iterdir() if SCRATCH_NAME.match(path.name)]
    for path in found:
        with contextlib.suppress(FileNotFoundError):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    return len(found)
