# SPDX-License-Identifier: BSD-3-Clause
"""Attacks on a running cluster, each played by the test: what an intruder with some access
(a worker's credentials, a stolen config file, the network) tries, and how it fails."""

from __future__ import annotations

import pytest
import redis

from rhc import Manager
from rhc.config import new_secret, read_config_file
from rhc.errors import BrokerConnectionError, PayloadTooLargeError, PlaintextWarning
from rhc.local import LocalCluster, RedisServer, generate
from rhc.wire.protocol import (
    RESULT_FIELD,
    RESULTS,
    Keys,
    ResultMessage,
    TaskBatch,
    compat_tag,
    task_entry,
    versions,
)
from rhc.wire.serialization import seal, unseal
from tests import fixtures
from tests.conftest import assert_says, lz4_bomb, wait_for, within

BOMB = 256 * 2**20
"""What the lz4 bombs declare: far over the 1 MB payload limit of these clusters."""


def stored_failures(client, cluster, job_id: str) -> list:
    key = Keys(cluster.namespace).results(job_id)
    headers = [
        unseal(cluster.secret.encode(), fields[RESULT_FIELD.encode()])[0]
        for _, fields in client.xrange(key)
    ]
    return [failure for header in headers for failure in ResultMessage.from_header(header).failures]


def test_a_worker_refuses_task_arguments_that_are_an_lz4_bomb(make_cluster, redis_client):
    # Given a worker with a 1 MB payload limit, and a function stored by a real job
    cluster = make_cluster(max_payload_bytes=2**20)
    cluster.start_workers(1)
    manager = cluster.manager()
    assert manager.remote_map(fixtures.square, range(2), progress=False) == [0, 1]
    (function_key,) = redis_client.scan_iter(f"rhc:{cluster.namespace}:fn:*")
    # When a batch whose arguments decompress to 256 MB is queued, signed with the secret
    job = "feedfacefeedface"
    header = TaskBatch(
        job=job,
        batch=0,
        first=0,
        count=1,
        function=function_key.decode().rsplit(":", 1)[1],
        max_attempts=1,
        result_ttl=60,
    ).header()
    stream = Keys(cluster.namespace).task_stream(compat_tag(versions()))
    bomb = seal(cluster.secret.encode(), header, lz4_bomb(BOMB))
    redis_client.xadd(stream, task_entry(job, 0, bomb))
    # Then the worker fails the task unloaded, saying why, and serves on
    (failure,) = wait_for(lambda: stored_failures(redis_client, cluster, job), 30, "the verdict")
    assert failure.kind == "unloadable"
    assert "refused the arguments of tasks 0-0 without loading it: it declares 256.0 MB" in (
        failure.message
    )
    assert manager.remote_map(fixtures.square, range(3), progress=False) == [0, 1, 4]


def test_the_notebook_refuses_a_result_that_is_an_lz4_bomb(make_cluster, redis_client):
    # Given a job waiting for its result (no worker runs)
    cluster = make_cluster(max_payload_bytes=2**20)
    job = cluster.manager().submit(fixtures.square, range(1))
    # When a holder of the results' key stores a result that decompresses to 256 MB
    message = ResultMessage(
        kind=RESULTS, job=job.id, worker="intruder", batches=(0,), spans=((0, 1),)
    )
    sealed = seal(cluster.secret.encode(), message.header(), lz4_bomb(BOMB))
    redis_client.xadd(Keys(cluster.namespace).results(job.id), {RESULT_FIELD: sealed})
    # Then the job stops with the reason instead of decompressing it
    with within(30), pytest.raises(PayloadTooLargeError) as caught:
        job.results()
    assert f"refused results of job {job.id} without loading it: it declares 256.0 MB" in str(
        caught.value
    )


# -- TLS ------------------------------------------------------------------------------------------


def test_a_tls_cluster_serves_rhc_and_refuses_plain_tcp_and_another_ca(tmp_path):
    # Given Redis speaking TLS only, with a CA of its own, and a worker on it
    cluster = LocalCluster(tmp_path / "cluster", workers=1, tls=True).start()
    try:
        settings = read_config_file(cluster.config_file)
        assert settings["redis_url"].startswith("rediss://127.0.0.1:")
        # Then rhc, with the generated CA, runs a job through it
        with Manager(**settings) as manager:
            assert manager.remote_map(abs, [-1, -2, 3], progress=False) == [1, 2, 3]
        # And a plain-TCP client, password and all, is refused
        plain = redis.Redis(
            host="127.0.0.1",
            port=cluster.redis.port,
            username=cluster.redis.admin.name,
            password=cluster.redis.admin.password,
        )
        with pytest.raises(redis.ConnectionError):
            plain.ping()
        # And a client that trusts another CA is refused, and told what to fix
        other = generate(tmp_path / "other-ca", ["127.0.0.1"])
        with pytest.raises(BrokerConnectionError) as caught:
            Manager(**{**settings, "redis_ca": other.ca.read_text()})
        assert_says(str(caught.value), "TLS certificate was not accepted", "redis_ca")
    finally:
        cluster.stop()


