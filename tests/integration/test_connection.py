# SPDX-License-Identifier: BSD-3-Clause
"""A password that never shows; pipelines sent without redis-py's reply handling; a worker's
read whose connection breaks; a manager closed under its jobs. Wrong URLs and passwords, and a
Redis gone for good, are in test_bad_input.py; a Redis restarting or crashing mid-job is in
tests/chaos/test_redis.py."""

from __future__ import annotations

import threading

import pytest
import redis

from rhc import Manager
from rhc.config import new_secret, resolve_settings
from rhc.errors import ClientClosedError, JobCancelledError
from rhc.wire.connection import (
    Reconnector,
    connect,
    execute,
    overlapped,
    read_streams,
    run_script,
)
from rhc.wire.keys import Keys
from rhc.wire.protocol import GROUP, JOB_SUBMITTED, compat_tag, versions
from rhc.wire.signing import new_task_key
from rhc.worker.store import TaskStore
from tests import fixtures
from tests.conftest import wait_for

SECRET = new_secret()
TASK_KEY = new_task_key()


def test_the_password_never_shows_in_reprs_or_logs(redis_server, caplog):
    admin = redis_server.admin
    url = f"redis://{admin.name}:{admin.password}@127.0.0.1:{redis_server.port}"
    manager = Manager(url, secret=SECRET, task_key=TASK_KEY)
    assert redis_server.admin.password not in repr(manager)
    assert redis_server.admin.password not in repr(manager.settings)
    assert SECRET not in repr(manager.settings)
    assert TASK_KEY.split(":")[1] not in repr(manager.settings) + repr(manager)
    assert ":***@" in repr(manager)
    assert redis_server.admin.password not in caplog.text


def test_a_raw_pipeline_gives_redis_replies_in_order_with_the_work_done_meanwhile(redis_client):
    # Given the pipelines on a small map's way, sent without redis-py's reply handling
    with redis_client.pipeline(transaction=False) as pipe:
        pipe.set("raw:a", "1")
        pipe.incr("raw:n")
        pipe.hget("raw:h", "f")
        pipe.get("raw:a")
        replies = execute(pipe)
    # and work done while Redis answers: it sees the commands already sent (another
    # connection reads what the first one wrote), so it cannot be done before they go out
    done, read = overlapped(
        redis_client,
        [("SET", "raw:sent", "yes"), ("GET", "raw:a")],
        lambda: wait_for(lambda: redis_client.get("raw:sent"), 10, "the commands to be sent"),
    )
    # Then each reply is Redis's own (OK, not redis-py's True), in order, and the work done
    # while Redis answered comes back with them
    assert replies == [b"OK", 1, None, b"1"]
    assert (done, read) == (b"yes", [b"OK", b"1"])
    # and a failed command raises as in a pipeline
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        overlapped(redis_client, [("HGET", "raw:a", "f"), ("GET", "raw:a")], lambda: None)
    assert redis_client.incr("raw:n") == 2


@pytest.mark.parametrize("resp", [2, 3])
def test_stream_reads_and_scripts_sent_raw_read_as_redis_py_would(redis_server, resp):
    # Given a client speaking RESP2 or RESP3 (a map where RESP2 sends pairs), a stream with an
    # entry read by a group and then deleted, and Redis's scripts flushed (as by a restart)
    admin = redis_server.admin
    client = redis.Redis(
        port=redis_server.port, username=admin.name, password=admin.password, protocol=resp
    )
    stream = f"raw:stream:{resp}"
    client.xgroup_create(stream, "g", id="0", mkstream=True)
    first = client.xadd(stream, {"job": "j", "batch": "0"})
    deleted = client.xadd(stream, {"job": "j", "batch": "1"})
    script = client.register_script("return redis.call('XLEN', KEYS[1]) + tonumber(ARGV[1])")
    loaded = run_script(client, script, [stream], [10])
    # When they are read without waiting, and with a wait that ends empty
    read = read_streams(client, {stream: "0"}, count=1, block=None)
    client.xreadgroup("g", "c", {stream: ">"}, count=2)
    client.xdel(stream, deleted)
    pending = read_streams(client, {stream: "0"}, count=2, block=None, group=("g", "c"))
    waited = read_streams(client, {stream: "$"}, count=1, block=10)
    client.script_flush()
    # Then entries come as redis-py gives them, a deleted one without fields, and the script
    # loaded before is loaded again
    assert read == [(stream.encode(), [(first, {b"job": b"j", b"batch": b"0"})])]
    assert pending == [(stream.encode(), [(first, {b"job": b"j", b"batch": b"0"}), (deleted, {})])]
    assert waited == []
    assert (loaded, run_script(client, script, [stream], [10])) == (12, 11)
    client.close()


