# SPDX-License-Identifier: BSD-3-Clause
"""Where worker jobs go: the local HTCondor schedd through htcondor2, or the mini pool over its
HTTP API. One interface, chosen by the `condor_pool` setting."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import htcondor2

from rhc.config import Settings, pool_token, user_name
from rhc.errors import RhcError

_STATES = {1: "Idle", 2: "Running", 3: "Removed", 4: "Completed", 5: "Held", 6: "Transferring"}
_PROJECTION = [
    "ClusterId",
    "ProcId",
    "JobStatus",
    "Owner",
    "JobBatchName",
    "HoldReason",
    "LastRejMatchReason",
    "NumJobStarts",
]


@dataclass(frozen=True)
class CondorJob:
    """One worker job as the pool sees it."""

    id: str
    state: str
    reason: str
    owner: str
    batch_name: str


class Scheduler(Protocol):
    """Submits, lists and removes worker jobs."""

    def submit(self, description: htcondor2.Submit, files: list[Path]) -> list[str]:
        """Queue the jobs of description; return their ids (ClusterId.ProcId)."""

    def jobs(self, batch_name: str) -> list[CondorJob]:
        """The jobs of a batch, in submit order."""

    def remove(self, batch_name: str, ids: list[str] = ()) -> int:
        """Remove the given jobs of a batch, or all of them; return how many."""


class HTCondorScheduler:
    """The schedd of this submit host, through the real htcondor2 bindings."""

    def __init__(self) -> None:
        self._schedd = htcondor2.Schedd()

    def submit(self, description: htcondor2.Submit, files: list[Path]) -> list[str]:
        # condor sends the files named by transfer_input_files from the submit directory
        result = self._schedd.submit(description)
        first = result.first_proc()
        return [f"{result.cluster()}.{first + n}" for n in range(result.num_procs())]

    def jobs(self, batch_name: str) -> list[CondorJob]:
        ads = self._schedd.query(constraint=_batch(batch_name), projection=_PROJECTION)
        return sorted((_job(ad) for ad in ads), key=lambda job: _order(job.id))

    def remove(self, batch_name: str, ids: list[str] = ()) -> int:
        spec = list(ids) if ids else _batch(batch_name)
        result = self._schedd.act(htcondor2.JobAction.Remove, spec, reason="rhc condor rm")
        return int(result.get("TotalSuccess", 0))


class MiniPoolScheduler:
    """The mini pool (`rhc minicondor serve`), through its HTTP API."""

    def __init__(self, url: str, token: str | None) -> None:
        from rhc.condor.minipool.client import MiniPoolClient

        self._client = MiniPoolClient(url, token=token)

    def submit(self, description: htcondor2.Submit, files: list[Path]) -> list[str]:
        uploads = {path.name: (path.read_bytes(), path.stat().st_mode & 0o777) for path in files}
        cluster, procs = self._client.submit(str(description), uploads, _user())
        return [f"{cluster}.{proc}" for proc in procs]

    def jobs(self, batch_name: str) -> list[CondorJob]:
        return [
            CondorJob(
                job["id"],
                job["state"],
                job.get("reason") or "",
                job.get("owner") or "",
                job.get("batch_name") or "",
            )
            for job in self._client.jobs()
            if job.get("batch_name") == batch_name
        ]

    def remove(self, batch_name: str, ids: list[str] = ()) -> int:
        if not ids:
            return self._client.remove(batch_name=batch_name)
        removed = 0
        for job_id in ids:
            cluster, _, proc = job_id.partition(".")
            removed += self._client.remove(cluster=int(cluster), proc=int(proc) if proc else None)
        return removed


def scheduler(settings: Settings) -> Scheduler:
    """The scheduler the settings name."""
    pool = settings.condor_pool
    if not pool:
        return HTCondorScheduler()
    if pool.startswith(("http://", "https://")):
        return MiniPoolScheduler(pool, pool_token(settings.pool_token, settings.pool_token_file))
    raise RhcError(
        f"condor_pool = {pool!r}: leave it empty for this host's HTCondor schedd, or give the "
        "http:// URL of a mini pool"
    )


def _batch(batch_name: str) -> str:
    return f'JobBatchName == "{batch_name}"'


def _job(ad: dict) -> CondorJob:
    state = _STATES.get(int(ad.get("JobStatus", 0)), "Unknown")
    reason = ad.get("HoldReason") if state == "Held" else ad.get("LastRejMatchReason")
    return CondorJob(
        f"{ad['ClusterId']}.{ad['ProcId']}",
        state,
        str(reason or ""),
        str(ad.get("Owner", "")),
        str(ad.get("JobBatchName", "")),
    )


def _order(job_id: str) -> tuple[int, int]:
    cluster, _, proc = job_id.partition(".")
    return int(cluster), int(proc or 0)


def _user() -> str:
    return user_name() or "unknown"
