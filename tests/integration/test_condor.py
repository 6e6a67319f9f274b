# SPDX-License-Identifier: BSD-3-Clause
"""rhc workers on the mini pool, submitted as a person would: `rhc condor submit | q | rm`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from rhc import Manager
from rhc.condor.minipool.client import MiniPoolClient
from rhc.config import pool_token
from rhc.local import free_port
from tests import fixtures
from tests.conftest import REPOSITORY, assert_says, rhc_command, wait_for
from tests.grid import jwt, now, write_file, write_proxy


def rhc(*arguments: str, config_file: Path) -> subprocess.CompletedProcess:
    return rhc_command(*arguments, env={"RHC_CONFIG_FILE": str(config_file)}, timeout=60)


class Pool:
    """`rhc minicondor serve` in its own process (vanilla jobs allowed), stopped by its PID;
    token_file is the token it wrote, which configs name as pool_token_file."""

    def __init__(self, work_dir, *, slots: int, evict_every: float | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token_file = work_dir.parent / "pool_token"
        command = [
            sys.executable,
            "-m",
            "rhc",
            "minicondor",
            "serve",
            "--port",
            str(self.port),
            "--slots",
            str(slots),
            "--slot-memory",
            "2048",
            "--work-dir",
            str(work_dir),
            "--grace",
            "10",
            "--token-file",
            str(self.token_file),
            "--allow-vanilla",
        ]
        if evict_every is not None:
            command += ["--evict-every", str(evict_every)]
        # Jobs get the pool's environment, as condor's getenv would: tests.fixtures imports.
        env = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
        self.log = open(work_dir.parent / "pool.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self._answers, 30, "the mini pool to answer")

    @property
    def client(self) -> MiniPoolClient:
        return MiniPoolClient(self.url, token=pool_token(None, str(self.token_file)))

    def _answers(self) -> bool:
        assert self.process.poll() is None, "the mini pool exited"
        try:
            self.client.status()
            return True
        except Exception:
            return False

    def jobs(self) -> dict[str, dict]:
        return {job["id"]: job for job in self.client.jobs()}

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)
        self.log.close()


@pytest.fixture
def pool_cluster(make_cluster, tmp_path):
    """A namespace whose config names a mini pool; the pool is started by the test."""
    made = []

    def make(**pool_options: object):
        port_holder = Pool(tmp_path / "pool", **pool_options)
        made.append(port_holder)
        cluster = make_cluster(
            condor_pool=port_holder.url, pool_token_file=str(port_holder.token_file)
        )
        return cluster, port_holder

    yield make
    for pool in made:
        pool.stop()


def submit_workers(cluster, count: int, *extra: str) -> list[str]:
    done = rhc(
        "condor",
        "submit",
        "-n",
        str(count),
        "--universe",
        "vanilla",
        *extra,
        config_file=cluster.config_file,
    )
    assert done.returncode == 0, done.stderr
    ids = done.stdout.split(": ", 1)[1].split(", ")
    return [job_id.strip() for job_id in ids]


def live_condor_ids(manager: Manager) -> set[str]:
    return {worker.condor_id for worker in manager.workers().workers}


def test_submitted_workers_join_redis_run_a_map_and_report_their_condor_ids(pool_cluster):
    # Given a mini pool with four slots
    cluster, _ = pool_cluster(slots=4)
    # When three vanilla workers are submitted the way a person would
    ids = submit_workers(cluster, 3)
    manager = Manager()
    wait_for(lambda: live_condor_ids(manager) == set(ids), 60, "the three workers to join")
    # Then they run a map
    assert manager.remote_map(fixtures.square, range(100), progress=False) == [
        x * x for x in range(100)
    ]
    # And `rhc condor q` shows them Running under the ids the workers report
    listing = rhc("condor", "q", config_file=cluster.config_file)
    assert listing.returncode == 0, listing.stderr
    for job_id in ids:
        line = next(line for line in listing.stdout.splitlines() if line.startswith(job_id))
        assert "Running" in line
    assert {w.name.rsplit("-", 1)[1] for w in manager.workers().workers} == set(ids)


def test_condor_rm_makes_a_worker_hand_back_its_tasks_and_the_job_completes(pool_cluster):
    # Given three workers busy with 1 s tasks
    cluster, pool = pool_cluster(slots=3)
    ids = submit_workers(cluster, 3)
    manager = Manager()
    wait_for(lambda: len(manager.workers().workers) == 3, 60, "the workers to join")
    job = manager.submit(fixtures.sleep_for, [1.0] * 18)
    wait_for(lambda: job.progress.done >= 3, 60, "the job to be under way")
    # When one worker job is removed
    removed = rhc("condor", "rm", ids[0], config_file=cluster.config_file)
    assert removed.returncode == 0 and "1 job(s) removed" in removed.stdout
    # Then it leaves (handing back at once, not after its heartbeat), and the job completes
    wait_for(lambda: ids[0] not in live_condor_ids(manager), 10, "the removed worker to leave")
    wait_for(lambda: pool.jobs()[ids[0]]["state"] == "Removed", 15, "the removed job to end")
    # It exited on its own after SIGTERM (0), saying it handed its tasks back
    removed_job = pool.jobs()[ids[0]]
    assert removed_job["exit_code"] == 0
    log = next(Path(removed_job["output_dir"]).glob("rhc-worker.*.err")).read_text()
    assert not Path(removed_job["scratch_dir"]).exists()
    assert "handing back tasks and stopping" in log
    assert job.results(timeout=120) == [1.0] * 18


def test_a_worker_asking_more_memory_than_any_slot_stays_idle_and_q_says_why(pool_cluster):
    cluster, pool = pool_cluster(slots=2)
    (job_id,) = submit_workers(cluster, 1, "--request-memory", "16GB")
    wait_for(lambda: pool.jobs()[job_id]["reason"], 30, "the pool to give a reason")
    listing = rhc("condor", "q", config_file=cluster.config_file)
    line = next(line for line in listing.stdout.splitlines() if line.startswith(job_id))
    assert "Idle" in line and "16384" in line and "2048" in line


def test_a_proxy_and_a_token_reach_the_workers_tasks_as_private_files_and_show_nowhere(
    pool_cluster, tmp_path
):
    # Given a valid x509 proxy and a bearer token (a JWT), each 0600
    cluster, pool = pool_cluster(slots=1)
    proxy, token_file = tmp_path / "x509up_u1000", tmp_path / "bt_u1000"
    key = write_proxy(proxy, expires=now() + timedelta(days=1)).decode()
    token = jwt(now() + timedelta(days=1))
    write_file(token_file, token + "\n")
    credentials = ("--x509-proxy", str(proxy), "--bearer-token-file", str(token_file))
    # When a worker is submitted with them to the mini pool, as a person would, and runs a task
    (job_id,) = submit_workers(cluster, 1, *credentials)
    manager = Manager()
    wait_for(lambda: live_condor_ids(manager) == {job_id}, 60, "the worker to join")
    (seen,) = manager.remote_map(fixtures.grid_credentials, [0], progress=False)
    # Then the task finds each in its environment: a 0600 file in the job's scratch directory
    # holding the bytes that were sent
    for variable, sent in (("X509_USER_PROXY", proxy), ("BEARER_TOKEN_FILE", token_file)):
        found = seen[variable]
        assert Path(found["path"]).parent == Path(seen["scratch"]), variable
        assert found["mode"] == 0o600 and found["content"] == sent.read_bytes(), variable
    # And neither the key nor the token is in the description, the job ad, the job's
    # environment, the worker's command line or what the pool shows of its jobs
    description = rhc(
        "condor", "submit", "--universe", "vanilla", "--dry-run", *credentials,
        config_file=cluster.config_file,
    )  # fmt: skip
    assert "x509userproxy" in description.stdout and "bt_u1000" in description.stdout
    assert "--bearer-token-file bt_u1000" in seen["command_line"].decode()
    places = {
        "description": description.stdout,
        "job ad": seen["job_ad"],
        "environment": json.dumps(seen["environment"]),
        "command line": seen["command_line"].decode(),
        "the pool's jobs": json.dumps(pool.client.jobs()),
    }
    key_body = "".join(key.splitlines()[1:-1])
    for secret in (key_body, key_body[:24], token, token.split(".")[1], "PRIVATE KEY"):
        assert not [place for place, text in places.items() if secret in text], secret


def test_a_proxy_others_may_read_is_refused_and_nothing_reaches_the_pool(pool_cluster, tmp_path):
    # Given a valid proxy that its group may read, as a careless copy leaves it
    cluster, pool = pool_cluster(slots=1)
    proxy = tmp_path / "x509up_u1000"
    write_proxy(proxy, expires=now() + timedelta(days=1), mode=0o640)
    # When workers are submitted with it
    refused = rhc(
        "condor", "submit", "--universe", "vanilla", "--x509-proxy", str(proxy),
        config_file=cluster.config_file,
    )  # fmt: skip
    # Then the command says why and what to do, and the pool never saw a job
    assert refused.returncode == 1 and refused.stdout == ""
    assert_says(refused.stderr, "is open to others (mode 0640)", f"chmod 600 {proxy}")
    assert pool.client.jobs() == []
