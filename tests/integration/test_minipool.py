# SPDX-License-Identifier: BSD-3-Clause
"""The mini pool with real processes: a Pool and its HTTP server on loopback (in this process,
or `rhc minicondor serve` as a subprocess), real shell and Python jobs, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from rhc.condor.minipool import MiniPoolClient, MiniPoolError, MiniPoolServer, Pool, PoolSettings
from rhc.local import free_port
from tests.conftest import REPOSITORY, wait_for
from tests.conftest import rhc_command as rhc

GRACE = 1.0
TOKEN = "t0ken-of-the-test-pool"


@pytest.fixture
def make_pool(tmp_path):
    """Start pools (2 slots of 1 cpu, 1024 MB, 1 s grace, vanilla jobs allowed) and clients
    with their token; each pool is stopped after the test."""
    started: list[tuple[Pool, MiniPoolServer]] = []

    def make(**overrides: object) -> tuple[Pool, MiniPoolClient]:
        settings = PoolSettings(
            work_dir=tmp_path / f"pool{len(started)}",
            slots=2,
            slot_cpus=1,
            slot_memory_mb=1024,
            grace=GRACE,
            **{"allow_vanilla": True, **overrides},
        )
        pool = Pool(settings).start()
        server = MiniPoolServer(pool, token=TOKEN, port=0).start()
        started.append((pool, server))
        return pool, MiniPoolClient(server.url, token=TOKEN)

    yield make
    for pool, server in started:
        server.stop()
        pool.stop()


def job(client: MiniPoolClient, job_id: str) -> dict:
    (found,) = [entry for entry in client.jobs() if entry["id"] == job_id]
    return found


def in_state(client: MiniPoolClient, job_id: str, *states: str) -> dict | None:
    found = job(client, job_id)
    return found if found["state"] in states else None


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def shell_job(script: str, *, extra: str = "", queue: int = 1) -> str:
    """A vanilla job running a POSIX shell script (the executable stays on the pool's host).
    Mind that condor expands $(NAME) in the script as a submit macro: write `...` or $VAR."""
    quoted = script.replace("'", "''").replace('"', '""')
    return (
        textwrap.dedent(
            f"""\
        executable = /bin/sh
        transfer_executable = false
        arguments = "-c '{quoted}'"
        """
        )
        + textwrap.dedent(extra)
        + f"queue {queue}\n"
    )


# Waits for a file named go in the scratch directory, at most 20 s; says it is ready first.
WAIT_FOR_GO = (
    "touch ready; n=0; while [ ! -e go ] && [ $n -lt 1000 ]; do sleep 0.02; n=$((n+1)); done"
)

PYTHON_JOB = f"""\
#!{sys.executable}
import json, os, pathlib, stat, sys, time
from rhc.worker.identity import condor_job_id
pathlib.Path("ready").touch()
deadline = time.monotonic() + 20
while not pathlib.Path("go").exists() and time.monotonic() < deadline:
    time.sleep(0.01)
print(json.dumps({{
    "cwd": os.getcwd(),
    "scratch": os.environ["_CONDOR_SCRATCH_DIR"],
    "slot": os.environ["_CONDOR_SLOT"],
    "ad": pathlib.Path(os.environ["_CONDOR_JOB_AD"]).read_text(),
    "condor_id": condor_job_id(pathlib.Path(os.environ["_CONDOR_JOB_AD"])),
    "argv": sys.argv[1:],
    "greeting": os.environ["GREETING"],
    "home": os.environ.get("HOME"),
    "secret_mode": stat.S_IMODE(os.stat("secret.toml").st_mode),
    "secret": pathlib.Path("secret.toml").read_text(),
}}))
print("to stderr", file=sys.stderr)
"""


def test_a_job_runs_in_its_scratch_directory_with_its_files_and_its_job_ad(make_pool):
    # Given a pool, and a Python executable and a 0600 secret sent with two procs
    _, client = make_pool()
    description = f"""\
        executable = job.py
        arguments = "'two words' plain"
        environment = "GREETING='hello there' PYTHONPATH={REPOSITORY}"
        transfer_input_files = /somewhere/on/the/submit/host/secret.toml
        request_memory = 512
        JobBatchName = smoke
        +Flavour = "vanilla"
        output = out.$(ProcId).txt
        error = err.txt
        queue 2
    """
    files = {"job.py": (PYTHON_JOB.encode(), 0o755), "secret.toml": (b"password = 1\n", 0o600)}
    # When it is submitted
    cluster, procs = client.submit(textwrap.dedent(description), files, "alice")
    assert procs == [0, 1]
    ids = [f"{cluster}.0", f"{cluster}.1"]
    # Then both run (two slots), and finish when let go
    for job_id in ids:
        running = wait_for(lambda i=job_id: in_state(client, i, "Running"), 10, f"{job_id} to run")
        scratch = Path(running["scratch_dir"])
        wait_for((scratch / "ready").exists, 10, f"{job_id} to be ready")
        (scratch / "go").touch()
    for proc, job_id in enumerate(ids):
        done = wait_for(lambda i=job_id: in_state(client, i, "Completed", "Held"), 10, job_id)
        assert (done["state"], done["exit_code"], done["reason"]) == (
            "Completed",
            0,
            "exited with code 0",
        )
        assert (done["owner"], done["batch_name"], done["request_memory_mb"]) == (
            "alice",
            "smoke",
            512,
        )
        scratch, output = Path(done["scratch_dir"]), Path(done["output_dir"])
        seen = json.loads((output / f"out.{proc}.txt").read_text())
        assert (output / "err.txt").read_text() == "to stderr\n"
        # its scratch directory, with the copy of the secret, is gone with it
        assert not scratch.exists()
        # in its scratch directory, with the secret still 0600
        assert seen["cwd"] == seen["scratch"] == str(scratch)
        assert (seen["secret_mode"], seen["secret"]) == (0o600, "password = 1\n")
        # with its arguments, environment (and the pool's), and its ClusterId.ProcId
        assert seen["argv"] == ["two words", "plain"]
        assert seen["greeting"] == "hello there"
        assert seen["home"] == os.environ.get("HOME")
        assert seen["condor_id"] == job_id
        assert seen["slot"] in ("slot1", "slot2")
        ad = dict(line.split(" = ", 1) for line in seen["ad"].splitlines())
        assert ad["ClusterId"] == str(cluster)
        assert ad["ProcId"] == str(proc)
        assert ad["Owner"] == '"alice"'
        assert ad["JobBatchName"] == '"smoke"'
        assert (ad["RequestCpus"], ad["RequestMemory"]) == ("1", "512")
        assert ad["Iwd"] == f'"{scratch}"'
        assert ad["Flavour"] == '"vanilla"'


def test_more_jobs_than_slots_wait_idle_and_run_in_submit_order(make_pool):
    # Given a pool of two slots and three jobs that run until told to stop
    _, client = make_pool()
    cluster, _ = client.submit(shell_job(WAIT_FOR_GO, queue=3), {}, "bob")
    first, second, third = (f"{cluster}.{proc}" for proc in range(3))
    # Then two run, and the third waits for a slot
    for job_id in (first, second):
        wait_for(lambda i=job_id: in_state(client, i, "Running"), 10, f"{job_id} to run")
    waiting = job(client, third)
    assert (waiting["state"], waiting["reason"], waiting["slot"]) == (
        "Idle",
        "waiting for a free slot",
        None,
    )
    assert sorted(slot["job"] for slot in client.status()) == [first, second]
    assert {slot["state"] for slot in client.status()} == {"Claimed"}
    # When the first ends
    scratch = Path(job(client, first)["scratch_dir"])
    wait_for((scratch / "ready").exists, 10, "the first job to be ready")
    (scratch / "go").touch()
    # Then the third takes its slot, and all end
    wait_for(lambda: in_state(client, third, "Running"), 10, "the third job to run")
    assert job(client, first)["state"] == "Completed"
    for job_id in (second, third):
        scratch = Path(job(client, job_id)["scratch_dir"])
        wait_for((scratch / "ready").exists, 10, f"{job_id} to be ready")
        (scratch / "go").touch()
    for job_id in (second, third):
        wait_for(lambda i=job_id: in_state(client, i, "Completed"), 10, f"{job_id} to end")
    assert {slot["state"] for slot in client.status()} == {"Unclaimed"}


def test_a_job_no_slot_can_match_stays_idle_and_says_why(make_pool):
    # Given a pool of 1024 MB slots, a job asking for 8 GB, then a small one
    _, client = make_pool()
    big, _ = client.submit(shell_job("true", extra="request_memory = 8 GB\n"), {}, "carol")
    small, _ = client.submit(shell_job("exit 4"), {}, "carol")
    # Then the small one runs past it, and the big one stays idle with the reason
    done = wait_for(lambda: in_state(client, f"{small}.0", "Completed"), 10, "the small job")
    assert done["exit_code"] == 4
    stuck = job(client, f"{big}.0")
    assert stuck["state"] == "Idle"
    assert stuck["reason"] == "request_memory 8192 MB exceeds every slot (largest: 1024 MB)"
    assert stuck["request_memory_mb"] == 8192


def test_removal_sends_sigterm_that_the_job_can_handle(make_pool):
    # Given a running job that traps SIGTERM
    _, client = make_pool()
    script = f"trap 'echo terminated; exit 3' TERM; {WAIT_FOR_GO}"
    cluster, _ = client.submit(shell_job(script), {}, "dave")
    running = wait_for(lambda: in_state(client, f"{cluster}.0", "Running"), 10, "the job to run")
    scratch = Path(running["scratch_dir"])
    wait_for((scratch / "ready").exists, 10, "the job to trap SIGTERM")
    # When it is removed
    assert client.remove(cluster=cluster, proc=0) == 1
    # Then it handled SIGTERM, and is Removed once it has exited
    removed = wait_for(lambda: in_state(client, f"{cluster}.0", "Removed"), 10, "the removal")
    assert (Path(removed["output_dir"]) / "_condor_stdout").read_text() == "terminated\n"
    assert not scratch.exists()
    assert removed["reason"] == "removed while running"
    assert client.status()[0]["state"] == "Unclaimed"
    # And removing it again removes nothing
    assert client.remove(cluster=cluster) == 0


def test_vacate_evicts_a_running_job_now_and_it_runs_again(make_pool, tmp_path):
    # Given a running job that records each start and traps SIGTERM, and a pool without
    # evictions of its own
    _, client = make_pool()
    starts = tmp_path / "starts"
    script = f"echo start >> {starts}; trap 'echo term >> {starts}; exit 1' TERM; {WAIT_FOR_GO}"
    cluster, _ = client.submit(shell_job(script), {}, "dora")
    running = wait_for(lambda: in_state(client, f"{cluster}.0", "Running"), 10, "the job to run")
    wait_for((Path(running["scratch_dir"]) / "ready").exists, 10, "the job to trap SIGTERM")
    # When it is vacated, as with condor_vacate_job
    assert client.vacate(cluster=cluster, proc=0) == 1
    # Then it got SIGTERM and runs again, counted as an eviction
    again = wait_for(
        lambda: (
            (entry := job(client, f"{cluster}.0"))["state"] == "Running"
            and starts.read_text().splitlines() == ["start", "term", "start"]
            and entry
        ),
        15,
        "the job to be evicted and run again",
    )
    assert again["evictions"] == 1
    # And a job that is not running is not vacated
    assert client.vacate(cluster=cluster + 1) == 0


def test_a_job_ignoring_sigterm_is_killed_after_the_grace_period(make_pool):
    # Given a job (and a child of it) that ignore SIGTERM
    _, client = make_pool()
    script = "trap '' TERM; sleep 60 & echo $! > child; echo $$ > pid; touch ready; wait"
    cluster, _ = client.submit(shell_job(script, extra="JobBatchName = stubborn\n"), {}, "erin")
    running = wait_for(lambda: in_state(client, f"{cluster}.0", "Running"), 10, "the job to run")
    scratch = Path(running["scratch_dir"])
    wait_for((scratch / "ready").exists, 10, "the job to start its child")
    pids = [int((scratch / name).read_text()) for name in ("pid", "child")]
    # When its batch is removed
    removed_at = time.monotonic()
    assert client.remove(batch_name="stubborn") == 1
    # Then it keeps running through the grace period, and is SIGKILLed after it
    stubborn = job(client, f"{cluster}.0")
    assert "remove: SIGTERM sent, SIGKILL after 1 s" in stubborn["reason"]
    assert stubborn["stopping"] == "remove"
    wait_for(lambda: in_state(client, f"{cluster}.0", "Removed"), 10, "the removal")
    assert time.monotonic() - removed_at >= GRACE
    assert not [pid for pid in pids if alive(pid)]


def test_held_when_the_executable_does_not_exist(make_pool):
    _, client = make_pool()
    cluster, _ = client.submit("executable = /nonexistent/program\nqueue\n", {}, "frank")
    held = wait_for(lambda: in_state(client, f"{cluster}.0", "Held"), 10, "the job to be held")
    assert "/nonexistent/program" in held["reason"]
    assert "No such file" in held["reason"]
    assert {slot["state"] for slot in client.status()} == {"Unclaimed"}
    assert client.remove() == 1
    assert job(client, f"{cluster}.0")["state"] == "Removed"


def test_a_docker_job_without_its_image_is_held_and_nothing_is_pulled(make_pool):
    # Given a docker-universe job whose image exists nowhere (but the pool allows)
    _, client = make_pool(allowed_images=("rhc/minipool-absent:*",))
    description = (
        "universe = docker\ndocker_image = rhc/minipool-absent:0\nexecutable = rhc\n"
        "transfer_executable = false\narguments = worker\nqueue\n"
    )
    cluster, _ = client.submit(description, {}, "jack")
    # Then it is held, with the reason (here: no engine at all; with one: the missing image)
    held = wait_for(lambda: in_state(client, f"{cluster}.0", "Held"), 30, "the job to be held")
    assert (
        "rhc/minipool-absent:0 is not on the pool's Docker engine" in held["reason"]
        or "no Docker engine answers the pool" in held["reason"]
    ), held["reason"]
    assert held["universe"] == "docker"


def test_eviction_puts_a_job_back_to_idle_and_it_runs_again_with_the_same_id(make_pool, tmp_path):
    # Given a pool that evicts a running job every 0.2 s
    _, client = make_pool(evict_every=0.2, seed=7)
    starts = tmp_path / "starts"
    # a long job that records each start, and a short one
    long_script = f'echo "`grep -h ClusterId $_CONDOR_JOB_AD` $PWD" >> {starts}; exec sleep 60'
    long, _ = client.submit(shell_job(long_script), {}, "gina")
    short, _ = client.submit(shell_job("sleep 0.2"), {}, "gina")
    # Then the long job is evicted and started again, in the same scratch directory
    evicted = wait_for(
        lambda: (
            (entry := job(client, f"{long}.0"))["evictions"] >= 1
            and entry["state"] == "Running"
            and starts.exists()
            and len(starts.read_text().splitlines()) >= 2
            and entry
        ),
        15,
        "the long job to be evicted and run again",
    )
    assert evicted["reason"].startswith("evicted ")
    lines = starts.read_text().splitlines()
    assert set(lines) == {f"ClusterId = {long} {evicted['scratch_dir']}"}
    # And the short job completes, evicted or not
    done = wait_for(lambda: in_state(client, f"{short}.0", "Completed"), 15, "the short job")
    assert done["exit_code"] == 0


def test_stopping_the_pool_leaves_no_process_behind(make_pool):
    # Given running jobs: one with a child in the background, one ignoring SIGTERM
    pool, client = make_pool()
    polite = "sleep 60 & echo $! > child; echo $$ > pid; touch ready; wait"
    stubborn = f"trap '' TERM; {polite}"
    ids = [f"{client.submit(shell_job(script), {}, 'hank')[0]}.0" for script in (polite, stubborn)]
    pids = []
    for job_id in ids:
        running = wait_for(lambda i=job_id: in_state(client, i, "Running"), 10, f"{job_id}")
        scratch = Path(running["scratch_dir"])
        wait_for((scratch / "ready").exists, 10, f"{job_id} to start its child")
        pids += [int((scratch / name).read_text()) for name in ("pid", "child")]
    assert all(alive(pid) for pid in pids)
    # When the pool stops
    began = time.monotonic()
    pool.stop()
    # Then every process of every job is gone, within the grace period and a little
    assert not [pid for pid in pids if alive(pid)]
    assert time.monotonic() - began < GRACE + 5
    with pytest.raises(MiniPoolError, match="stopping"):
        client.submit(shell_job("true"), {}, "hank")


def test_bad_submissions_are_refused_with_the_reason(make_pool):
    _, client = make_pool()
    with pytest.raises(MiniPoolError, match="universe 'container' is not supported"):
        client.submit("universe = container\nexecutable = /bin/true\nqueue\n", {}, "ivy")
    with pytest.raises(MiniPoolError, match="no file of that name was sent"):
        client.submit(shell_job("true", extra="transfer_input_files = a.toml\n"), {}, "ivy")
    with pytest.raises(MiniPoolError, match=r"executable run\.sh was not sent"):
        client.submit("executable = run.sh\nqueue\n", {}, "ivy")
    with pytest.raises(MiniPoolError, match="plain file name"):
        client.submit(shell_job("true"), {"../escape": (b"", 0o600)}, "ivy")
    assert client.jobs() == []
    with pytest.raises(MiniPoolError, match=r"no mini pool answers at http://127\.0\.0\.1:\d+"):
        MiniPoolClient(f"http://127.0.0.1:{free_port()}").jobs()


def test_the_http_api_answers_json_errors_and_only_takes_json_bodies(make_pool):
    _, client = make_pool()

    def post(path: str, body: bytes, content_type: str) -> tuple[int, dict]:
        request = urllib.request.Request(
            client.url + path,
            data=body,
            method="POST",
            headers={"Content-Type": content_type, "Authorization": f"Bearer {TOKEN}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    bogus = json.dumps({"description": "universe = bogus\nexecutable = /bin/true\nqueue\n"})
    assert post("/submit", bogus.encode(), "application/json") == (
        400,
        {"error": "universe 'bogus' is not supported by the mini pool: use vanilla or docker"},
    )
    # a web page can send text/plain to loopback without a preflight: refused
    assert post("/submit", bogus.encode(), "text/plain") == (
        415,
        {"error": "send the body as application/json"},
    )
    assert post("/remove", b"{}", "application/json") == (200, {"removed": 0})
    assert post("/nowhere", b"{}", "application/json")[0] == 404


def test_the_minicondor_commands_serve_submit_list_remove_and_stop_cleanly(tmp_path):
    # Given `rhc minicondor serve` with one slot
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    token_file = tmp_path / "pool_token"  # written by the site, or by the pool if missing
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)

    def cli(*arguments: str) -> subprocess.CompletedProcess:
        # the token reaches the commands through the config, never their command line
        return rhc(*arguments, env={"RHC_POOL_TOKEN_FILE": str(token_file)})

    serve = subprocess.Popen(
        [
            *(sys.executable, "-m", "rhc", "--log-level", "WARNING", "minicondor", "serve"),
            *("--port", str(port), "--slots", "1", "--grace", "1", "--work-dir", tmp_path / "w"),
            *("--token-file", str(token_file), "--allow-vanilla"),
        ],
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        client = MiniPoolClient(url, token=TOKEN)
        wait_for(lambda: _answers(client), 20, "the mini pool to answer")
        # And a submit file in the current directory, with a local script and a 0600 secret
        script = tmp_path / "job.sh"
        script.write_text("#!/bin/sh\necho $$ > pid\ncat secret.toml\nexec sleep 60\n")
        script.chmod(0o755)
        secret = tmp_path / "secret.toml"
        secret.write_text("secret = 1\n")
        secret.chmod(0o600)
        (tmp_path / "job.sub").write_text(
            "executable = job.sh\ntransfer_input_files = secret.toml\n"
            "JobBatchName = cli\noutput = out\nqueue 2\n"
        )
        # When it is submitted, as with condor_submit
        submitted = cli("minicondor", "submit", "job.sub", "--pool", url)
        assert submitted.returncode == 0, submitted.stderr
        assert submitted.stdout == "2 job(s) submitted to cluster 1.\n"
        # Then one job runs with the files, and the other waits
        running = wait_for(lambda: in_state(client, "1.0", "Running"), 10, "1.0 to run")
        scratch = Path(running["scratch_dir"])
        wait_for(lambda: (scratch / "out").exists() and (scratch / "out").read_text(), 10, "out")
        assert (scratch / "out").read_text() == "secret = 1\n"
        assert (scratch / "secret.toml").stat().st_mode & 0o777 == 0o600
        pid = int((scratch / "pid").read_text())
        queue = cli("minicondor", "q", "--pool", url).stdout.splitlines()
        assert queue[0].split() == ["ID", "OWNER", "BATCH", "STATE", "REASON"]
        assert queue[1].split()[0::2] == ["1.0", "cli"] and "Running" in queue[1]
        assert "Idle" in queue[2] and "waiting for a free slot" in queue[2]
        assert queue[-1].startswith("Total: 2 job(s); 1 idle, 1 running")
        status = cli("minicondor", "status", "--pool", url).stdout.splitlines()
        assert status[1].split() == ["slot1@minipool", "1", "2048", "Claimed", "1.0"]
        # When the waiting job is removed
        removed = cli("minicondor", "rm", "1.1", "--pool", url)
        assert removed.stdout == "1 job(s) marked for removal.\n"
        assert job(client, "1.1")["state"] == "Removed"
        # And the pool gets SIGTERM
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(15) == 0, serve.stderr.read()
        # Then the running job is gone with it
        assert not alive(pid)
        gone = cli("minicondor", "q", "--pool", url)
        assert gone.returncode == 1
        assert f"no mini pool answers at {url}" in gone.stderr
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()


def _answers(client: MiniPoolClient) -> bool:
    try:
        client.status()
    except MiniPoolError:
        return False
    return True
