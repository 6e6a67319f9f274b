# SPDX-License-Identifier: BSD-3-Clause
"""Who a worker is: its name, and its HTCondor job id when it runs under condor."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from pathlib import Path

_AD_LINE = re.compile(r"^\s*(ClusterId|ProcId)\s*=\s*(\d+)\s*$", re.MULTILINE)
_REQUEST_MEMORY = re.compile(r"^\s*RequestMemory\s*=\s*(\d+)\s*$", re.MULTILINE)


def condor_job_id(environ: Mapping[str, str] = os.environ) -> str | None:
    """ClusterId.ProcId from the job ad file condor names in _CONDOR_JOB_AD, or None."""
    path = environ.get("_CONDOR_JOB_AD")
    if not path:
        return None
    try:
        found = dict(_AD_LINE.findall(Path(path).read_text(errors="replace")))
    except OSError:
        return None
    if "ClusterId" not in found:
        return None
    return f"{found['ClusterId']}.{found.get('ProcId', '0')}"


def default_worker_name(host: str, condor_id: str | None, pid: int) -> str:
    """host-ClusterId.ProcId under condor (what `condor_q` shows), host-pid elsewhere."""
    short_host = host.split(".")[0] or "worker"
    return f"{short_host}-{condor_id}" if condor_id else f"{short_host}-{pid}"


def job_memory_bytes(environ: Mapping[str, str] = os.environ) -> int:
    """The memory this worker may use: condor's RequestMemory, else the cgroup limit, else RAM."""
    path = environ.get("_CONDOR_JOB_AD")
    if path:
        with contextlib.suppress(OSError):
            found = _REQUEST_MEMORY.search(Path(path).read_text(errors="replace"))
            if found:
                return int(found.group(1)) * 2**20
    with contextlib.suppress(OSError, ValueError):
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            return int(limit)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def scratch_directory(environ: Mapping[str, str] = os.environ) -> Path:
    """Where a worker may write: condor's job scratch directory, else the temporary directory."""
    scratch = environ.get("_CONDOR_SCRATCH_DIR") or environ.get("TMPDIR") or "/tmp"
    return Path(scratch)
