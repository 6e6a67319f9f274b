# SPDX-License-Identifier: BSD-3-Clause
"""Manager and workers against a real redis-server: the everyday paths."""

from __future__ import annotations

import hashlib
import operator
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from rhc import Manager, TaskError, defaults, get_worker
from rhc.errors import JobNotFoundError, NotInWorkerError
from rhc.manager import sending
from rhc.wire.keys import Keys
from rhc.wire.protocol import JOB_DONE, JOB_SUBMITTED, PARTIAL, RESULT_FIELD, ResultMessage
from rhc.wire.scripts import ACK_AND_STORE
from rhc.wire.serialization import unseal
from tests import fixtures
from tests.conftest import REPOSITORY, wait_for


def result_messages(client, cluster, job_id: str) -> list[ResultMessage]:
    secret = cluster.secret.encode()
    key = Keys(cluster.namespace).results(job_id)
    return [
        ResultMessage.from_header(unseal(secret, fields[RESULT_FIELD.encode()])[0])
        for _, fields in client.xrange(key)
        if RESULT_FIELD.encode() in fields
    ]


def test_remote_map_returns_squares_in_input_order(cluster):
    # Given two workers
    cluster.start_workers(2)
    # When a lambda is mapped over range(10)
    results = Manager().remote_map(lambda x: x**2, range(10))
    # Then the squares come back in input order
    assert results == [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]


def test_the_function_reaches_redis_once_per_job_not_per_task(cluster, redis_client):
    # Given a function that drags along 1 MB of captured data
    cluster.start_workers(2)
    ballast = os.urandom(2**20)

    def first_byte_plus(x):
        return ballast[0] + x

    manager = Manager()
    before = redis_client.info("stats")["total_net_input_bytes"]
    # When it is mapped over 200 arguments
    results = manager.remote_map(first_byte_plus, range(200), progress=False)
    sent = redis_client.info("stats")["total_net_input_bytes"] - before
    # Then Redis received the function once (1 MB), not once per task (200 MB)
    assert results == [ballast[0] + x for x in range(200)]
    assert 2**20 < sent < 1.5 * 2**20
    assert len(list(redis_client.scan_iter(f"rhc:{cluster.namespace}:fn:*"))) == 1
    # And a second job with the same function does not send it again
    before = redis_client.info("stats")["total_net_input_bytes"]
    manager.remote_map(first_byte_plus, range(10), progress=False)
    assert redis_client.info("stats")["total_net_input_bytes"] - before < 2**18


def test_return_exceptions_collects_failures_in_place(cluster):
    cluster.start_workers(2)
    results = Manager().remote_map(
        fixtures.fail_on_three, range(6), return_exceptions=True, progress=False
    )
    assert results[:3] == [0, 1, 2] and results[4:] == [4, 5]
    assert isinstance(results[3], TaskError) and results[3].argument == 3


def test_reduce_merges_on_workers_and_sends_few_partials(cluster, redis_client):
    # Given two workers and a job whose results are summed
    cluster.start_workers(2)
    manager = Manager()
    job = manager.submit(fixtures.square, range(20_000), reduce=operator.add)
    # When it finishes (before its results are delivered, and removed from Redis)
    job.wait(timeout=60)
    # Then workers sent far fewer partials than batches, and the merged value is exact
    messages = result_messages(redis_client, cluster, job.id)
    assert job.results() == sum(x * x for x in range(20_000))
    partials = [message for message in messages if message.kind == PARTIAL]
    batches = sum(len(message.batches) for message in partials)
    assert 1 <= len(partials) <= 6 < batches
    assert sum(message.task_count for message in partials) == 20_000


def test_a_worker_has_redis_compile_its_results_script_before_its_first_result(
    cluster, redis_client
):
    # Given a Redis without scripts (a fresh or restarted server)
    redis_client.script_flush()
    # When a worker starts, and before it runs anything
    cluster.start_workers(1)
    # Then Redis holds the script its first result is stored with
    assert redis_client.script_exists(hashlib.sha1(ACK_AND_STORE.encode()).hexdigest()) == [True]


def test_a_merged_job_asks_for_its_partial_while_its_last_batch_runs_and_needs_no_second_ask(
    cluster, redis_client, tmp_path
):
    # Given one worker, and a merged job whose only task runs until the test lets it finish
    cluster.start_workers(1)
    notices = redis_client.pubsub(ignore_subscribe_messages=True)
    notices.subscribe(Keys(cluster.namespace).control)
    notices.get_message(timeout=10)  # the subscription's confirmation
    release = tmp_path / "release"
    job = cluster.manager().submit(fixtures.wait_for_file, [str(release)], reduce=operator.add)
    # When its batch is out, the notebook asks for the partial result already
    notice = notices.get_message(timeout=30)
    assert notice is not None and job.id.encode() in notice["data"]
    assert b'"flush"' in notice["data"]
    assert redis_client.xlen(Keys(cluster.namespace).results(job.id)) == 0
    # Then the worker stores it right after the task: no second request was needed
    release.touch()
    assert job.results(timeout=30) == 1
    later = [notices.get_message(timeout=0.1) for _ in range(3)]
    assert [message for message in later if message is not None] == []
    notices.close()


