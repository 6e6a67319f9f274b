# SPDX-License-Identifier: BSD-3-Clause
"""Bad input, one user mistake or failure per test, on real Redis, workers and ROOT files.

Each ends in a message saying what went wrong and what to do, within a bound in seconds. The
bounds are for "nothing hangs", not for speed: the machines running the tests are shared.
"""

from __future__ import annotations

import importlib
import operator
import os
import pickle
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rhc import Manager, TaskError
from rhc.config import new_secret, write_config_file
from rhc.errors import (
    BrokerAuthenticationError,
    BrokerConnectionError,
    BrokerError,
    ConfigurationError,
    JobCancelledError,
    JobNotFoundError,
    MergeError,
    PayloadTooLargeError,
    ResultTimeoutError,
    SecretMismatchError,
    SerializationError,
    VersionMismatchError,
)
from rhc.local import Nginx, free_port
from rhc.nanoaod import BadFilesError, Dimuon, run
from rhc.wire.keys import Keys
from rhc.wire.protocol import GROUP, compat_tag, task_entry, versions
from rhc.wire.serialization import dumps, seal
from rhc.wire.signing import TaskKey, new_task_key
from tests import fixtures
from tests.conftest import assert_says, one_task_batch, wait_for, within
from tests.integration.test_cli import rhc

pytestmark = pytest.mark.timeout(120)  # a hang fails its test instead of blocking the run

SECRET = new_secret()
TASK_KEY = new_task_key()


# -- settings and connections ------------------------------------------------------------------


def refusal(error: type[Exception], url: str, seconds: float = 10, **settings: object) -> Exception:
    """What a Manager for url raises, within seconds, when it cannot use the Redis there."""
    with within(seconds), pytest.raises(error) as caught:
        Manager(url, secret=SECRET, task_key=TASK_KEY, **settings)
    return caught.value


def test_a_wrong_url_fails_fast_with_the_url_and_what_to_check():
    url = f"redis://127.0.0.1:{free_port()}"
    message = str(refusal(BrokerConnectionError, url))
    assert_says(message, f"cannot reach Redis at {url}", "Check the URL")


def test_a_url_naming_a_web_server_says_it_is_not_redis(tmp_path):
    # Given the host and port of a web server, instead of those of Redis
    (tmp_path / "www").mkdir()
    server = Nginx(tmp_path / "www", tmp_path / "nginx").start()
    url = f"redis://127.0.0.1:{server.port}"
    try:
        message = str(refusal(BrokerConnectionError, url))
    finally:
        server.stop()
    assert_says(
        message,
        f"Redis at {url} cannot be used: Protocol error",
        "Check that the URL names a Redis server",
    )


def test_a_server_that_never_answers_fails_within_the_socket_timeout():
    # Given a port that accepts connections and never replies (a hung server, a wrong tunnel)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}"
        message = str(refusal(BrokerConnectionError, url, seconds=30))
    assert_says(message, f"cannot reach Redis at {url}: Timeout", "the server is running")


def test_a_tls_url_for_a_redis_without_tls_says_to_use_redis(redis_server):
    url = f"rediss://127.0.0.1:{redis_server.port}"
    error = refusal(
        BrokerConnectionError,
        url,
        seconds=30,
        redis_username=redis_server.admin.name,
        redis_password=redis_server.admin.password,
    )
    assert_says(
        str(error),
        f"cannot reach Redis at {url}",
        "for a server without TLS on that port, use redis://",
    )


def test_a_database_number_redis_does_not_have_is_refused(redis_server):
    url = f"redis://127.0.0.1:{redis_server.port}/99"
    message = str(
        refusal(
            BrokerConnectionError,
            url,
            redis_username=redis_server.admin.name,
            redis_password=redis_server.admin.password,
        )
    )
    assert_says(message, "DB index is out of range", "database number")


def test_a_wrong_password_is_refused_without_showing_it(redis_server):
    url = f"redis://:hunter2-wrong@127.0.0.1:{redis_server.port}"
    error = refusal(BrokerAuthenticationError, url)
    assert_says(str(error), "the password was refused", "check redis_password", ":***@")
    assert "hunter2" not in str(error) and "hunter2" not in repr(error.__cause__)


