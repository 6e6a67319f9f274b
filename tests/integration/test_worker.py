# SPDX-License-Identifier: BSD-3-Clause
"""Workers that die or are evicted: nothing lost, nothing doubled."""

from __future__ import annotations

import multiprocessing.connection
import operator
import os
import select
import signal
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from rhc import Manager, defaults
from rhc.config import resolve_settings
from rhc.wire.connection import connect
from rhc.wire.keys import Keys
from rhc.wire.protocol import GROUP, RESULT_FIELD, RESULTS, ResultMessage, compat_tag, versions
from rhc.wire.serialization import secret_id, unseal
from rhc.wire.signing import TaskKey
from rhc.worker import taskprocess
from rhc.worker.execution import Executor
from rhc.worker.heartbeat import Heartbeat
from rhc.worker.reaper import Reaper
from rhc.worker.taskprocess import TaskProcess
from rhc.worker.trust import Trust
from tests import fixtures
from tests.conftest import assert_says, live_worker_info, wait_for


def stored_results(client, cluster, job_id: str) -> list[ResultMessage]:
    key = Keys(cluster.namespace).results(job_id)
    return [
        ResultMessage.from_header(unseal(cluster.secret.encode(), fields[RESULT_FIELD.encode()])[0])
        for _, fields in client.xrange(key)
    ]


def pending_batches(client, stream: str, consumer: str) -> set[int]:
    pending = client.xpending_range(stream, GROUP, "-", "+", 1000, consumername=consumer)
    batches = set()
    for item in pending:
        entry = client.xrange(stream, item["message_id"], item["message_id"])
        if entry:
            batches.add(int(entry[0][1][b"batch"]))
    return batches


def test_sigkill_of_a_worker_process_group_loses_and_duplicates_nothing(cluster, redis_client):
    # Given three workers running 2,000 tasks of 10 ms
    cluster.start_workers(3)
    manager = Manager()
    stream = Keys(cluster.namespace).task_stream(compat_tag(versions()))
    job = manager.submit(fixtures.sleep_square, range(2000))
    wait_for(
        lambda: job.progress.done > 300 and pending_batches(redis_client, stream, "w0"),
        60,
        "w0 to hold unacknowledged tasks mid-job",
    )
    # When w0's supervisor and task process are killed together
    cluster.kill_group("w0")
    held = pending_batches(redis_client, stream, "w0")
    # Then it held unacknowledged batches at that moment
    assert held
    # And the job still completes, exactly (read before its results are delivered and removed)
    job.wait(timeout=120)
    messages = [m for m in stored_results(redis_client, cluster, job.id) if m.kind == RESULTS]
    assert job.results() == [x * x for x in range(2000)]
    # Every task's result was stored exactly once
    counts = Counter(
        task for m in messages for first, count in m.spans for task in range(first, first + count)
    )
    assert set(counts) == set(range(2000)) and set(counts.values()) == {1}
    # And the batches w0 held were finished by the other workers
    finishers = {batch: m.worker for m in messages for batch in m.batches}
    assert {finishers[batch] for batch in held} <= {"w1", "w2"}
    assert "re-queued" in cluster.log("w1") + cluster.log("w2")


def test_sigterm_hands_back_tasks_at_once_and_exits_zero(make_cluster, redis_client):
    # Given workers with a 10 s heartbeat TTL, busy with 1 s tasks
    cluster = make_cluster(heartbeat_interval=1.0, heartbeat_ttl=10.0)
    cluster.start_workers(2)
    manager = Manager()
    stream = Keys(cluster.namespace).task_stream(compat_tag(versions()))
    job = manager.submit(fixtures.sleep_for, [1.0] * 12)
    wait_for(
        lambda: job.progress.done >= 2 and pending_batches(redis_client, stream, "w0"),
        60,
        "w0 to hold tasks",
    )
    # When w0 gets SIGTERM, as condor sends on eviction or condor_rm
    process = cluster.workers["w0"]
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    wait_for(
        lambda: not pending_batches(redis_client, stream, "w0"), 10, "w0 to hand back its tasks"
    )
    handed_back = time.monotonic() - signalled
    # Then its tasks are back within a fraction of the heartbeat TTL, and it exits 0
    assert handed_back < 2.5, handed_back
    assert process.wait(10) == 0
    assert not redis_client.exists(Keys(cluster.namespace).alive("w0"))
    # And the job completes on the other worker
    assert job.results(timeout=60) == [1.0] * 12
    assert "handing back tasks" in cluster.log("w0")