def test_submit_gives_a_job_with_progress_and_results_as_they_complete(cluster):
    cluster.start_workers(2)
    job = Manager().submit(fixtures.sleep_square, range(40))
    seen = dict(job.as_completed(timeout=60))
    assert seen == {x: x * x for x in range(40)}
    assert job.progress.done == job.progress.total == 40
    assert job.results() == [x * x for x in range(40)]


def test_a_new_manager_reattaches_to_a_job_by_id(cluster):
    cluster.start_workers(2)
    job = Manager().submit(fixtures.sleep_square, range(100))
    # A restarted kernel knows only the id
    again = Manager().job(job.id)
    assert again.results(timeout=60) == [x * x for x in range(100)]


def test_get_worker_gives_tasks_their_worker_and_a_cache_that_outlives_tasks(cluster):
    cluster.start_workers(1)
    manager = Manager()
    identities = manager.remote_map(fixtures.worker_identity, range(3), progress=False)
    assert {(namespace, name) for namespace, name, _ in identities} == {(cluster.namespace, "w0")}
    first = manager.remote_map(fixtures.count_visits, ["k"] * 5, progress=False)
    second = manager.remote_map(fixtures.count_visits, ["k"], progress=False)
    assert sorted(first) == [1, 2, 3, 4, 5] and second == [6]
    with pytest.raises(NotInWorkerError):
        get_worker()


def test_an_empty_input_gives_an_empty_result(cluster):
    cluster.start_workers(1)
    manager = Manager()
    assert manager.remote_map(fixtures.square, [], progress=False) == []
    assert manager.remote_map(fixtures.square, [], reduce=operator.add, progress=False) is None


def test_a_generator_of_unknown_length_streams(cluster):
    cluster.start_workers(2)
    results = Manager().remote_map(fixtures.square, (x for x in range(5000)), progress=False)
    assert results == [x * x for x in range(5000)]


def test_workers_table_lists_busy_workers_with_versions(cluster):
    cluster.start_workers(2)
    manager = Manager()
    job = manager.submit(fixtures.sleep_for, [2.0, 2.0])
    table = wait_for(
        lambda: (t := manager.workers()) and all(w.state == "busy" for w in t.workers) and t,
        30,
        "both workers busy",
    )
    assert {w.name for w in table.workers} == {"w0", "w1"}
    assert {w.job for w in table.workers} == {job.id}
    text = str(table)
    assert "busy" in text and "3.11" in text
    assert "<table>" in table._repr_html_()
    job.results(timeout=30)


@pytest.mark.parametrize("reduce", [None, operator.add], ids=["results", "merged"])
def test_the_workers_table_counts_a_jobs_tasks_done_as_soon_as_the_job_ends(make_cluster, reduce):
    # Given two workers whose heartbeat (what m.workers() reads) comes every 4 s
    cluster = make_cluster(heartbeat_interval=4.0, heartbeat_ttl=12.0)
    cluster.start_workers(2)
    manager = Manager()
    # When a job of 200 tasks ends
    manager.remote_map(fixtures.sleep_square, range(200), reduce=reduce, progress=False)
    ended = time.monotonic()
    # Then the table counts all 200 done well within one heartbeat: workers publish their
    # count when they go idle, not at their next beat
    wait_for(
        lambda: sum(info.done for info in manager.workers().workers) == 200,
        4.0,
        "the workers table to count the 200 tasks done",
    )
    assert time.monotonic() - ended < 1.0


def test_keyboard_interrupt_during_remote_map_cancels_the_job(cluster):
    cluster.start_workers(1)
    manager = Manager()
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            manager.remote_map(fixtures.sleep_for, [10.0] * 4, progress=False)
    finally:
        timer.cancel()  # no Ctrl-C for a later test
    wait_for(
        lambda: all(w.state == "idle" for w in manager.workers().workers),
        10,
        "the worker to drop the interrupted job",
    )


def test_two_namespaces_do_not_see_each_others_tasks_or_results(make_cluster, redis_client):
    # Given two namespaces, each with its own worker and secret
    first, second = make_cluster(), make_cluster()
    first.start_workers(1, prefix="first-")
    second.start_workers(1, prefix="second-")
    one, two = first.manager(), second.manager()
    # When both run a job at once
    job_one = one.submit(fixtures.worker_identity, range(300))
    job_two = two.submit(fixtures.worker_identity, range(300))
    # Then each job ran only on its own namespace's worker
    assert {(ns, name) for ns, name, _ in job_one.results(timeout=60)} == {
        (first.namespace, "first-0")
    }
    assert {(ns, name) for ns, name, _ in job_two.results(timeout=60)} == {
        (second.namespace, "second-0")
    }
    # And neither can see the other's job or keys
    with pytest.raises(JobNotFoundError):
        two.job(job_one.id)
    keys = {key.decode() for key in redis_client.scan_iter(f"*{job_one.id}*")}
    assert keys and all(key.startswith(f"rhc:{first.namespace}:") for key in keys)


