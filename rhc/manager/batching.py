# SPDX-License-Identifier: BSD-3-Clause
"""How many tasks go in one message: many tiny tasks per message, one long task per message."""

from __future__ import annotations

import math

from rhc import defaults

ROUND_TRIPS_PER_BATCH = 4
"""A batch lasts at least this many round trips between its workers and Redis: its read, the
check that it never ran and the storing of its results hide behind the batch before it, and a
worker far from Redis (another site) never waits for its next batch."""

POOL_BATCHES_PER_SECOND = 500
"""The batches per second a whole pool may ask of Redis and of the notebook, each of which pays
some 0.1-0.3 ms of CPU per batch (benchmarks/swarm.py): a batch lasts at least workers / 500
seconds, so 2,000 workers on half-second tasks get 4 s batches of 8, not 4,000 messages a
second. Below 25 workers the target duration is the larger."""

_NEGLIGIBLE_SECONDS = 0.005
"""A batch this short cannot unbalance workers: what is left goes in one batch if all of it is
this short (a 10-task map of quick tasks is one message), else in one batch per worker."""


class TaskTime:
    """The time a task takes, measured batch by batch, recent batches weighing most."""

    def __init__(self, seconds_per_task: float | None = None) -> None:
        self.seconds_per_task = seconds_per_task

    def observe(self, seconds: float, tasks: int) -> None:
        """Fold in a batch of `tasks` tasks that took `seconds` to run."""
        if tasks <= 0:
            return
        measured = max(seconds, 0.0) / tasks
        if self.seconds_per_task is None:
            self.seconds_per_task = measured
        else:
            self.seconds_per_task = 0.7 * self.seconds_per_task + 0.3 * measured


class BatchSizer(TaskTime):
    """Sizes batches from the measured time per task, keeping every worker fed to the end.

    Until a duration is known (a function never run before), batches hold one task each, so that
    long tasks spread over all workers from the start. The mean time per task is remembered per
    function between jobs, so a re-run starts at the right size. round_trip: the seconds the
    workers' round trips to Redis take (the slowest's); batches last ROUND_TRIPS_PER_BATCH of
    them at least, and a large pool's last long enough that Redis and the notebook keep up
    (POOL_BATCHES_PER_SECOND).
    """

    def __init__(
        self,
        seconds_per_task: float | None = None,
        *,
        target_seconds: float = defaults.DEFAULT_TARGET_BATCH_SECONDS,
        max_tasks: int = defaults.DEFAULT_MAX_BATCH_TASKS,
        round_trip: float = 0.0,
    ) -> None:
        super().__init__(seconds_per_task)
        self._target = max(target_seconds, ROUND_TRIPS_PER_BATCH * round_trip)
        self._max_tasks = max_tasks

    def next_size(
        self, remaining: int | None, workers: int, *, seconds_per_task: float | None = None
    ) -> int:
        """The size of the next batch.

        Parameters:
          remaining: tasks still to send, if known (the input is exhausted), else None.
          workers: live workers able to run the job.
          seconds_per_task: for tasks known to take this long rather than the measured mean
            (those whose data their worker cached).
        """
        per_task = self.seconds_per_task if seconds_per_task is None else seconds_per_task
        if per_task is None:
            return 1
        size = self._max_tasks
        if per_task > 0:
            target = max(self._target, workers / POOL_BATCHES_PER_SECOND)
            size = min(size, round(target / per_task))
        if remaining is not None:
            if remaining * per_task <= _NEGLIGIBLE_SECONDS:
                return max(min(size, remaining), 1)  # too little to share: one message, one reply
            workers = max(workers, 1)
            share = math.ceil(remaining / workers)
            if share * per_task > _NEGLIGIBLE_SECONDS:
                # Leave each worker about two batches of what is left, so none idles at the end.
                share = math.ceil(remaining / (2 * workers))
            size = min(size, share)
        return max(size, 1)