def test_batches_routed_to_a_worker_as_it_left_are_run_by_the_others(cluster, redis_client):
    # Given a worker the manager still believes alive, to which every task is routed (it
    # processed their data last time), and no other worker yet
    keys = Keys(cluster.namespace)
    ghost = live_worker_info(
        "ghost",
        task_keys=[TaskKey(cluster.settings["task_key"]).key_id.hex()],
        secret_id=secret_id(cluster.secret.encode()),
    )
    redis_client.hset(keys.workers, "ghost", ghost.encode())
    redis_client.hset(keys.affinity, mapping={f"chunk{i}": "ghost" for i in range(20)})
    manager = cluster.manager()
    job = manager.submit(fixtures.square, range(20), affinity=[f"chunk{i}" for i in range(20)])
    ghost_stream = keys.worker_stream("ghost")
    wait_for(lambda: redis_client.xlen(ghost_stream), 10, "tasks routed to the ghost")
    # When it deregisters just after they were sent (so no reaper will ever look at its
    # stream), and a real worker starts
    redis_client.hdel(keys.workers, "ghost")
    cluster.start_workers(1)
    # Then the manager moves the routed tasks where the real worker reads, and all complete
    assert job.results(timeout=30) == [x * x for x in range(20)]
    assert not redis_client.exists(ghost_stream)
    manager.close()


def test_a_killed_worker_is_charged_only_the_batch_it_was_running(cluster):
    # Given one worker merging a reduce of 0.2 s tasks, allowed no second attempt, and holding
    # several merged batches (unacknowledged until it stores its partial) and one in hand
    cluster.start_workers(1)
    manager = cluster.manager()
    job = manager.submit(
        partial(fixtures.tally, seconds=0.2),
        range(30),
        reduce=operator.add,
        retries=0,
        return_exceptions=True,
    )
    wait_for(lambda: job.progress.done >= 4, 60, "w0 to merge four batches")
    # When it is killed, and another worker takes over
    cluster.kill_group("w0")
    cluster.start_workers(1)
    counts = job.results(timeout=60)
    # Then only the batch it was running failed, as lost; what it had merged or held ran again
    assert [failure.kind for failure in job.failures] == ["lost"]
    (lost,) = (failure.task for failure in job.failures)
    assert counts == Counter(x for x in range(30) if x != lost)


def test_a_task_process_killed_while_its_worker_idles_is_replaced_at_the_next_batch(cluster):
    # Given a worker that ran a map and idles
    cluster.start_workers(1)
    manager = cluster.manager()
    ((_, name, task_pid),) = manager.remote_map(fixtures.worker_identity, [0])
    # When its task process is killed (an admin, the OOM killer) while no task runs
    pidfd = os.pidfd_open(task_pid)
    try:
        os.kill(task_pid, signal.SIGKILL)
        assert select.select([pidfd], [], [], 10)[0], "the task process outlived SIGKILL"
    finally:
        os.close(pidfd)
    # Then the next map runs on the same worker, in a new task process, charging no task
    job = manager.submit(fixtures.worker_identity, range(2))
    identities = job.results(timeout=30)
    assert {identity[1] for identity in identities} == {name}
    assert task_pid not in {identity[2] for identity in identities}
    assert not job.failures
    assert cluster.workers[name].poll() is None
    assert_says(cluster.log(name), "task process died between batches")


class _Host:
    """What an executor needs of a supervisor, for one driven by a test."""

    def __init__(self) -> None:
        self.lost: list[str] = []

    def wait(self, waitables: list, timeout: float) -> None:
        multiprocessing.connection.wait(waitables, timeout)

    def on_wake(self, batches: list) -> bool:
        return False

    def prefetch(self) -> None:
        pass

    def lost_task_process(self, reason: str) -> None:
        self.lost.append(reason)


