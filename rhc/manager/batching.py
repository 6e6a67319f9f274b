# SPDX-License-Identifier: BSD-3-Clause
"""How many tasks go in one message: many tiny tasks per message, one long task per message."""

from __future__ import annotations

import math

from rhc import defaults

ROUND_TRIPS_PER_BATCH = 4
"""A batch lasts at least this many round trips between its workers and Redis: its read, the
check that it never ran and the storing of its results hide behind the batch before it, and a
worker far from Redis (another site) never waits for its next batch."""

_NEGLIGIBLE_SECONDS = 0.005
"""A batch this short cannot unbalance workers: what is left goes in one batch if all of it is
this short (a 10-task map of quick tasks is one message), else in one batch per worker."""


class BatchSizer:
    """Sizes batches from the measured time per task, keeping every worker fed to the end.

    Until a duration is known (a function never run before), batches hold one task each, so that
    long tasks spread over all workers from the start. The mean time per task is remembered per
    function between jobs, so a re-run starts at the right size. round_trip: the seconds the
    workers' round trips to Redis take (the slowest's); batches last ROUND_TRIPS_PER_BATCH of
    them at least.
    """

    def __init__(
        self,
        seconds_per_task: float | None = None,
        *,
        target_seconds: float = defaults.DEFAULT_TARGET_BATCH_SECONDS,
        max_tasks: int = defaults.DEFAULT_MAX_BATCH_TASKS,
        round_trip: float = 0.0,
    ) -> None:
        self.seconds_per_task = seconds_per_task
        self._target = max(target_seconds, ROUND_TRIPS_PER_BATCH * round_trip)
        self._max_tasks = max_tasks

    def observe(self, seconds: float, tasks: int) -> None:
        """Fold in a batch of `tasks` tasks that took `seconds` to run."""
        if tasks <= 0:
            return
        measured = max(seconds, 0.0) / tasks
        if self.seconds_per_task is None:
            self.seconds_per_task = measured
        else:
            self.seconds_per_task = 0.7 * self.seconds_per_task + 0.3 * measured

    def next_size(self, remaining: int | None, workers: int) -> int:
        """The size of the next batch.

        Parameters:
          remaining: tasks still to send, if known (the input is exhausted), else None.
          workers: live workers able to run the job.
        """
        if self.seconds_per_task is None:
            return 1
        size = self._max_tasks
        if self.seconds_per_task > 0:
            size = min(size, int(self._target / self.seconds_per_task))
        if remaining is not None:
            if remaining * self.seconds_per_task <= _NEGLIGIBLE_SECONDS:
                return max(min(size, remaining), 1)  # too little to share: one message, one reply
            workers = max(workers, 1)
            share = math.ceil(remaining / workers)
            if share * self.seconds_per_task > _NEGLIGIBLE_SECONDS:
                # Leave each worker about two batches of what is left, so none idles at the end.
                share = math.ceil(remaining / (2 * workers))
            size = min(size, share)
        return max(size, 1)
