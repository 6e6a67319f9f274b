# SPDX-License-Identifier: BSD-3-Clause
"""Tables for notebooks and terminals: the live workers (Manager.workers(), `rhc status`), and
every table the command line prints."""

from __future__ import annotations

import html
import time
from collections.abc import Collection, Sequence

from rhc.wire.protocol import WorkerInfo

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
    "coffea",
)


class Table:
    """Rows of text shown aligned in a terminal and as HTML in Jupyter."""

    rule = "-"
    """What the line under the headers is drawn with; "" for none (as condor's own tools)."""

    def __init__(self, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        self.headers = list(headers)
        self.rows = [["" if cell is None else str(cell) for cell in row] for row in rows]

    def __str__(self) -> str:
        widths = [
            max(len(cell) for cell in column)
            for column in zip(self.headers, *self.rows, strict=True)
        ]
        rule = [[self.rule * width for width in widths]] if self.rule else []
        lines = [self.headers, *rule, *self.rows]
        return "\n".join(
            "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
            for line in lines
        )

    def __repr__(self) -> str:
        """The aligned text: what a plain Python prompt shows for m.workers()."""
        return str(self)

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
    """The live workers; `.workers` holds the full WorkerInfo records, `.runnable` those of them
    that can run this notebook's jobs (runnable: their names; None: all of them)."""

    def __init__(
        self,
        workers: Sequence[WorkerInfo],
        compat: str | None = None,
        runnable: Collection[str] | None = None,
    ) -> None:
        self.workers = list(workers)
        self.runnable = [info for info in self.workers if runnable is None or info.name in runnable]
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
                info.versions.get("coffea") or "-",
            )
            for info in self.workers
        ]
        super().__init__(_WORKER_COLUMNS, rows)


def _state(info: WorkerInfo, compat: str | None) -> str:
    if compat is not None and info.compat != compat:
        return f"{info.state} (incompatible)"
    return info.state