def task_process(directory: Path, *, preload: tuple[str, ...] = ()) -> TaskProcess:
    """A worker's task process, on its own."""
    return TaskProcess(
        {
            "name": "w0",
            "host": "here",
            "namespace": "tests",
            "condor_id": "",
            "cache_bytes": 0,
            "cache_dir": str(directory),
            "disk_cache_bytes": 0,
            "preload": list(preload),
            "max_payload_bytes": defaults.DEFAULT_MAX_PAYLOAD_BYTES,
        }
    )


def test_a_task_process_dead_before_it_answers_a_request_is_replaced_and_answers_none(
    cluster, tmp_path
):
    # Given a worker's executor and its task process
    child = task_process(tmp_path)
    child.start()
    host = _Host()
    settings = resolve_settings(config_file=cluster.worker_config_file)
    executor = Executor(child, host, trust=Trust(settings), fetch_function=lambda digest: None)
    try:
        # When it dies (the OOM killer) just before the worker asks for them
        dead = child.pid
        os.kill(dead, signal.SIGKILL)
        child.process.join()
        # Then the request gets no answer, and another task process serves on
        assert executor.ask(("flush", "a-job")) is None
        assert child.is_alive and child.pid != dead
        assert len(host.lost) == 1
        assert_says(host.lost[0], "killed by signal SIGKILL")
    finally:
        child.stop(5)


def test_a_task_process_killed_while_it_starts_again_is_replaced_until_start_tries_run_out(
    tmp_path, monkeypatch, caplog
):
    # Given a task process whose replacements die while they start (killed as they import)
    counter = tmp_path / "starts-to-die"
    counter.write_text("0")
    monkeypatch.setenv("RHC_TEST_STARTS_TO_DIE", str(counter))
    child = task_process(tmp_path, preload=("tests.dies_while_starting",))
    child.start()
    try:
        # When it is restarted and the next START_TRIES - 1 die as they start
        counter.write_text(str(taskprocess.START_TRIES - 1))
        child.restart()
        # Then the last one serves, and each death was said
        assert child.is_alive and counter.read_text() == "0"
        assert caplog.text.count("while starting") == taskprocess.START_TRIES - 1
        # And when START_TRIES die in a row, the restart gives up, saying why
        counter.write_text(str(taskprocess.START_TRIES))
        with pytest.raises(taskprocess.StartFailed, match=r"SIGKILL .* while starting"):
            child.restart()
    finally:
        child.stop(5)


def test_a_worker_swept_as_dead_while_it_waits_for_tasks_serves_on(cluster, redis_client):
    # Given an idle worker, waiting in a blocking read on its own stream and the shared one
    (name,) = cluster.start_workers(1)

    def is_waiting() -> bool:
        return any(
            client["cmd"] == "xreadgroup" and "b" in client["flags"]
            for client in redis_client.client_list()
        )

    wait_for(is_waiting, 30, f"{name} to wait for tasks")
    # When a sweeper that took it for dead (a late heartbeat) deletes its stream meanwhile
    redis_client.delete(Keys(cluster.namespace).worker_stream(name))
    # Then it lives on and runs what it is given
    with cluster.manager() as manager:
        job = manager.submit(fixtures.square, range(5))
        assert job.results(timeout=30) == [0, 1, 4, 9, 16]
    assert cluster.workers[name].poll() is None, cluster.log(name)


def worker_side(cluster) -> tuple:
    """A client of the worker user, as on a node; the namespace's keys; this Python's class."""
    client = connect(resolve_settings(config_file=cluster.worker_config_file), role="worker")
    return client, Keys(cluster.namespace), compat_tag(versions())