def test_a_missing_password_says_one_is_required(redis_server):
    message = str(refusal(BrokerAuthenticationError, redis_server.url))
    assert_says(message, "requires a password", "set redis_password")


def test_a_url_that_is_not_redis_is_refused_by_configuration():
    with within(10), pytest.raises(ConfigurationError) as caught:
        Manager("http://127.0.0.1:6379", secret=SECRET)
    assert_says(str(caught.value), "must start with redis://")


def test_a_missing_secret_says_where_to_set_one(redis_server):
    with within(10), pytest.raises(ConfigurationError) as caught:
        Manager(
            redis_server.url,
            redis_username=redis_server.admin.name,
            redis_password=redis_server.admin.password,
        )
    assert_says(str(caught.value), "no rhc secret", "RHC_SECRET", "`rhc init`")


def test_a_misspelt_setting_is_refused_listing_the_known_ones(redis_server):
    with within(10), pytest.raises(ConfigurationError) as caught:
        Manager(
            redis_server.url,
            redis_username=redis_server.admin.name,
            redis_password=redis_server.admin.password,
            secret=SECRET,
            heartbeat_tll=5.0,
        )
    assert_says(str(caught.value), "unknown setting(s): heartbeat_tll", "known:", "heartbeat_ttl")


def test_a_config_file_that_does_not_exist_is_named(tmp_path, monkeypatch):
    missing = tmp_path / "rhc.tmol"
    monkeypatch.setenv("RHC_CONFIG_FILE", str(missing))
    with within(10), pytest.raises(ConfigurationError) as caught:
        Manager()
    assert_says(str(caught.value), f"cannot read config file {missing}: No such file")


def test_a_missing_setting_gives_an_error_saying_what_to_set():
    with within(30):
        done = rhc("worker", env={"RHC_CONFIG_FILE": ""})
    assert done.returncode == 1
    assert_says(done.stderr, "no Redis URL", "RHC_REDIS_URL")
    assert "Traceback" not in done.stderr


def test_rhc_worker_refuses_a_password_on_its_command_line():
    with within(30):
        done = rhc("worker", "redis://:hunter2-password@127.0.0.1:6379")
    assert done.returncode != 0
    assert_says(done.stderr, "keep the password off the command line", "redis_password")
    assert "hunter2" not in done.stderr + done.stdout


def test_a_worker_started_while_redis_is_down_exits_saying_so(tmp_path):
    # Given a config file naming a Redis that is not running
    port = free_port()
    settings = {
        "redis_url": f"redis://127.0.0.1:{port}",
        "redis_password": "password-of-a-redis-that-is-down",
        "secret": SECRET,
        "task_public_key": TaskKey(TASK_KEY).public.text,
    }
    config_file = write_config_file(tmp_path / "rhc.toml", settings)
    # When a worker starts
    with within(30):
        done = rhc("worker", env={"RHC_CONFIG_FILE": str(config_file)})
    # Then it exits at once saying where it looked, without a traceback or the password
    assert done.returncode == 1
    assert_says(
        done.stderr, f"cannot reach Redis at redis://127.0.0.1:{port}", "the server is running"
    )
    assert "Traceback" not in done.stderr
    assert "password-of-a-redis" not in done.stderr + done.stdout


def test_a_wrong_secret_or_task_key_is_reported_before_sending_and_workers_carry_on(cluster):
    cluster.start_workers(1)
    impostor = cluster.manager(secret="a-different-secret-of-enough-length")
    with within(10), pytest.raises(SecretMismatchError) as caught:
        impostor.remote_map(fixtures.square, range(3), progress=False)
    assert_says(str(caught.value), "signs results with another secret", "written together")
    assert "a-different-secret" not in str(caught.value)
    stranger = cluster.manager(task_key=new_task_key())
    with within(10), pytest.raises(SecretMismatchError) as caught:
        stranger.remote_map(fixtures.square, range(3), progress=False)
    assert_says(str(caught.value), "trusts task keys", "this notebook signs with")
    assert cluster.manager().remote_map(fixtures.square, range(3), progress=False) == [0, 1, 4]


