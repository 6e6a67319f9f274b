# SPDX-License-Identifier: BSD-3-Clause
"""Workers on the mini pool, evicted again and again while jobs run: results stay exact."""

from __future__ import annotations

import pytest

from rhc.wire.protocol import RUNNING
from tests.chaos.conftest import LIGHT_WORKER, Workload
from tests.conftest import wait_for
from tests.integration.test_condor import Pool, submit_workers

EVICT_EVERY = 1.5
"""Seconds between evictions: the pool picks a running job and evicts it (SIGTERM, then back to
Idle, and it runs again as a new process with the same condor id)."""


@pytest.fixture
def pool(tmp_path):
    pool = Pool(tmp_path / "pool", slots=4, evict_every=EVICT_EVERY)
    yield pool
    pool.stop()


def evictions(pool: Pool) -> int:
    return sum(job["evictions"] for job in pool.jobs().values())


def test_workers_evicted_over_and_over_by_the_pool_lose_and_double_nothing(make_cluster, pool):
    # Given four workers submitted to a pool that evicts one every 1.5 s
    cluster = make_cluster(condor_pool=pool.url, pool_token_file=str(pool.token_file))
    submit_workers(cluster, 4, "--", *LIGHT_WORKER)
    manager = cluster.manager()
    wait_for(lambda: len(manager.workers().workers) >= 2, 60, "workers to join")
    before = evictions(pool)
    # When a map and a reduce of 3,000 tasks of 10 ms run through at least five evictions
    work = Workload(manager, tasks=3_000, seconds=0.01)
    wait_for(lambda: evictions(pool) >= before + 5 or work.map.state != RUNNING, 120, "evictions")
    assert work.map.state == RUNNING, "the job ended before five evictions: make it longer"
    # Then both jobs complete exactly
    work.check()
