# SPDX-License-Identifier: BSD-3-Clause
"""Attacks on a running cluster, each played by the test: what an intruder with some access
(a worker's credentials, a stolen config file, the network) tries, and how it fails."""

from __future__ import annotations

import json
import time

import pytest
import redis

from rhc import Manager
from rhc.config import new_secret, read_config_file, write_config_file
from rhc.errors import (
    BrokerConnectionError,
    PayloadTooLargeError,
    PlaintextWarning,
    SecretMismatchError,
)
from rhc.local import LocalCluster, RedisServer, generate
from rhc.wire.keys import Keys
from rhc.wire.protocol import (
    JOB_STATE,
    JOB_TOTAL,
    RESULT_FIELD,
    RESULTS,
    ResultMessage,
    compat_tag,
    task_entry,
    versions,
)
from rhc.wire.serialization import dumps, seal, sign, unseal
from rhc.wire.signing import TaskKey, new_task_key
from tests import fixtures
from tests.conftest import (
    assert_says,
    lz4_bomb,
    one_task_batch,
    rhc_command,
    wait_for,
    within,
)

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
    # When a batch whose arguments decompress to 256 MB is queued, signed with the task key
    job = "feedfacefeedface"
    header = one_task_batch(cluster.namespace, job, function_key.decode().rsplit(":", 1)[1])
    stream = Keys(cluster.namespace).task_stream(compat_tag(versions()))
    bomb = sign(TaskKey(cluster.settings["task_key"]), header, lz4_bomb(BOMB))
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
                task_key=new_task_key(),
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
            Manager(url, secret=new_secret(), task_key=new_task_key())
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


# -- what a stolen worker config, or Redis access, cannot do --------------------------------------


def task_stream(cluster) -> str:
    return Keys(cluster.namespace).task_stream(compat_tag(versions()))


def runs(path) -> list[int]:
    """The task numbers record_run ran, once per run."""
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def queued_entries(client, cluster) -> list[dict]:
    return [fields for _, fields in client.xrange(task_stream(cluster))]


def test_nothing_a_worker_config_holds_can_make_a_worker_run_anything(
    redis_server, make_cluster, tmp_path
):
    # Given a worker, and an intruder with everything the workers' config file holds
    cluster = make_cluster()
    cluster.start_workers(1)
    stolen = read_config_file(cluster.worker_config_file)
    assert "task_key" not in stolen
    intruder = login(redis_server, cluster.users.worker)
    marker = tmp_path / "ran"
    # When it queues batches signed with the shared secret, with a task key of its own, and
    # with the public key's text made into a key; and tries to store a function
    header = one_task_batch(cluster.namespace, "0badc0de0badc0de", "f" * 32)
    body = dumps([(str(marker), 1)], what="arguments", limit=2**20)
    forgeries = [
        seal(stolen["secret"].encode(), header, body),
        sign(TaskKey(new_task_key()), header, body),
        sign(TaskKey(stolen["task_public_key"].replace("public", "private")), header, body),
    ]
    for number, forged in enumerate(forgeries):
        intruder.xadd(task_stream(cluster), task_entry("0badc0de0badc0de", number, forged))
    with pytest.raises(redis.ResponseError, match="no permissions"):
        intruder.set(Keys(cluster.namespace).function("f" * 32), forgeries[0])
    # Then a valid job queued after them runs, nothing of theirs ran, and each is logged
    manager = cluster.manager()
    assert manager.remote_map(fixtures.square, range(3), progress=False) == [0, 1, 4]
    wait_for(lambda: not queued_entries(intruder, cluster), 10, "the forgeries to be removed")
    assert not marker.exists()
    log = cluster.log("w0")
    assert log.count("without unpickling it") == 3
    assert_says(log, "not signed with the notebook's task key", "which this process does not trust")


def test_a_replayed_task_entry_is_not_run_again_nor_in_another_namespace(
    redis_server, make_cluster, tmp_path
):
    # Given a job's task entries captured while queued (no worker yet)
    ours, theirs = make_cluster(), make_cluster()
    ran = tmp_path / "ran"
    manager = ours.manager()
    job = manager.submit(fixtures.record_run, [(str(ran), x) for x in range(4)])
    wait_for(lambda: job.progress.total == 4, 10, "every task to be sent")
    captured = queued_entries(redis_server.client(), ours)
    assert captured
    ours.start_workers(1)
    assert sorted(job.results(timeout=30)) == [0, 1, 2, 3]
    assert sorted(runs(ran)) == [0, 1, 2, 3]
    # When an intruder with the workers' credentials fails to erase the marks of batches run
    intruder = login(redis_server, ours.users.worker)
    marks = Keys(ours.namespace).ran(job.id)
    for erase in (
        lambda: intruder.delete(marks),
        lambda: intruder.hset(marks, "0", "forged"),
        lambda: intruder.hdel(marks, "0"),
        lambda: intruder.pexpire(marks, 1),
    ):
        with pytest.raises(redis.ResponseError, match="no permissions"):
            erase()
    # And queues the entries again after the job finished
    for fields in captured:
        intruder.xadd(task_stream(ours), fields)
    # And an operator copies them into a namespace whose workers trust the same key and secret
    write_config_file(
        theirs.worker_config_file,
        {
            **theirs.worker_settings,
            "secret": ours.secret,
            "task_public_key": ours.worker_settings["task_public_key"],
        },
    )
    theirs.start_workers(1, prefix="x")
    admin = redis_server.client()
    for fields in captured:
        admin.xadd(task_stream(theirs), fields)
    # Then the entries are removed unrun, and logged as what they are
    for cluster in (ours, theirs):
        wait_for(lambda c=cluster: not queued_entries(admin, c), 10, "the replays to be removed")
    assert sorted(runs(ran)) == [0, 1, 2, 3]
    assert_says(ours.log("w0"), "already ran (a replayed entry)")
    assert_says(theirs.log("x0"), f"signed for namespace '{ours.namespace}'")
    # And the namespace still serves
    assert manager.remote_map(fixtures.square, range(3), progress=False) == [0, 1, 4]