def transactions(redis_client, action: Callable[[], object]) -> list[list[str]]:
    """The MULTI ... EXEC blocks Redis ran while `action` ran, each as its commands (MONITOR)."""
    with redis_client.monitor() as monitor:
        action()
        redis_client.echo("end of action")
        blocks: list[list[str]] = []
        open_blocks: dict[str, list[str]] = {}  # by client
        while (seen := monitor.next_command())["command"] != "ECHO end of action":
            client, command = seen["client_port"], seen["command"]
            if command == "MULTI":
                open_blocks[client] = []
            elif command == "EXEC":
                blocks.append(open_blocks.pop(client))
            elif client in open_blocks:
                open_blocks[client].append(command)
    return blocks


def test_the_sweep_lock_rides_in_the_heartbeat_and_one_worker_sweeps_at_a_time(
    cluster, redis_client
):
    # Given workers' heartbeats (the worker user, as on a node) and a dead worker, registered
    # but with no alive key
    client, keys, compat = worker_side(cluster)
    register_ghost(redis_client, keys, "ghost")

    def heartbeat(name: str) -> Heartbeat:
        return Heartbeat(
            client=client,
            keys=keys,
            name=name,
            interval=5.0,
            ttl=10.0,
            reaper=Reaper(client, keys, compat),
            describe=lambda: live_worker_info(name, taken=3),  # counted in the same MULTI
            on_control=lambda data: None,
        )

    first, second, third = heartbeat("first"), heartbeat("second"), heartbeat("third")
    third.beat()
    # When one beats and sweeps
    blocks = transactions(redis_client, first.beat_and_sweep)
    # Then its claim of the sweep lock went in its beat's MULTI, with its alive key
    assert any(
        f"SET {keys.alive('first')} " in " | ".join(block)
        and f"SET {keys.reaper_lock} first NX PX " in " | ".join(block)
        for block in blocks
    )
    # And the dead worker is swept away, the live one stays
    assert redis_client.hexists(keys.workers, "ghost") is False
    assert redis_client.hexists(keys.workers, "third") is True
    # When another dies, and a second worker beats and sweeps a moment later
    register_ghost(redis_client, keys, "ghost")
    second.beat_and_sweep()
    # Then the second, finding the sweep lock taken, leaves it for the next sweep; both beats
    # announced their workers
    assert redis_client.hexists(keys.workers, "ghost") is True
    assert redis_client.get(keys.reaper_lock) == b"first"
    assert redis_client.exists(keys.alive("first"), keys.alive("second")) == 2
    client.close()


def test_a_sweep_reclaims_until_its_time_is_up_and_the_next_one_goes_on(cluster, redis_client):
    # Given three dead workers, registered with no alive key
    client, keys, compat = worker_side(cluster)
    ghosts = {"ghost-0", "ghost-1", "ghost-2"}
    for ghost in ghosts:
        register_ghost(redis_client, keys, ghost)
    reaper = Reaper(client, keys, compat)
    # When a sweep's time is up from the start
    reaper.sweep("me", until=time.monotonic())
    # Then it reclaimed one of them, and left the others for the next sweep
    assert len(ghosts & registered(redis_client, keys)) == 2
    # When the next sweep has time
    reaper.sweep("me", until=time.monotonic() + 60)
    # Then they are all gone
    assert not ghosts & registered(redis_client, keys)
    client.close()


def registered(client, keys: Keys) -> set[str]:
    return {name.decode() for name in client.hkeys(keys.workers)}


def register_ghost(client, keys: Keys, name: str) -> None:
    """A dead worker: registered as a live one is, with no alive key."""
    client.hset(keys.workers, name, live_worker_info(name).encode())


def test_two_sweepers_that_both_take_a_worker_for_dead_record_its_departure_once(
    cluster, redis_client
):
    # Given a dead worker, and two sweepers that both read what it last said of itself
    client, keys, compat = worker_side(cluster)
    register_ghost(redis_client, keys, "ghost")
    info = live_worker_info("ghost")
    first, second = Reaper(client, keys, compat), Reaper(client, keys, compat)
    # When both reclaim it, one after the other
    first.reclaim("ghost", compat, info)
    second.reclaim("ghost", compat, info)
    # Then it is gone, and the departures record it once
    assert "ghost" not in registered(redis_client, keys)
    recorded = [fields[b"worker"] for _, fields in redis_client.xrange(keys.departures)]
    assert recorded == [b"ghost"]
    client.close()


