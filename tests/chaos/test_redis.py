# SPDX-License-Identifier: BSD-3-Clause
"""Redis shut down or killed mid-job, and back a moment later, or the notebook's connections
cut: results stay exact."""

from __future__ import annotations

import time
from functools import partial

import pytest

from rhc.wire.keys import Keys
from rhc.wire.protocol import JOB_DONE
from tests import fixtures
from tests.chaos.conftest import LIGHT_WORKER, Workload, random_marks
from tests.conftest import wait_for


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


def test_the_notebooks_connections_cut_mid_job_lose_nothing_and_keep_its_count(
    cluster, redis_client, caplog
):
    # Given two workers running a map of 2,000 tasks of 5 ms, 600 of them done
    cluster.start_workers(2, options=lambda name: LIGHT_WORKER)
    manager = cluster.manager()
    job = manager.submit(partial(fixtures.sleep_square, seconds=0.005), range(2000))
    wait_for(lambda: job.progress.done >= 600, 60, "600 tasks to finish")

    # When every connection of the notebook's Redis user is cut (a NAT or firewall dropping
    # them), until the notebook notices: while Redis itself lost nothing
    def cut() -> bool:
        redis_client.client_kill_filter(user=cluster.users.manager.name)
        return "lost Redis" in caplog.text

    wait_for(cut, 30, "the notebook to notice that its connections were cut")
    # Then the job completes exactly, and its record still counts every task done, once
    assert job.results(timeout=120) == [x * x for x in range(2000)]
    assert int(redis_client.hget(Keys(cluster.namespace).job(job.id), JOB_DONE)) == 2000
    manager.close()
