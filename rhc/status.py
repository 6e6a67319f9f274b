# SPDX-License-Identifier: BSD-3-Clause
"""What is going on in a namespace: workers, queues and jobs, as tables for notebooks and
terminals (Manager.workers() and `rhc status`)."""

from __future__ import annotations

import html
import time
from collections.abc import Sequence

import redis

from rhc.protocol import GROUP, JobRecord, Keys, WorkerInfo

_WORKER_COLUMNS = (
    "name",
    "host",
    "condor id",
    "state",
    "job",
    "task",
    "done",
    "failed",
    "tasks/s",
    "cpu %",
    "rss MB",
    "heartbeat",
    "python",
    "cloudpickle",
    "rhc",
)


class Table:
    """Rows of text shown aligned in a terminal and as HTML in Jupyter."""

    def __init__(self, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        self.headers = list(headers)
        self.rows = [["" if cell is None else str(cell) for cell in row] for row in rows]

    def __str__(self) -> str:
        widths = [
            max(len(cell) for cell in column)
            for column in zip(self.headers, *self.rows, strict=True)
        ]
        lines = [self.headers, ["-" * width for width in widths], *self.rows]
        return "\n".join(
            "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
            for line in lines
        )

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(cell)}</th>" for cell in self.headers)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
            for row in self.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __len__(self) -> int:
        return len(self.rows)


class WorkerTable(Table):
    """The live workers; `.workers` holds the full WorkerInfo records."""

    def __init__(self, workers: Sequence[WorkerInfo], compat: str | None = None) -> None:
        self.workers = list(workers)
        now = time.time()
        rows = [
            (
                info.name,
                info.host,
                info.condor_id,
                _state(info, compat),
                info.job,
                info.task,
                info.done,
                info.failed,
                info.tasks_per_second,
                info.cpu_percent,
                info.rss_mb,
                f"{now - info.heartbeat:.1f} s ago",
                info.versions.get("python"),
                info.versions.get("cloudpickle"),
                info.versions.get("rhc"),
            )
            for info in self.workers
        ]
        super().__init__(_WORKER_COLUMNS, rows)


def _state(info: WorkerInfo, compat: str | None) -> str:
    if compat is not None and info.compat != compat:
        return f"{info.state} (incompatible)"
    return info.state


def queue_table(client: redis.Redis, keys: Keys) -> Table:
    """Each task stream of the namespace: batches waiting, and taken but unfinished."""
    rows = []
    for stream in sorted(client.scan_iter(match=keys.task_stream_pattern(), count=100)):
        length = client.xlen(stream)
        try:
            taken = client.xpending(stream, GROUP)["pending"]
        except redis.ResponseError:
            taken = 0
        rows.append((stream.decode().removeprefix(keys.prefix), length - taken, taken))
    return Table(("stream", "waiting batches", "taken batches"), rows)


def job_table(client: redis.Redis, keys: Keys) -> Table:
    """The running jobs: who sent them, and how far they are."""
    rows = []
    for job_id, active in client.zrange(keys.jobs, 0, -1, withscores=True):
        raw = client.hgetall(keys.job(job_id.decode()))
        if not raw:
            continue
        record = JobRecord.from_fields(raw)
        total = "?" if record.total is None else record.total
        rows.append(
            (
                job_id.decode(),
                record.owner,
                record.state,
                record.submitted,
                total,
                record.done,
                f"{time.time() - active:.0f} s ago",
            )
        )
    return Table(("job", "owner", "state", "sent", "total", "done", "last sent"), rows)


def worker_infos(client: redis.Redis, keys: Keys) -> list[WorkerInfo]:
    infos = []
    for raw in client.hgetall(keys.workers).values():
        try:
            infos.append(WorkerInfo.decode(raw))
        except (ValueError, TypeError):
            continue
    return sorted(infos, key=lambda info: info.name)