@pytest.mark.timeout(600)  # the first run builds the Python 3.12 environment
def test_a_worker_on_another_python_minor_is_refused_with_a_clear_message(cluster, other_python):
    # Given only a worker running Python 3.12
    cluster.start_workers(1, prefix="py312-", python=other_python)
    manager = Manager()
    # When this Python 3.11 process submits a job
    with within(20), pytest.raises(VersionMismatchError) as caught:
        manager.remote_map(fixtures.square, range(3), progress=False)
    # Then it is refused, saying why and what to start instead
    assert_says(
        str(caught.value),
        "py312-0",
        "Python 3.12",
        "Python 3.11",
        "same Python minor version",
        "Start workers from an environment with Python 3.11",
    )
    # And once a compatible worker joins, jobs run on it alone
    cluster.start_workers(1)
    identities = Manager().remote_map(fixtures.worker_identity, range(20), progress=False)
    assert {name for _, name, _ in identities} == {"w1"}
    assert manager.workers().workers[0].versions["python"].startswith("3.12")


# -- functions and arguments -------------------------------------------------------------------


def test_an_unpicklable_function_is_refused_before_anything_is_sent(cluster, redis_client):
    cluster.start_workers(1)
    lock = threading.Lock()

    def locked_square(x):
        with lock:
            return x * x

    with within(10), pytest.raises(SerializationError) as caught:
        Manager().remote_map(locked_square, range(3), progress=False)
    assert_says(
        str(caught.value),
        "the function",
        "locked_square",
        "lock",
        "create locks, open files and connections inside the function",
    )
    assert not list(redis_client.scan_iter(f"rhc:{cluster.namespace}:job:*"))


def test_a_function_dragging_a_huge_closure_is_refused_naming_the_function(make_cluster):
    # Given a function that captured 2 MB of data, and a 1 MB payload limit
    cluster = make_cluster(max_payload_bytes=2**20)
    ballast = os.urandom(2 * 2**20)

    def first_byte_plus(x):
        return ballast[0] + x

    with within(10), pytest.raises(PayloadTooLargeError) as caught:
        cluster.manager().remote_map(first_byte_plus, range(3), progress=False)
    assert_says(
        str(caught.value),
        "first_byte_plus serializes to 2.0 MB, over the 1.0 MB payload limit",
        "pass a path or URL to the data rather than the data",
    )


def test_an_oversized_argument_is_named_and_nothing_else_is_lost(cluster):
    cluster.start_workers(1)
    manager = cluster.manager(max_payload_bytes=2**20)
    arguments = [b"small", os.urandom(2 * 2**20), b"small"]
    with within(30), pytest.raises(PayloadTooLargeError) as caught:
        manager.remote_map(len, arguments, progress=False)
    assert_says(
        str(caught.value),
        "argument 1 serializes to 2.0 MB, over the 1.0 MB payload limit",
        "or raise the limit",
    )
    assert manager.remote_map(len, [b"small"], progress=False) == [5]


def test_an_unpicklable_argument_deep_in_a_stream_stops_the_job_naming_it(cluster):
    # Given a generator whose 501st argument cannot be pickled
    cluster.start_workers(1)
    manager = Manager()

    def arguments() -> Iterator[object]:
        yield from range(500)
        yield threading.Lock()

    # When it is mapped: the first 500 are sent and run before the bad one is reached
    with within(30), pytest.raises(SerializationError) as caught:
        manager.remote_map(fixtures.square, arguments(), progress=False)
    # Then the job stops naming that argument, and the workers take the next job
    assert_says(
        str(caught.value),
        "argument 500 cannot be serialized",
        "cannot pickle '_thread.lock' object",
        "must be picklable",
    )
    assert manager.remote_map(fixtures.square, range(3), progress=False) == [0, 1, 4]


def test_an_unknown_job_id_is_refused_saying_why(cluster):
    with within(10), pytest.raises(JobNotFoundError) as caught:
        Manager().job("0123456789abcdef")
    assert_says(
        str(caught.value),
        f"no job '0123456789abcdef' in namespace '{cluster.namespace}'",
        "a wrong id, or its results expired",
    )


# -- tasks on the workers ----------------------------------------------------------------------