def test_a_read_whose_reply_was_lost_with_its_connection_still_gets_its_task(cluster, redis_client):
    # Given a worker's task store, and a task its read was given by Redis whose reply never
    # arrived (taken here for the worker by another client: Redis holds it as the worker's)
    settings = resolve_settings(config_file=cluster.worker_config_file)
    client = connect(settings, role="worker")
    store = TaskStore(
        client,
        Keys(cluster.namespace),
        compat=compat_tag(versions()),
        name="w",
        secret=settings.secret,
        reconnect=Reconnector(settings, 10),
        read_reconnect=Reconnector(settings, 10),
    )
    store.ensure_groups()
    with cluster.manager() as manager:
        manager.submit(fixtures.square, [3])  # sent by the job's thread

        def taken() -> list:
            return redis_client.xreadgroup(GROUP, "w", {store.shared: ">"}, count=1)

        ((_, ((given, _),)),) = wait_for(taken, 10, "the task to be sent")
    # When its next read, waiting for more, loses its connection
    read: list = []
    reading = threading.Thread(target=lambda: read.extend(store.read(4.0, check=repr)))
    reading.start()

    def waiting() -> list[int]:
        return [c["id"] for c in redis_client.client_list() if c["cmd"] == "xreadgroup"]

    redis_client.client_kill_filter(_id=wait_for(waiting, 10, "the read to wait")[0])
    reading.join()
    # Then the read after it returns the task that never arrived, which no one else would run
    assert [entry.entry_id for entry, _ in read] == [given]
    store.close_reads()
    client.close()


def test_a_closed_managers_job_ends_at_once_and_its_tasks_stay_for_a_reattach(
    cluster, redis_client, caplog
):
    # Given a job sent while no worker runs, its thread waiting for results
    manager = cluster.manager()
    job = manager.submit(fixtures.square, range(4))
    record = Keys(cluster.namespace).job(job.id)
    wait_for(lambda: redis_client.hget(record, JOB_SUBMITTED) == b"4", 10, "every task sent")
    # When its manager is closed
    manager.close()
    # Then the job ends saying why and how to go on, without reconnecting behind the user's back
    with pytest.raises(ClientClosedError, match=r"closed while .*re-attach with Manager\(\)\.job"):
        job.results(timeout=10)
    assert "lost Redis" not in caplog.text
    # and its tasks stay in Redis: a re-attach gets every result once a worker runs them
    cluster.start_workers(1)
    with cluster.manager() as again:
        assert again.job(job.id).results(timeout=60) == [0, 1, 4, 9]


def test_a_job_still_sending_when_its_manager_closes_is_cancelled_not_left_half_sent(
    cluster, redis_client
):
    # Given a job of more tasks than its sending window holds while no worker runs
    manager = cluster.manager()
    job = manager.submit(fixtures.square, range(50))
    record = Keys(cluster.namespace).job(job.id)
    wait_for(lambda: redis_client.hget(record, JOB_SUBMITTED), 10, "its first tasks sent")
    assert int(redis_client.hget(record, JOB_SUBMITTED)) < 50
    # When its manager is closed: the rest of its arguments exists nowhere else
    manager.close()
    # Then it is cancelled, here and for whoever re-attaches, rather than waited on forever
    with pytest.raises(JobCancelledError):
        job.results(timeout=10)
    with cluster.manager() as again, pytest.raises(JobCancelledError):
        again.job(job.id).results(timeout=10)