def test_a_worker_taken_for_dead_that_reads_while_it_is_swept_loses_no_task(
    cluster, redis_client, monkeypatch
):
    # Given a worker taken for dead (registered, no alive key) that holds batch 1 of two queued
    client, keys, compat = worker_side(cluster)
    shared = keys.task_stream(compat)
    redis_client.xgroup_create(shared, GROUP, id="0", mkstream=True)
    for batch in (1, 2):
        redis_client.xadd(shared, {"batch": str(batch)})
    register_ghost(redis_client, keys, "ghost")

    def ghost_takes_one() -> None:
        redis_client.xreadgroup(GROUP, "ghost", {shared: ">"}, count=1)

    ghost_takes_one()
    reaper = Reaper(client, keys, compat)
    listed = reaper.held

    def held_then_the_ghost_reads(name: str, compat: str) -> list:
        found = listed(name, compat)
        ghost_takes_one()  # alive after all: it takes batch 2 once the sweeper has looked
        return found

    monkeypatch.setattr(reaper, "held", held_then_the_ghost_reads)
    # When a sweeper reclaims it
    reaper.reclaim("ghost", compat)
    # Then batch 2 is still held by it, not delivered to no one
    assert pending_batches(redis_client, shared, "ghost") == {2}
    # When it was dead after all, and the next sweep comes
    monkeypatch.undo()
    reaper.sweep("me", until=time.monotonic() + 60)
    # Then both batches wait for any other worker
    taken = redis_client.xreadgroup(GROUP, "other", {shared: ">"})
    assert sorted(int(fields[b"batch"]) for _, entries in taken for _, fields in entries) == [1, 2]
    client.close()


def test_a_worker_whose_acl_predates_mget_still_sweeps_and_says_how_to_update_it(
    cluster, redis_client, caplog
):
    # Given a dead worker, and a worker user whose ACL was written before sweeps used MGET
    client, keys, compat = worker_side(cluster)
    register_ghost(redis_client, keys, "ghost")
    redis_client.acl_setuser(cluster.users.worker.name, commands=["-mget"])
    # When it sweeps
    Reaper(client, keys, compat).sweep("me", until=time.monotonic() + 60)
    # Then the dead worker is gone all the same, and the log names the operator's command
    assert "ghost" not in registered(redis_client, keys)
    assert_says(caplog.text, "may not MGET", f"rhc redis namespace {cluster.namespace}")
    client.close()


def test_an_idle_worker_in_its_long_reads_takes_a_task_at_once_and_stops_at_once(
    cluster, redis_client
):
    def reads() -> int:
        return redis_client.info("commandstats").get("cmdstat_xreadgroup", {}).get("calls", 0)

    def idle_a_while(since: int) -> bool:  # its reads past the short ones: it waits long now
        return reads() >= since + defaults.IDLE_FLUSH_READS + 1

    # Given a worker idle long enough to read in long blocks (only workers read groups)
    before = reads()
    cluster.start_workers(1)
    wait_for(lambda: idle_a_while(before), 30, "the worker to read in long blocks")
    # When a small map is sent
    manager = cluster.manager()
    sent = time.monotonic()
    squares = manager.remote_map(fixtures.square, range(3))
    # Then it runs at once, not after the read's block
    assert squares == [0, 1, 4]
    assert time.monotonic() - sent < defaults.IDLE_READ_BLOCK / 2
    # And when it is idle a while again and gets SIGTERM
    after = reads()
    wait_for(lambda: idle_a_while(after), 30, "the worker to read in long blocks again")
    process = cluster.workers["w0"]
    process.send_signal(signal.SIGTERM)
    # Then it exits 0 without waiting for its read to end, saying nothing of a lost Redis
    assert process.wait(defaults.IDLE_READ_BLOCK - 1) == 0
    assert not redis_client.hexists(Keys(cluster.namespace).workers, "w0")
    assert "lost Redis" not in cluster.log("w0")
    manager.close()