def test_a_ten_task_map_finishes_promptly_while_a_100k_task_job_runs(cluster):
    # Given a 100,000-task job keeping two workers busy (about a minute of work)
    cluster.start_workers(2)
    big = Manager().submit(fixtures.sleep_one_millisecond, range(100_000))
    wait_for(lambda: big.progress.done > 2000, 60, "the big job to be well under way")
    # When another manager maps 10 tasks
    started = time.monotonic()
    small = Manager().remote_map(fixtures.square, range(10), progress=False)
    elapsed = time.monotonic() - started
    # Then it is served in turn, not after the big job
    assert small == [x * x for x in range(10)]
    assert elapsed < 1.0, elapsed
    assert big.progress.done < 100_000
    big.cancel()


def test_a_worker_under_condor_names_itself_by_its_job_id(cluster, tmp_path):
    # Given a worker started as condor starts jobs: with a job ad file
    job_ad = tmp_path / ".job.ad"
    job_ad.write_text('ClusterId = 4242\nProcId = 7\nOwner = "analyst"\nRequestCpus = 1\n')
    cluster.start_workers(1, prefix=None, env={"_CONDOR_JOB_AD": str(job_ad)})
    # Then it is known by host-ClusterId.ProcId and shows its condor id
    (worker,) = Manager().workers().workers
    assert worker.condor_id == "4242.7"
    assert worker.name.endswith("-4242.7")
    identities = Manager().remote_map(fixtures.worker_identity, range(2), progress=False)
    assert {name for _, name, _ in identities} == {worker.name}


def test_a_100k_task_job_delivers_every_result_and_redis_keeps_none(cluster, redis_client):
    # Given a map of 100,000 tasks, and a submitted job of as many
    cluster.start_workers(2)
    manager = Manager()
    squares = [x * x for x in range(100_000)]
    assert manager.remote_map(fixtures.square, range(100_000), progress=False) == squares
    job = manager.submit(fixtures.square, range(100_000))
    assert job.results(timeout=120) == squares
    # Then every result was delivered, and a moment later no result stream is left in Redis
    streams = f"rhc:{cluster.namespace}:job:*:results"
    wait_for(lambda: not list(redis_client.scan_iter(streams)), 5, "results removed")
    # But the marks that stop a replayed batch are kept, and a re-attach is told why it is late
    assert redis_client.exists(Keys(cluster.namespace).ran(job.id))
    with pytest.raises(JobNotFoundError, match="were delivered"):
        manager.job(job.id)


SENDER = """
import sys
from rhc import Manager
from tests import fixtures
job = Manager().submit(fixtures.random_bytes, [40 * 2**20] * 4)
print(job.id, flush=True)
sys.stdin.read()  # until the test kills it, as a kernel dies
"""


def test_results_piled_up_in_redis_come_back_in_reads_of_bounded_size(cluster, redis_client):
    # Given a job of 4 results of 40 MB, all stored while no notebook read them: the kernel
    # that sent it died once every task was sent
    sender = subprocess.Popen(
        [sys.executable, "-c", SENDER],
        cwd=REPOSITORY,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        job_id = sender.stdout.readline().strip()
        record = Keys(cluster.namespace).job(job_id)
        wait_for(lambda: redis_client.hget(record, JOB_SUBMITTED) == b"4", 60, "every task sent")
    finally:
        sender.kill()
        sender.wait()
    cluster.start_workers(2)
    wait_for(lambda: redis_client.hget(record, JOB_DONE) == b"4", 120, "every result stored")
    # When a new kernel re-attaches to it and reads them, while Redis's output buffers are watched
    peaks: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while True:  # once more after the results are in
            peaks.append(max(int(client["omem"]) for client in redis_client.client_list()))
            if done.is_set():
                return

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        values = Manager().job(job_id).results(timeout=120)
    finally:
        done.set()
        watcher.join()
    # Then every result arrives, and no reply held more than a read's budget of bytes (one read
    # of all four took 160 MB at once, in Redis and in the notebook)
    assert [len(value) for value in values] == [40 * 2**20] * 4
    assert max(peaks) <= defaults.RESULT_BYTES_PER_READ, max(peaks)


def test_a_recovery_reads_every_stored_result_before_it_takes_a_batch_for_lost(
    cluster, monkeypatch
):
    # Given a notebook that reads its results one at a time, and checks at every step for
    # batches Redis lost (those with neither a result nor a queue entry)
    monkeypatch.setattr(defaults, "RESULT_BYTES_PER_READ", 1)
    monkeypatch.setattr(sending, "STALL_CHECK", -1.0)
    cluster.start_workers(2)
    # When it maps 400 tasks, whose results pile up faster than one a read
    values = Manager().remote_map(fixtures.random_bytes, [100_000] * 400, progress=False)
    # Then every check read all that was stored before it took a batch for lost (a batch marked
    # as run without a result read would end the job: "cannot finish")
    assert [len(value) for value in values] == [100_000] * 400
