# SPDX-License-Identifier: BSD-3-Clause
"""Who a worker is: its name, and its HTCondor job id when it runs under condor."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

_AD_LINE = re.compile(r"^\s*(ClusterId|ProcId)\s*=\s*(\d+)\s*$", re.MULTILINE)


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
