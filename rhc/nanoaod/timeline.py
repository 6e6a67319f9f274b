# SPDX-License-Identifier: BSD-3-Clause
"""The timeline of a job's tasks, to see how well its workers were kept busy.

It follows the original tool's ``plot_timeflow``: one bar per task, one row per worker, and the
efficiency, mean task time and mean time between tasks in the title.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

from rhc.errors import ArgumentError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["Summary", "TaskSpan", "efficiency", "plot_timeflow", "summarize"]


@dataclass(frozen=True)
class TaskSpan:
    """When one task ran, and on which worker; times are epoch seconds on the worker's clock."""

    worker: str
    started: float
    finished: float
    events: int = 0

    def __post_init__(self) -> None:
        if self.finished < self.started:
            raise ArgumentError(
                f"task on {self.worker!r} finished ({self.finished}) before it started "
                f"({self.started})"
            )

    @property
    def seconds(self) -> float:
        return self.finished - self.started


@dataclass(frozen=True)
class Summary:
    """How a set of tasks used its workers; ``str()`` gives the line shown above the timeline."""

    workers: int
    tasks: int
    wall_seconds: float
    efficiency: float
    mean_task_seconds: float
    mean_gap_seconds: float
    events: int
    events_per_second: float

    def __str__(self) -> str:
        return (
            f"efficiency (filled/total) = {100.0 * self.efficiency:.1f}%, "
            f"mean task time = {1e3 * self.mean_task_seconds:.1f} ms, "
            f"mean intertask time = {1e3 * self.mean_gap_seconds:.1f} ms"
        )


def efficiency(spans: Iterable[TaskSpan]) -> float:
    """The fraction of the workers' time spent running tasks, from the first start to the last
    finish: sum of task durations / (wall time * distinct workers).

    A worker counts from the job's first start even if it joined late, as in the original tool,
    so late or idle workers lower the figure. Tasks that all start and finish at the same instant
    leave no idle time, and give 1.0.

    Raises:
      ValueError: if there are no spans.
    """
    spans = _nonempty(spans)
    wall = _wall(spans)
    if wall == 0:
        return 1.0
    busy = math.fsum(span.seconds for span in spans)
    return busy / (wall * len({span.worker for span in spans}))


def summarize(spans: Iterable[TaskSpan]) -> Summary:
    """The figures of merit of a set of tasks.

    The mean gap is over consecutive tasks on the same worker (the next start minus the previous
    finish, negative if they overlapped), and 0 if no worker ran two tasks.

    Raises:
      ValueError: if there are no spans.
    """
    spans = _nonempty(spans)
    wall = _wall(spans)
    gaps = [
        after.started - before.finished
        for rows in _rows(spans).values()
        for before, after in pairwise(rows)
    ]
    events = sum(span.events for span in spans)
    return Summary(
        workers=len({span.worker for span in spans}),
        tasks=len(spans),
        wall_seconds=wall,
        efficiency=efficiency(spans),
        mean_task_seconds=math.fsum(span.seconds for span in spans) / len(spans),
        mean_gap_seconds=math.fsum(gaps) / len(gaps) if gaps else 0.0,
        events=events,
        events_per_second=events / wall if wall > 0 else 0.0,
    )


def plot_timeflow(
    spans: Iterable[TaskSpan],
    path: str | os.PathLike[str] | None = None,
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> tuple[Figure, Summary]:
    """Draw one bar per task and one row per worker (sorted by name), x in seconds since the
    first start, with the summary in the title; save a PNG at ``path`` if given.

    Without ``ax`` the figure is made with the Agg canvas directly, leaving pyplot's state and
    backend alone (workers and scripts need no display). Tasks longer than the mean by five
    standard deviations are drawn in red, as in the original tool.

    Returns:
      The figure drawn on and the summary shown in its title.

    Raises:
      ValueError: if there are no spans.
    """
    # Imported here: workers never plot, and need not have matplotlib installed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    spans = _nonempty(spans)
    summary = summarize(spans)
    rows = _rows(spans)
    if ax is None:
        figure = Figure(figsize=(15, min(3 + 0.1 * len(rows), 15)), layout="constrained")
        FigureCanvasAgg(figure)
        ax = figure.add_subplot()
    else:
        # The root figure, even when the axes sit in a subfigure, so that it can be saved.
        figure = ax.figure.figure

    first = min(span.started for span in spans)
    ordered = [(row, span) for row, name in enumerate(rows) for span in rows[name]]
    durations = [span.seconds for _, span in ordered]
    mean = summary.mean_task_seconds
    spread = math.sqrt(math.fsum((d - mean) ** 2 for d in durations) / len(durations))
    ax.barh(
        [row for row, _ in ordered],
        durations,
        left=[span.started - first for _, span in ordered],
        height=0.8,
        linewidth=0.5,
        edgecolor="k",
        color=["C3" if d > mean + 5 * spread else "C0" for d in durations],
    )
    if len(rows) <= 40:
        ax.set_yticks(range(len(rows)), list(rows))
    ax.set_xlabel("elapsed time since start [s]")
    ax.set_ylabel("worker")
    if summary.wall_seconds > 0:
        ax.set_xlim(0.0, summary.wall_seconds)
    ax.set_title(f"{title}\n{summary}" if title else str(summary))
    if path is not None:
        figure.savefig(path, format="png")
    return figure, summary


def _nonempty(spans: Iterable[TaskSpan]) -> list[TaskSpan]:
    spans = list(spans)
    if not spans:
        raise ArgumentError("no task spans: nothing ran")
    return spans


def _wall(spans: list[TaskSpan]) -> float:
    return max(span.finished for span in spans) - min(span.started for span in spans)


def _rows(spans: list[TaskSpan]) -> dict[str, list[TaskSpan]]:
    """Each worker's tasks in the order they ran, workers sorted by name."""
    rows: dict[str, list[TaskSpan]] = defaultdict(list)
    for span in spans:
        rows[span.worker].append(span)
    return {
        name: sorted(rows[name], key=lambda span: (span.started, span.finished))
        for name in sorted(rows)
    }