def test_a_task_that_raises_reraises_with_remote_traceback_and_argument(cluster):
    cluster.start_workers(1)
    with within(30), pytest.raises(TaskError) as caught:
        Manager().remote_map(fixtures.fail_on_three, range(6), progress=False)
    error = caught.value
    assert error.task == 3
    assert error.argument == 3
    assert error.kind == "exception"
    assert error.error_type == "ValueError"
    assert error.worker == "w0"
    assert_says(str(error), "task 3 (argument 3) failed on worker w0", "three is not allowed")
    assert "fixtures.py" in error.remote_traceback
    assert 'raise ValueError(f"three is not allowed' in error.remote_traceback


def test_a_task_process_death_is_a_failed_attempt_and_the_worker_lives_on(cluster):
    # Given one worker
    cluster.start_workers(1)
    manager = Manager()
    supervisor = cluster.workers["w0"]
    # When a task calls os._exit(1)
    with within(60):
        results = manager.remote_map(
            fixtures.exit_on_two, range(5), retries=2, return_exceptions=True, progress=False
        )
    # Then that task fails after 3 attempts with the reason, the others succeed
    assert results[:2] == [0, 1] and results[3:] == [3, 4]
    error = results[2]
    assert isinstance(error, TaskError)
    assert error.kind == "crashed"
    assert_says(error.message, "exited with code 1", "attempt 3 of 3")
    # And the same worker process is still serving
    assert supervisor.poll() is None
    assert manager.remote_map(fixtures.square, range(3), progress=False) == [0, 1, 4]
    assert cluster.log("w0").count("exited with code 1") == 3


def test_a_task_over_its_timeout_fails_with_a_timeout_reason(cluster):
    cluster.start_workers(1)
    manager = Manager()
    with within(60):
        results = manager.remote_map(
            fixtures.hang_on_one,
            range(3),
            timeout=0.5,
            retries=1,
            return_exceptions=True,
            progress=False,
        )
    assert results[0] == 0 and results[2] == 2
    assert isinstance(results[1], TaskError)
    assert results[1].kind == "timeout"
    assert_says(results[1].message, "exceeded its 0.5 s timeout", "attempt 2 of 2")


