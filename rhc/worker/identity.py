# SPDX-License-Identifier: BSD-3-Clause
"""Who a worker is: its name, its HTCondor job id, and the memory its job may use (and so its
cache), read from the job ad file condor writes (rhc.config.batch_environment names it)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path

from rhc import defaults

log = logging.getLogger(__name__)

_AD_LINE = re.compile(r"^\s*(ClusterId|ProcId)\s*=\s*(\d+)\s*$", re.MULTILINE)
_REQUEST_MEMORY = re.compile(r"^\s*RequestMemory\s*=\s*(\d+)\s*$", re.MULTILINE)
_CGROUP = Path("/sys/fs/cgroup")


def condor_job_id(job_ad: Path | None) -> str | None:
    """ClusterId.ProcId from condor's job ad file, or None outside condor."""
    if job_ad is None:
        return None
    try:
        found = dict(_AD_LINE.findall(job_ad.read_text(errors="replace")))
    except OSError:
        return None
    if "ClusterId" not in found:
        return None
    return f"{found['ClusterId']}.{found.get('ProcId', '0')}"


def default_worker_name(host: str, condor_id: str | None, pid: int) -> str:
    """host-ClusterId.ProcId under condor (what `condor_q` shows), host-pid elsewhere."""
    short_host = host.split(".")[0] or "worker"
    return f"{short_host}-{condor_id}" if condor_id else f"{short_host}-{pid}"


def job_memory_bytes(job_ad: Path | None) -> int:
    """The memory this worker may use: condor's RequestMemory, else the cgroup limit, else RAM."""
    if job_ad is not None:
        with contextlib.suppress(OSError):
            found = _REQUEST_MEMORY.search(job_ad.read_text(errors="replace"))
            if found:
                return int(found.group(1)) * 2**20
    limit = _cgroup_limit()
    if limit is not None:
        return limit
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def memory_headroom_bytes() -> int:
    """The memory still free to this process: under its cgroup's limit, else what the kernel
    counts available; 0 if neither can be read."""
    limit = _cgroup_limit()
    with contextlib.suppress(OSError, ValueError):
        if limit is not None:
            return max(0, limit - int((_CGROUP / "memory.current").read_text()))
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def cache_budget(requested: int | None, job_memory: int) -> int:
    """The in-process cache's budget: never more than its share of the job's memory."""
    limit = int(defaults.CACHE_SHARE_OF_MEMORY * job_memory)
    if requested is not None and requested > limit:
        log.warning("cache_bytes %d exceeds half this job's memory: using %d", requested, limit)
    return limit if requested is None else min(requested, limit)


def _cgroup_limit() -> int | None:
    """This process's cgroup memory limit, or None where there is none (or none to read)."""
    with contextlib.suppress(OSError, ValueError):
        limit = (_CGROUP / "memory.max").read_text().strip()
        return None if limit == "max" else int(limit)
    return None
