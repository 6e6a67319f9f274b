# SPDX-License-Identifier: BSD-3-Clause
"""What every chaos scenario shares: two jobs under fire and the check that both came out exact.

A scenario injects faults at random points of a job's progress (the seed is printed, and
RHC_CHAOS_SEED replays it). The jobs are a map, whose results must be every square in input
order, and a reduce of one-count tallies merged on the workers, which shows any task lost or
counted twice."""

from __future__ import annotations

import operator
import os
import random
import sys
from collections import Counter
from functools import partial

import pytest

from rhc import Manager
from rhc.wire.protocol import RUNNING
from tests import fixtures
from tests.conftest import Cluster, wait_for

LIGHT_WORKER = ["--preload", "tests.fixtures"]
"""Workers that import only the test tasks: a replacement joins in about a second."""


class Workload:
    """A map and a reduce over the same tasks, submitted together and checked together."""

    def __init__(self, manager: Manager, tasks: int, seconds: float) -> None:
        self.tasks = tasks
        self.map = manager.submit(partial(fixtures.sleep_square, seconds=seconds), range(tasks))
        self.tally = manager.submit(
            partial(fixtures.tally, seconds=seconds), range(tasks), reduce=operator.add
        )

    @property
    def done(self) -> int:
        return self.map.progress.done

    def await_done(self, count: int, timeout: float = 120) -> None:
        def reached() -> bool:
            for job in (self.map, self.tally):
                if job.state != RUNNING:
                    job.results()  # raises what ended it early
            return self.done >= count

        wait_for(reached, timeout, f"{count} of {self.tasks} tasks to finish")

    def check(self, timeout: float = 300) -> None:
        """Both jobs complete: every square exactly, every task counted exactly once."""
        assert self.map.results(timeout=timeout) == [x * x for x in range(self.tasks)]
        counts = self.tally.results(timeout=timeout)
        lost = [x for x in range(self.tasks) if counts[x] == 0]
        doubled = {x: n for x, n in counts.items() if n != 1}
        assert not lost and not doubled, f"lost {lost[:20]}, counted more than once {doubled}"
        assert counts == Counter(range(self.tasks))


@pytest.fixture
def rng() -> random.Random:
    seed = int(os.environ.get("RHC_CHAOS_SEED") or random.SystemRandom().randrange(2**32))
    print(f"chaos seed: RHC_CHAOS_SEED={seed}", file=sys.stderr)
    return random.Random(seed)


def random_marks(rng: random.Random, tasks: int, count: int) -> list[int]:
    """count distinct points of a job's progress, spread over its middle, in order."""
    return sorted(rng.sample(range(tasks // 20, tasks * 9 // 10), count))


def live_workers(cluster: Cluster) -> list[str]:
    return [name for name, process in cluster.workers.items() if process.poll() is None]