def test_a_captured_entry_replayed_after_its_marks_expired_has_expired_too(
    redis_server, make_cluster, tmp_path
):
    # Given a job's entries captured while queued, in a namespace keeping records 3 s
    cluster = make_cluster(result_ttl=3.0)
    ran = tmp_path / "ran"
    job = cluster.manager().submit(fixtures.record_run, [(str(ran), x) for x in range(2)])
    wait_for(lambda: job.progress.total == 2, 10, "every task to be sent")
    admin = redis_server.client()
    captured = queued_entries(admin, cluster)
    cluster.start_workers(1)
    assert sorted(job.results(timeout=30)) == [0, 1]
    # When its marks of batches run have expired, and the entries are queued again
    marks = Keys(cluster.namespace).ran(job.id)
    wait_for(lambda: not admin.exists(marks), 30, "the marks to expire")
    for fields in captured:
        admin.xadd(task_stream(cluster), fields)
    # Then they are refused as expired, unrun
    wait_for(lambda: not queued_entries(admin, cluster), 10, "the replays to be removed")
    assert sorted(runs(ran)) == [0, 1]
    assert_says(cluster.log("w0"), "expired", "a replay, or queued past its result_ttl")


def test_a_forged_cancel_does_not_stop_a_job(redis_server, make_cluster):
    # Given a running job
    cluster = make_cluster()
    cluster.start_workers(2)
    job = cluster.manager().submit(fixtures.sleep_for, [0.1] * 40)
    wait_for(lambda: job.progress.done > 0, 30, "the job to start")
    # When someone with Redis access publishes cancel notices: one in the old plain form, one
    # sealed with the workers' secret
    notice = {"op": "cancel", "job": job.id, "namespace": cluster.namespace}
    admin = redis_server.client()
    control = Keys(cluster.namespace).control
    admin.publish(control, json.dumps(notice))
    admin.publish(control, seal(cluster.secret.encode(), notice))
    # Then the job finishes with every result, and the workers said why they ignored them
    assert job.results(timeout=60) == [0.1] * 40
    wait_for(
        lambda: cluster.log("w0").count("ignored a control notice that failed verification") == 2,
        10,
        "the worker to log both forgeries",
    )


def test_a_forged_total_makes_no_reattached_job_end_early(redis_server, make_cluster, caplog):
    # Given a job of 8 slow tasks whose sender sent them all
    cluster = make_cluster()
    cluster.start_workers(1)
    job = cluster.manager().submit(fixtures.sleep_for, [0.2] * 8)
    intruder = login(redis_server, cluster.users.worker)
    job_key = Keys(cluster.namespace).job(job.id)
    # (the hash's total is written with the last of them: forged before, the sender's own
    # write would overwrite the forgery)
    wait_for(lambda: intruder.hget(job_key, JOB_TOTAL) == b"8", 10, "every task to be sent")
    # When an intruder with the workers' credentials writes a smaller total and a finished state
    intruder.hset(job_key, mapping={JOB_TOTAL: 1, JOB_STATE: "finished"})
    # Then a re-attached job still waits for all 8 results, and returns them, no placeholder
    again = cluster.manager().job(job.id)
    assert again.results(timeout=60) == [0.2] * 8
    assert_says(caplog.text, "the signed values count")
    assert job.results(timeout=60) == [0.2] * 8


def test_rotation_accepts_the_previous_key_while_configured_and_refuses_it_after(make_cluster):
    # Given a namespace whose notebook signs with an old key
    cluster = make_cluster()
    old_settings = dict(cluster.settings)
    # When its keys are rotated, and workers start with the new worker config
    done = rhc_command("keys", "rotate", "--config", str(cluster.config_file), "--overlap", "2")
    assert done.returncode == 0, done.stderr
    until = read_config_file(cluster.worker_config_file)["previous_task_public_key_until"]
    assert 7100 < until - time.time() <= 7200
    cluster.start_workers(1)
    # Then jobs signed with the old key and with the new one both run
    assert Manager(**old_settings).remote_map(fixtures.square, range(3), progress=False) == [
        0,
        1,
        4,
    ]
    assert Manager().remote_map(fixtures.square, range(3), progress=False) == [0, 1, 4]
    # And once the rotation ends, new workers refuse the old key
    done = rhc_command("keys", "end-rotation", "--config", str(cluster.config_file))
    assert done.returncode == 0, done.stderr
    cluster.stop()
    cluster.start_workers(1, prefix="new")
    with pytest.raises(SecretMismatchError, match="trusts task keys"):
        Manager(**old_settings).remote_map(fixtures.square, range(3), progress=False)
    assert Manager().remote_map(fixtures.square, range(3), progress=False) == [0, 1, 4]
    assert "previous_task_public_key" not in read_config_file(cluster.worker_config_file)
