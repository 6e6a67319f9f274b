# SPDX-License-Identifier: BSD-3-Clause
"""Wrong URLs and passwords, and a Redis that restarts, crashes or vanishes mid-job."""

from __future__ import annotations

import time

import pytest

from rhc import Manager
from rhc.config import new_secret
from rhc.errors import BrokerAuthenticationError, BrokerConnectionError
from rhc.local import RedisServer, free_port
from tests import fixtures
from tests.conftest import Cluster, wait_for

SECRET = new_secret()


def test_a_wrong_url_fails_fast_with_the_url_and_what_to_check():
    port = free_port()
    started = time.monotonic()
    with pytest.raises(BrokerConnectionError) as caught:
        Manager(f"redis://127.0.0.1:{port}", secret=SECRET)
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert f"cannot reach Redis at redis://127.0.0.1:{port}" in message
    assert "Check the URL" in message


def test_a_wrong_password_is_refused_without_showing_it(redis_server):
    with pytest.raises(BrokerAuthenticationError) as caught:
        Manager(f"redis://:hunter2-wrong@127.0.0.1:{redis_server.port}", secret=SECRET)
    message = str(caught.value)
    assert "the password was refused" in message
    assert "hunter2" not in message and ":***@" in message
    assert "hunter2" not in repr(caught.value.__cause__)


def test_a_missing_password_says_one_is_required(redis_server):
    with pytest.raises(BrokerAuthenticationError, match="requires a password"):
        Manager(redis_server.url, secret=SECRET)


def test_a_url_that_is_not_redis_is_refused_by_configuration():
    with pytest.raises(Exception, match="must start with redis://"):
        Manager("http://127.0.0.1:6379", secret=SECRET)


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(tmp_path / "redis", password=new_secret(), appendonly=True).start()
    clusters: list[Cluster] = []

    def make(**settings: object) -> Cluster:
        cluster = Cluster(server, tmp_path, **settings)
        clusters.append(cluster)
        return cluster

    yield server, make
    server.start() if server.process.poll() is not None else None
    for cluster in clusters:
        cluster.stop()
    server.stop()


@pytest.mark.parametrize(
    "going", ["stop", "kill"], ids=["graceful shutdown", "kill -9 losing recent writes"]
)
def test_a_redis_restart_mid_job_is_survived(own_redis, going):
    # Given a job running on two workers, on a Redis whose AOF is synced once a second
    server, make = own_redis
    cluster = make()
    cluster.start_workers(2)
    job = cluster.manager().submit(fixtures.sleep_square, range(400))
    wait_for(lambda: job.progress.done > 50, 60, "the job to be under way")
    # When Redis goes away (shutting down cleanly, or killed) and comes back on the same port
    getattr(server, going)()
    server.start()
    # Then everyone reconnects, the manager sends again what was lost, and the result is exact
    assert job.results(timeout=120) == [x * x for x in range(400)]


def test_redis_gone_for_good_ends_the_job_with_a_clear_error(own_redis):
    server, make = own_redis
    cluster = make(reconnect_timeout=2.0)
    cluster.start_workers(1)
    job = cluster.manager().submit(fixtures.sleep_for, [0.5] * 20)
    wait_for(lambda: job.progress.done >= 1, 60, "the job to be under way")
    server.kill()
    started = time.monotonic()
    with pytest.raises(BrokerConnectionError) as caught:
        job.results(timeout=60)
    assert time.monotonic() - started < 15
    assert "did not come back within 2 s" in str(caught.value)


def test_the_password_never_shows_in_reprs_or_logs(redis_server, caplog):
    url = f"redis://:{redis_server.password}@127.0.0.1:{redis_server.port}"
    manager = Manager(url, secret=SECRET)
    assert redis_server.password not in repr(manager)
    assert redis_server.password not in repr(manager.settings)
    assert SECRET not in repr(manager.settings)
    assert ":***@" in repr(manager)
    assert redis_server.password not in caplog.text