def test_a_certificate_for_another_host_is_refused(tmp_path):
    # Given a TLS Redis whose certificate names redis.example.org only
    server = RedisServer(tmp_path / "redis", tls=True, hosts=["redis.example.org"]).start()
    try:
        # When rhc dials it as 127.0.0.1, trusting the right CA
        with pytest.raises(BrokerConnectionError) as caught:
            Manager(
                server.url,
                secret=new_secret(),
                redis_username=server.admin.name,
                redis_password=server.admin.password,
                redis_ca=server.ca,
            )
        # Then the name check refuses it
        assert_says(str(caught.value), "not for the URL's host", "certificate verify failed")
    finally:
        server.stop()


def test_a_plain_connection_across_a_network_warns_and_loopback_does_not(recwarn):
    for url in ("redis://redis.example.invalid:6379", "redis://127.0.0.1:1", "redis://redis:1"):
        with pytest.raises(BrokerConnectionError):
            Manager(url, secret=new_secret())
    warned = [str(w.message) for w in recwarn if issubclass(w.category, PlaintextWarning)]
    assert len(warned) == 1
    assert_says(warned[0], "redis.example.invalid", "without TLS", "Use rediss://")


# -- ACL roles ------------------------------------------------------------------------------------


def login(server: RedisServer, user) -> redis.Redis:
    return redis.Redis(
        host="127.0.0.1", port=server.port, username=user.name, password=user.password
    )


ADMIN_COMMANDS = [
    ("FLUSHALL",),
    ("CONFIG", "GET", "*"),
    ("KEYS", "*"),
    ("SCAN", "0"),
    ("ACL", "LIST"),
    ("DEBUG", "SLEEP", "0"),
    ("MONITOR",),
    ("SHUTDOWN", "NOSAVE"),
    ("SCRIPT", "FLUSH"),
    ("CLIENT", "KILL", "TYPE", "normal"),
]


@pytest.mark.parametrize("role", ["worker", "manager"])
def test_a_namespace_credential_cannot_administer_redis(redis_server, make_cluster, role):
    cluster = make_cluster()
    client = login(redis_server, getattr(cluster.users, role))
    for command in ADMIN_COMMANDS:
        with pytest.raises(redis.ResponseError) as refused:
            client.execute_command(*command)
        # DEBUG is refused before permissions are looked at: enable-debug-command is off
        assert "no permissions" in str(refused.value) or "not allowed" in str(refused.value)
    assert client.ping()  # the refusals were about permissions, not a dead connection


def test_a_worker_credential_touches_no_other_namespace_and_no_notebook_key(
    redis_server, make_cluster
):
    # Given two namespaces, and the worker credential of the first
    ours, theirs = make_cluster(), make_cluster()
    worker = login(redis_server, ours.users.worker)
    mine, other = Keys(ours.namespace), Keys(theirs.namespace)
    refused = [
        lambda: worker.hgetall(other.workers),
        lambda: worker.xadd(other.task_stream("any"), {"m": b"x"}),
        lambda: worker.get(other.function("f" * 32)),
        lambda: worker.set(mine.function("f" * 32), b"forged function"),
        lambda: worker.hset(mine.affinity, "chunk", "me"),
        lambda: worker.zadd(mine.jobs, {"job": 1}),
        lambda: worker.publish(mine.control, "{}"),
        lambda: worker.execute_command("SUBSCRIBE", other.control),
    ]
    # Then every one of these is refused
    for attempt in refused:
        with pytest.raises(redis.exceptions.NoPermissionError):
            attempt()
    # While its own work goes on
    assert worker.hgetall(mine.workers) == {}
    assert worker.get(mine.function("f" * 32)) is None


def test_the_default_user_cannot_log_in_and_the_monitor_cannot_write(redis_server, make_cluster):
    cluster = make_cluster()
    anonymous = redis.Redis(host="127.0.0.1", port=redis_server.port)
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=redis_server.port, password="guess").ping()
    monitor = login(redis_server, redis_server.monitor)
    keys = Keys(cluster.namespace)
    assert monitor.hgetall(keys.workers) == {}
    for attempt in (
        lambda: monitor.hset(keys.workers, "intruder", "{}"),
        lambda: monitor.delete(keys.jobs),
        lambda: monitor.publish(keys.control, "{}"),
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            attempt()


def test_a_manager_of_one_namespace_cannot_read_or_steer_another(redis_server, make_cluster):
    ours, theirs = make_cluster(), make_cluster()
    manager = login(redis_server, ours.users.manager)
    other = Keys(theirs.namespace)
    for attempt in (
        lambda: manager.hgetall(other.workers),
        lambda: manager.xread({other.results("j"): "0-0"}),
        lambda: manager.publish(other.control, "{}"),
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            attempt()
