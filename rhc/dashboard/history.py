# SPDX-License-Identifier: BSD-3-Clause
"""Rates from successive snapshots: tasks and failures per second in each namespace over the
last minutes (the overview's chart), and each job's tasks per second."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from rhc.dashboard.snapshot import Snapshot
from rhc.wire.activity import FAILED, SUCCEEDED

WINDOW = 600.0
"""Seconds of history the chart shows."""

JOB_RATE_SPAN = 5.0
"""Seconds over which a job's rate is measured: long enough to smooth batches arriving in
bursts, short enough to follow a change."""


@dataclass(frozen=True)
class _Sample:
    taken: float
    finished: dict[str, tuple[float, float]]
    """Per namespace: tasks succeeded and failed so far."""
    done: dict[tuple[str, str], dict[str, float]]
    """Per (namespace, job): tasks done so far ("done"), and what its tasks counted."""


class History:
    """The samples of the last WINDOW seconds."""

    def __init__(self) -> None:
        self._samples: deque[_Sample] = deque()

    def add(self, snapshot: Snapshot) -> None:
        if not snapshot.redis_up:
            return
        finished = {
            view.name: (view.counters.get(SUCCEEDED, 0.0), view.counters.get(FAILED, 0.0))
            for view in snapshot.namespaces
        }
        done = {
            (view.name, job.id): {"done": job.record.done, **job.counts}
            for view in snapshot.namespaces
            for job in view.jobs
        }
        self._samples.append(_Sample(snapshot.taken, finished, done))
        while self._samples and snapshot.taken - self._samples[0].taken > WINDOW:
            self._samples.popleft()

    def rates(self, namespace: str) -> list[tuple[float, float, float]]:
        """(time, tasks/s, failures/s) between consecutive samples: the chart's points."""
        points = []
        for before, after in zip(self._samples, list(self._samples)[1:], strict=False):
            elapsed = after.taken - before.taken
            if elapsed <= 0 or namespace not in before.finished or namespace not in after.finished:
                continue
            (ok0, bad0), (ok1, bad1) = before.finished[namespace], after.finished[namespace]
            # a counter that went down: Redis lost its data; no rate across that gap
            if ok1 >= ok0 and bad1 >= bad0:
                points.append(
                    (after.taken, (ok1 - ok0 + bad1 - bad0) / elapsed, (bad1 - bad0) / elapsed)
                )
        return points

    def job_rate(self, namespace: str, job: str, name: str = "done") -> float:
        """Tasks (or what they counted: `name`) per second over the last JOB_RATE_SPAN
        seconds (0 until two samples)."""
        key = (namespace, job)
        samples = [sample for sample in self._samples if key in sample.done]
        if len(samples) < 2:
            return 0.0
        last = samples[-1]
        first = next(
            (s for s in samples if last.taken - s.taken <= JOB_RATE_SPAN and s is not last),
            samples[-2],
        )
        elapsed = last.taken - first.taken
        if elapsed <= 0 or name not in last.done[key]:
            return 0.0
        return max(0.0, (last.done[key][name] - first.done[key].get(name, 0.0)) / elapsed)