def test_a_module_missing_on_the_workers_fails_the_tasks_with_the_import_error(
    cluster, tmp_path, monkeypatch
):
    # Given a helper module that only this process can import
    cluster.start_workers(1)
    folder = tmp_path / "notebook_only"
    folder.mkdir()
    (folder / "analysis_helpers.py").write_text("def twice(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(folder))
    helpers = importlib.import_module("analysis_helpers")
    # When a function of it is mapped
    with within(30), pytest.raises(TaskError) as caught:
        Manager().remote_map(helpers.twice, range(3), progress=False)
    # Then the workers' ModuleNotFoundError comes back, with what to do about it
    error = caught.value
    assert error.kind == "unloadable"
    assert_says(
        str(error),
        "cannot load the job's function: ModuleNotFoundError: No module named 'analysis_helpers'",
        "install it both in the notebook's and in the workers' environment",
        "cloudpickle.register_pickle_by_value(module)",
    )
    assert "ModuleNotFoundError" in error.remote_traceback


def test_a_result_that_cannot_be_pickled_fails_its_task_with_the_reason(cluster):
    cluster.start_workers(1)

    def lock_on_one(x):
        return threading.Lock() if x == 1 else x

    with within(30), pytest.raises(TaskError) as caught:
        Manager().remote_map(lock_on_one, range(3), progress=False)
    assert caught.value.task == 1
    assert_says(
        str(caught.value),
        "the result of task 1 cannot be serialized",
        "cannot pickle '_thread.lock' object",
        "must be picklable",
    )


def test_a_result_the_notebook_cannot_load_names_the_missing_module(cluster, tmp_path):
    # Given a task returning an object of a module that only the worker imports
    cluster.start_workers(1)

    def fit_on_worker(folder: str) -> object:
        Path(folder).mkdir(exist_ok=True)
        Path(folder, "worker_fits.py").write_text("class Fit:\n    pass\n")
        sys.path.insert(0, folder)
        return importlib.import_module("worker_fits").Fit()

    # When its results reach the notebook
    with within(30), pytest.raises(SerializationError) as caught:
        Manager().remote_map(fit_on_worker, [str(tmp_path / "worker_only")], progress=False)
    # Then the job ends naming the module, and where it must be installed
    assert_says(
        str(caught.value),
        "cannot load results of job",
        "No module named 'worker_fits'",
        "install it both in the notebook's and in the workers' environment",
    )


def test_an_oversized_result_fails_its_task_with_the_reason_and_spares_the_others(make_cluster):
    cluster = make_cluster(max_payload_bytes=2**20)
    cluster.start_workers(1)
    with within(30):
        results = cluster.manager().remote_map(
            fixtures.random_bytes, [10, 2 * 2**20, 10], return_exceptions=True, progress=False
        )
    assert len(results[0]) == len(results[2]) == 10
    error = results[1]
    assert isinstance(error, TaskError) and error.argument == 2 * 2**20
    assert_says(
        str(error),
        "the result of task 1 serializes to 2.0 MB, over the 1.0 MB payload limit",
        "pass a path or URL to the data rather than the data",
    )


def test_a_merged_result_over_the_payload_limit_fails_with_the_reason(make_cluster):
    cluster = make_cluster(max_payload_bytes=2**20)
    cluster.start_workers(1)
    with within(30), pytest.raises(TaskError) as caught:
        cluster.manager().remote_map(
            fixtures.random_bytes, [10, 2 * 2**20], reduce=operator.add, progress=False
        )
    assert_says(
        str(caught.value),
        "merged result serializes to 2.0 MB, over the 1.0 MB payload limit",
        "or raise the limit",
    )


def test_results_that_cannot_be_merged_fail_naming_both_types(cluster, samples):
    # Given a processor returning text, which does not add up
    cluster.start_workers(1)

    def label(chunk):
        return f"entries {chunk.entry_start}-{chunk.entry_stop}"

    # When it runs over several chunks: merged on the worker (a TaskError) or, had the worker
    # sent each chunk's output alone, in the notebook (a MergeError)
    with within(30), pytest.raises((TaskError, MergeError)) as caught:
        run(Manager(), label, [samples[0]], chunksize=10, progress=False)
    # Then the message names what cannot be merged, and what can
    assert_says(
        str(caught.value),
        "cannot merge str and str",
        "results must be numbers, numpy arrays, histograms, or dicts, lists or sets of them",
    )


def test_a_forged_pickle_in_the_task_stream_is_never_executed(cluster, redis_client, tmp_path):
    # Given a pickle that would create a file when loaded
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    body = b"\x00" + pickle.dumps([Exploit()])
    stream = Keys(cluster.namespace).task_stream(compat_tag(versions()))
    header = one_task_batch(cluster.namespace, "0123456789abcdef", "f" * 32)
    # When it is queued in the real message shape, sealed with a secret (not the task key) and
    # unsigned
    forged_signature = seal(b"not-the-shared-secret-at-all", header, body)
    redis_client.xadd(stream, task_entry("0123456789abcdef", 0, forged_signature))
    redis_client.xadd(stream, task_entry("0123456789abcdef", 1, pickle.dumps([Exploit()])))
    cluster.start_workers(1)
    # Then a valid task queued after them still runs
    with within(30):
        assert Manager().remote_map(fixtures.square, range(5), progress=False) == [0, 1, 4, 9, 16]
    # And nothing was executed, and the forged entries are gone, not left to loop
    assert not marker.exists()
    assert redis_client.xlen(stream) == 0
    assert redis_client.xpending(stream, GROUP)["pending"] == 0
    log = cluster.log("w0")
    assert log.count("without unpickling it") == 2
    assert_says(log, "not signed with the notebook's task key", "not an rhc envelope")


def test_a_stored_function_with_a_bad_signature_is_not_loaded(cluster, redis_client):
    # Given a job whose stored function was replaced by one sealed with a secret
    cluster.start_workers(1)
    manager = Manager()
    manager.remote_map(fixtures.square, range(2), progress=False)
    (key,) = redis_client.scan_iter(f"rhc:{cluster.namespace}:fn:*")
    forged = seal(
        b"not-the-shared-secret-at-all", {}, dumps((os.system, None), what="x", limit=2**20)
    )
    redis_client.set(key, forged)
    # When the worker needs it (a fresh task process, so nothing is cached)
    cluster.workers["w0"].send_signal(signal.SIGTERM)
    cluster.workers["w0"].wait(10)
    cluster.start_workers(1)
    with within(30):
        results = manager.remote_map(
            fixtures.square, range(2), return_exceptions=True, progress=False
        )
    # Then the tasks fail as unloadable, and nothing ran
    assert all(error.kind == "unloadable" for error in results)
    assert_says(results[0].message, "the stored function failed signature verification")


def test_cancel_drops_queued_tasks_and_interrupts_running_ones(cluster):
    cluster.start_workers(2)
    manager = Manager()
    job = manager.submit(fixtures.sleep_for, [30.0] * 20)
    wait_for(
        lambda: all(w.state == "busy" for w in manager.workers().workers),
        30,
        "both workers to run a 30 s task",
    )
    with within(10):
        job.cancel()
        with pytest.raises(JobCancelledError) as caught:
            job.results()
    assert_says(str(caught.value), f"job {job.id} was cancelled")
    # The workers drop what they ran and idle again, long before 30 s
    wait_for(
        lambda: all(w.state == "idle" for w in manager.workers().workers),
        10,
        "workers to drop the cancelled tasks",
    )
    assert manager.remote_map(fixtures.square, range(4), progress=False) == [0, 1, 4, 9]


def test_reattaching_to_a_cancelled_job_says_it_was_cancelled(cluster):
    # Given a job whose tasks were all sent, cancelled by the notebook that sent it
    cluster.start_workers(1)
    job = Manager().submit(fixtures.sleep_for, [30.0] * 3)
    wait_for(lambda: job.progress.total == 3, 30, "every task to be sent")
    job.cancel()
    # When a restarted kernel re-attaches to it by id and waits
    again = Manager().job(job.id)
    with within(10), pytest.raises(JobCancelledError) as caught:
        again.results()
    # Then it is told at once, rather than waiting for results that never come
    assert_says(str(caught.value), f"job {job.id} was cancelled")


def test_reattaching_to_a_job_its_sender_gave_up_on_names_the_error(cluster):
    # Given a job whose notebook stopped it on an argument that cannot be pickled
    cluster.start_workers(1)

    def arguments() -> Iterator[object]:
        yield from range(5)
        yield threading.Lock()

    job = Manager().submit(fixtures.square, arguments())
    with pytest.raises(SerializationError):
        job.results(timeout=30)
    # When a restarted kernel re-attaches to it by id and waits
    with within(10), pytest.raises(JobCancelledError) as caught:
        Manager().job(job.id).results()
    # Then it is told the error that stopped it, not merely that it was cancelled
    assert_says(
        str(caught.value),
        f"job {job.id} was stopped by an error in the process that sent it",
        "SerializationError: argument 5 cannot be serialized",
    )


def test_a_job_with_no_worker_running_says_so_and_ends_at_its_timeout(cluster, caplog):
    # Given a namespace where no worker was started
    job = Manager().submit(fixtures.square, range(3))
    # When the notebook waits for the results with a timeout
    with within(10), pytest.raises(ResultTimeoutError) as caught:
        job.results(timeout=2)
    # Then it was told no worker runs and how to start one, and the wait ends at the timeout
    assert_says(
        caplog.text, f"no worker is running in namespace '{cluster.namespace}'", "`rhc worker`"
    )
    assert_says(
        str(caught.value),
        "not finished within the timeout",
        "0/3 tasks done",
        f"No worker is running in namespace '{cluster.namespace}'",
        "`rhc condor submit`",
    )
    job.cancel()


def test_redis_gone_for_good_ends_the_job_with_a_clear_error(own_redis):
    server, make = own_redis
    cluster = make(reconnect_timeout=2.0)
    cluster.start_workers(1)
    job = cluster.manager().submit(fixtures.sleep_for, [0.5] * 20)
    wait_for(lambda: job.progress.done >= 1, 60, "the job to be under way")
    server.kill()
    with within(15), pytest.raises(BrokerConnectionError) as caught:
        job.results(timeout=60)
    assert_says(
        str(caught.value),
        "did not come back within 2 s",
        "re-attach with Manager().job(id)",
    )


def test_a_full_redis_refusing_writes_ends_the_job_saying_so(own_redis):
    # Given a Redis at its memory limit, which refuses writes (maxmemory, no eviction)
    server, make = own_redis
    manager = make().manager()
    client = server.client()
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", 1)
    client.close()
    # When a job is sent, the job ends saying what is wrong and what to change
    with within(10), pytest.raises(BrokerError) as caught:
        manager.remote_map(fixtures.square, range(3), progress=False)
    message = str(caught.value)
    assert_says(message, "is full (maxmemory reached)", "while sending tasks", "maxmemory")
    assert "XADD" not in message  # not redis-py's text, which quotes every payload


def test_a_worker_facing_a_full_redis_says_so_once_and_serves_again_when_it_has_room(own_redis):
    # Given a worker on a Redis that fills up (maxmemory, no eviction) for a few heartbeats
    server, make = own_redis
    cluster = make()
    cluster.start_workers(1)
    client = server.client()
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", 1)
    wait_for(lambda: "refuses heartbeats" in cluster.log("w0"), 10, "the worker to notice")
    # When room is made again
    client.config_set("maxmemory", 0)
    client.close()
    # Then the worker said so once, without a traceback, and runs a job
    with within(30):
        assert cluster.manager().remote_map(fixtures.square, range(3), progress=False) == [0, 1, 4]
    log = cluster.log("w0")
    assert_says(log, "Redis is full (maxmemory reached)", "raise Redis's maxmemory")
    assert log.count("refuses heartbeats") == 1 and "Traceback" not in log


# -- NanoAOD files -----------------------------------------------------------------------------


BAD_FILE_REASONS = {
    "missing": "file not found",
    "corrupt": "corrupt: its ROOT structures do not decode (",
    "truncated": "not a ROOT file, or truncated",
    "not ROOT": "not a ROOT file, or truncated",
    "no Events tree": "no 'Events' tree (it has: Runs)",
    "no branch": "no branch 'Muon_eta'",
}
"""What the user is told about each kind of file of the bad_files fixture."""


@pytest.mark.parametrize(("kind", "reason"), BAD_FILE_REASONS.items(), ids=list(BAD_FILE_REASONS))
def test_a_bad_file_is_named_with_its_reason_before_anything_runs(
    cluster, samples, bad_files, kind, reason
):
    with within(30), pytest.raises(BadFilesError) as caught:
        run(Manager(), Dimuon(), [samples[0], bad_files[kind]], progress=False)
    assert_says(
        str(caught.value),
        f"1 file(s) cannot be analysed:\n  {bad_files[kind]}: {reason}",
        "pass skip_bad_files=True to run without them",
    )


def test_a_url_answering_404_is_named_as_a_missing_file(cluster, tmp_path):
    (tmp_path / "www").mkdir()
    server = Nginx(tmp_path / "www", tmp_path / "nginx").start()
    try:
        url = server.url(tmp_path / "www" / "gone.root")
        with within(30), pytest.raises(BadFilesError) as caught:
            run(Manager(), Dimuon(), [url], progress=False)
    finally:
        server.stop()
    assert_says(str(caught.value), f"{url}: file not found", "skip_bad_files=True")


def test_a_branch_missing_on_the_worker_names_the_file(cluster, samples):
    # Given a processor that reads a branch no file has, undeclared (so chunking cannot check)
    cluster.start_workers(1)

    def needs_nonexistent_branch(chunk):
        from rhc.nanoaod import read

        return len(read(chunk, ["Muon_nonexistent"]))

    with within(30), pytest.raises(TaskError) as caught:
        run(Manager(), needs_nonexistent_branch, [samples[0]], progress=False)
    assert_says(str(caught.value), f"{samples[0]}: no branch 'Muon_nonexistent'")
    assert caught.value.argument.file == samples[0]


def test_an_empty_fileset_is_refused_saying_what_a_fileset_is(cluster):
    with within(10), pytest.raises(ValueError) as caught:
        run(Manager(), Dimuon(), {"data": []}, progress=False)
    assert_says(str(caught.value), "the fileset names no files", "{dataset: [paths or URLs]}")


def test_a_chunksize_of_zero_is_refused(cluster, samples):
    with within(30), pytest.raises(ValueError) as caught:
        run(Manager(), Dimuon(), [samples[0]], chunksize=0, progress=False)
    assert_says(str(caught.value), "chunksize must be a positive number of entries, not 0")
