# SPDX-License-Identifier: BSD-3-Clause
"""A job's scratch directory: the transferred files with their modes, and the job ad.

It is emptied and filled again at every start, so a job evicted and started again sees what
condor's starter would give it: the transferred files and nothing left from its last run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import classad2

from rhc.condor.minipool.errors import MiniPoolError
from rhc.condor.minipool.submitfile import STDERR_NAME, STDOUT_NAME, JobSpec

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


def prepare(scratch: Path, files: Files, executable_name: str | None) -> None:
    """Empty scratch and write every transferred file into it with its own mode (umask aside:
    a 0600 secret stays 0600). The transferred executable is made executable, as condor does."""
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    scratch.chmod(0o700)
    for name, (content, mode) in files.items():
        if name == executable_name:
            mode |= 0o100
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


def output_path(scratch: Path, name: str) -> Path:
    """Where output/error go: a relative name in the scratch directory (condor would transfer
    it back to the submit directory; here the two are on one host), an absolute path as is."""
    return scratch / name


def _classad_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return classad2.quote(str(value))
