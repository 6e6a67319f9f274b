# SPDX-License-Identifier: BSD-3-Clause
"""Redis shut down or killed mid-job, and back a moment later: results stay exact."""

from __future__ import annotations

import time

import pytest

from tests.chaos.conftest import LIGHT_WORKER, Workload, random_marks


def shutdown(server) -> None:
    """SHUTDOWN, as an admin restarting Redis does: with AOF on, it syncs the file first."""
    client = server.client()
    client.shutdown()
    server.process.wait(30)


def kill(server) -> None:
    """kill -9: with `appendfsync everysec`, up to the last second of writes is lost."""
    server.kill()


@pytest.mark.parametrize("going", [shutdown, kill], ids=["SHUTDOWN with AOF", "kill -9"])
def test_redis_going_mid_job_and_coming_back_loses_and_doubles_nothing(own_redis, rng, going):
    # Given four workers running a map and a reduce of 3,000 tasks of 5 ms, on a Redis with AOF
    # synced once a second
    server, make = own_redis
    cluster = make()
    cluster.start_workers(4, options=lambda name: LIGHT_WORKER)
    work = Workload(cluster.manager(), tasks=3_000, seconds=0.005)
    # When, at a random point, Redis goes, stays away up to two seconds, and comes back on the
    # same port with what its AOF kept
    (mark,) = random_marks(rng, work.tasks, 1)
    work.await_done(mark)
    going(server)
    time.sleep(rng.uniform(0, 2))  # the outage itself, not a wait for anything
    server.start()
    # Then workers and manager reconnect, the manager sends again what Redis lost, and both
    # jobs complete exactly
    work.check()
    # And every worker lived through it
    assert all(process.poll() is None for process in cluster.workers.values()), cluster.logs()
