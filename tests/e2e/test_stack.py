# SPDX-License-Identifier: BSD-3-Clause
"""The stack as a site deploys it and a physicist opens it: healthy services, workers arriving
through the mini pool as sibling containers, the example notebook executed inside the manager
container giving the direct computation's histogram (also with a worker container killed, and a
worker evicted, mid-run), and secrets nowhere they could leak."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import docker
import pytest

from rhc import __version__
from rhc.config import samples_directory
from rhc.nanoaod.dimuon import direct
from tests.conftest import REPOSITORY
from tests.e2e.conftest import FIGURES, README_COMMAND, STACK_LABEL, Stack

POOL_URL = "http://minicondor:9618"
GENERATED = "/srv/data/generated/physics-1000000.root"  # the notebook's default generated file
EXECUTED: dict[str, str] = {}
"""The executed notebooks' text, by run: checked for secrets at the end."""


def notebook_command(
    stack: Stack, run: str, notebook: str = "example.ipynb", **parameters: object
) -> list[str]:
    """papermill in the jupyter container, writing the report of the run to /tmp/RUN.json."""
    arguments = [
        *("papermill", f"/home/rhc/notebooks/{notebook}", f"/tmp/{run}.ipynb"),
        *("--no-progress-bar", "--cwd", "/tmp"),
    ]
    for name, value in parameters.items():
        arguments += ["-p", name, str(value)]
    return stack.exec_command(*arguments, environment={"RHC_NOTEBOOK_REPORT": f"/tmp/{run}.json"})


def notebook_report(stack: Stack, run: str, papermill: subprocess.CompletedProcess) -> dict:
    assert papermill.returncode == 0, f"the notebook failed:\n{papermill.stderr[-3000:]}"
    EXECUTED[run] = stack.exec("cat", f"/tmp/{run}.ipynb").stdout
    return json.loads(stack.exec("cat", f"/tmp/{run}.json").stdout)


def run_notebook(
    stack: Stack, run: str, notebook: str = "example.ipynb", **parameters: object
) -> dict:
    command = notebook_command(stack, run, notebook, **parameters)
    return notebook_report(stack, run, subprocess.run(command, capture_output=True, text=True))


@pytest.fixture(scope="module")
def plain_run(stack: Stack, pool_workers) -> dict:
    return run_notebook(stack, "plain")


@pytest.fixture(scope="module")
def expected_bins(plain_run, stack: Stack, tmp_path_factory) -> dict[str, list[float]]:
    """The direct single-process computation, here on the host, over the files the notebook
    read, in the datasets it made of them (its report names them): the samples and a copy of
    the file it generated in the stack's volume. The bins of each dataset's histogram."""
    generated = tmp_path_factory.mktemp("generated") / "physics.root"
    copied = stack.compose("cp", f"jupyter:{GENERATED}", str(generated))
    assert copied.returncode == 0, copied.stderr
    local = {path.name: str(path) for path in samples_directory().glob("*.root")}
    assert len(local) == 3, f"the NanoAOD samples are missing from {samples_directory()}"
    local[Path(GENERATED).name] = str(generated)
    fileset = {
        dataset: [local[name] for name in names] for dataset, names in plain_run["datasets"].items()
    }
    expected = direct(fileset)
    assert sum(expected["entries"].values()) >= 10_000, "too few entries to mean anything"
    histogram = expected["mass"]
    return {name: histogram[name, :].values().tolist() for name in histogram.axes["dataset"]}


def http_status(url: str, token: str | None = None, timeout: float = 10) -> int:
    headers = {"Authorization": f"token {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout):
            return 200
    except urllib.error.HTTPError as error:
        return error.code


def test_every_service_is_healthy_and_only_jupyter_and_the_dashboard_are_on_loopback(stack, engine):
    services = {
        container.labels["com.docker.compose.service"]: container
        for container in stack.containers(engine)
        if "com.docker.compose.service" in container.labels
    }
    assert set(services) == {"redis", "nginx", "xrootd", "minicondor", "jupyter", "dashboard"}
    loopback_only = {"jupyter": "8888/tcp", "dashboard": "8787/tcp"}
    for name, container in services.items():
        assert container.attrs["State"]["Health"]["Status"] == "healthy", name
        published = container.attrs["HostConfig"]["PortBindings"] or {}
        if name in loopback_only:
            port = loopback_only[name]
            assert [bind["HostIp"] for bind in published[port]] == ["127.0.0.1"], name
        else:
            assert published == {}, f"{name} publishes {published}"


REDIS_TLS = ("--tls", "--cacert", "/etc/rhc/redis/tls/ca.crt", "-h", "localhost")
"""redis-cli over TLS, verified with the stack's CA, from inside the Redis container."""


def python_in_jupyter(stack: Stack, code: str, *arguments: str) -> subprocess.CompletedProcess:
    """Python in the jupyter container, without the notebook's config file or pool token."""
    return stack.exec(
        "env", "-u", "RHC_CONFIG_FILE", "-u", "RHC_POOL_TOKEN_FILE", "python", "-c", code,
        *arguments,
    )  # fmt: skip


def test_redis_speaks_only_tls_and_refuses_anyone_without_a_user(stack):
    # A plain-TCP client is refused, password or not
    plain = python_in_jupyter(stack, "import redis; redis.Redis(host='redis').ping()")
    assert plain.returncode != 0 and "ConnectionError" in plain.stderr
    # Over TLS, without a user or with a wrong password, Redis refuses
    anonymous = stack.exec("redis-cli", *REDIS_TLS, "ping", service="redis")
    assert "NOAUTH" in anonymous.stdout + anonymous.stderr
    wrong = stack.exec(
        "env", "REDISCLI_AUTH=wrong", "redis-cli", *REDIS_TLS, "ping", service="redis"
    )
    assert "WRONGPASS" in wrong.stdout + wrong.stderr
    # And rhc says what to do when the password is missing (no config file to find it in)
    ca = "read_config_file(Path('/run/secrets/rhc_config'))['redis_ca']"
    code = (
        "from pathlib import Path; from rhc import Manager; "
        "from rhc.config import read_config_file; from rhc.wire.signing import new_task_key; "
        f"Manager('rediss://redis:6379', secret='s' * 32, task_key=new_task_key(), redis_ca={ca})"
    )
    refused = python_in_jupyter(stack, code)
    assert refused.returncode != 0
    assert "it requires a password: set redis_password in the config file" in refused.stderr


def test_rhc_verifies_the_stacks_redis_against_its_ca(stack):
    # With the generated CA (the notebook's config), rhc connects
    assert stack.exec("python", "-c", "from rhc import Manager; Manager()").returncode == 0
    # With another CA, it is refused, and told what to fix
    code = (
        "from pathlib import Path; from rhc import Manager; from rhc.local import generate; "
        "other = generate(Path('/tmp/other-ca'), ['redis']).ca.read_text(); "
        "Manager(redis_ca=other)"
    )
    refused = stack.exec("python", "-c", code)
    assert refused.returncode != 0
    assert "TLS certificate was not accepted" in refused.stderr and "redis_ca" in refused.stderr


def test_jupyter_refuses_requests_without_the_token(stack):
    token = stack.secrets()["jupyter_token"]
    assert http_status(f"{stack.jupyter_url}/api/contents") == 403
    assert http_status(f"{stack.jupyter_url}/api/kernels", token="not-the-token") == 403
    assert http_status(f"{stack.jupyter_url}/api/contents", token=token) == 200


def test_jupyterlab_greets_without_the_news_pop_up_and_proxies_only_to_the_dashboard(stack):
    token = stack.secrets()["jupyter_token"]
    # Given the page JupyterLab serves, its page config lists the announcements plugin as off
    request = urllib.request.Request(
        f"{stack.jupyter_url}/lab", headers={"Authorization": f"token {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        page = response.read().decode()
    found = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                      page, re.S)  # fmt: skip
    assert found, "no page config in /lab"
    disabled = json.loads(found.group(1))["disabledExtensions"]
    assert "@jupyterlab/apputils-extension:announcements" in disabled, disabled
    # And jupyter-server-proxy may reach the dashboard service's host, and no other
    dashboard = f"{stack.jupyter_url}/proxy/dashboard:8787/health"  # wants no token of its own
    assert http_status(dashboard, token=token, timeout=60) == 200
    assert http_status(f"{stack.jupyter_url}/proxy/minicondor:9618/", token=token) == 403


def test_the_manager_image_refuses_to_start_jupyter_without_a_token(engine):
    container = engine.containers.run(f"rhc/manager:{__version__}", detach=True)
    try:
        assert container.wait(timeout=120)["StatusCode"] != 0
        assert "refusing to start an open server" in container.logs().decode()
    finally:
        container.remove(force=True)


def test_the_readmes_command_typed_in_a_jupyterlab_terminal_brings_two_workers(
    stack, terminal_submission, pool_workers
):
    # Given the README's way to get workers: this command, in a terminal of the JupyterLab
    assert README_COMMAND in (REPOSITORY / "README.md").read_text()
    # When typed there (JupyterLab's login shell, not `docker exec`), then the shell finds rhc
    # and the command succeeds
    assert "not found" not in terminal_submission.output, terminal_submission.output
    assert terminal_submission.status == 0, terminal_submission.output
    # And two workers of the pool register
    assert len([worker for worker in pool_workers if worker["condor_id"]]) >= 2


def test_pool_workers_are_confined_sibling_containers_on_the_workers_network(
    stack, engine, pool_workers
):
    # Given the two workers submitted through the mini pool (docker universe, 2 GB, 1 cpu)
    assert len(pool_workers) >= 2 and all(worker["condor_id"] for worker in pool_workers)
    # Then each runs in a container the pool labelled and named after its job (a -runN suffix
    # once evicted and run again), on the workers' network, not as root, with the limits of
    # its job
    for worker, container in pool_worker_containers(stack, engine, count=2):
        job_name = re.escape(f"{stack.project}-job-{worker['condor_id']}")
        assert re.fullmatch(rf"{job_name}(-run\d+)?", container.name), container.name
        assert container.labels["rhc.minipool"] == stack.project
        assert container.labels["rhc.minipool.job"] == worker["condor_id"]
        assert list(container.attrs["NetworkSettings"]["Networks"]) == [f"{stack.project}-workers"]
        assert container.attrs["Config"]["User"] == stack.environment["RHC_WORKER_USER"]
        assert not container.attrs["Config"]["User"].startswith("0")
        assert container.image.tags[0].startswith("rhc/worker:")
        host = container.attrs["HostConfig"]
        assert (host["Memory"], host["NanoCpus"]) == (2 * 2**30, 10**9)
        assert host["PidsLimit"] > 0
        assert host["CapDrop"] == ["ALL"]
        assert host["SecurityOpt"] == ["no-new-privileges"]
        assert host["ReadonlyRootfs"] is True


REACH = """
import socket, sys
for host, port in [tuple(a.rsplit(":", 1)) for a in sys.argv[1:]]:
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        print(host, "open")
    except OSError as error:
        print(host, "closed", type(error).__name__)
"""


class Stopped(Exception):
    """The container was stopped (evicted) while it was being asked."""


def reachable(container, *addresses: str) -> dict[str, bool]:
    """Which host:port a container can open a TCP connection to."""
    code, output = container.exec_run(["python3", "-c", REACH, *addresses])
    if code in (128 + signal.SIGTERM, 128 + signal.SIGKILL):
        raise Stopped(output)
    assert code == 0, output
    lines = [line.split() for line in output.decode().splitlines()]
    return {host: state == "open" for host, state, *_ in lines}


def pool_worker_containers(stack: Stack, engine, count: int) -> list[tuple[dict, object]]:
    """The pool's registered workers now, with their containers; asked again when the pool
    evicted one between the two questions (it evicts one every 30 s)."""
    for _ in range(3):
        workers = [w for w in stack.probe("workers", str(count), "180") if w["condor_id"]]
        with contextlib.suppress(docker.errors.NotFound):  # evicted since it registered
            return [(worker, engine.containers.get(worker["host"])) for worker in workers]
    raise AssertionError("the pool's workers kept leaving before they could be inspected")


def from_a_pool_worker(stack: Stack, engine, *addresses: str) -> dict[str, bool]:
    """reachable() from a worker container the pool started; another one if the pool evicts
    it meanwhile."""
    for _ in range(3):
        _, container = pool_worker_containers(stack, engine, count=1)[0]
        with contextlib.suppress(docker.errors.APIError, Stopped):  # gone, or going
            return reachable(container, *addresses)
    raise AssertionError("no pool worker stayed long enough to be asked")


def test_a_pool_worker_reaches_redis_and_the_file_servers_but_never_the_pool_or_jupyter(
    stack, engine, pool_workers
):
    # Given a worker container the pool started, and the pool's and Jupyter's addresses
    pool = engine.containers.get(f"{stack.project}-minicondor-1")
    jupyter = engine.containers.get(f"{stack.project}-jupyter-1")
    pool_ip = pool.attrs["NetworkSettings"]["Networks"][f"{stack.project}-pool"]["IPAddress"]
    jupyter_ip = jupyter.attrs["NetworkSettings"]["Networks"][stack.project]["IPAddress"]
    # When it tries them, by name and by address
    seen = from_a_pool_worker(
        stack,
        engine,
        "redis:6379",
        "nginx:80",
        "xrootd:1094",
        "minicondor:9618",
        f"{pool_ip}:9618",
        "jupyter:8888",
        f"{jupyter_ip}:8888",
    )
    # Then only Redis and the file servers answer
    assert seen == {
        "redis": True,
        "nginx": True,
        "xrootd": True,
        "minicondor": False,
        pool_ip: False,
        "jupyter": False,
        jupyter_ip: False,
    }


POOL_REQUEST = """
import json, sys, urllib.error, urllib.request
request = urllib.request.Request(sys.argv[1], headers=json.loads(sys.argv[2]))
try:
    print(urllib.request.urlopen(request, timeout=10).status)
except urllib.error.HTTPError as error:
    print(error.code, json.loads(error.read())["error"])
"""


def pool_request(stack: Stack, headers: dict) -> str:
    done = python_in_jupyter(stack, POOL_REQUEST, POOL_URL + "/jobs", json.dumps(headers))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_from_jupyter_the_pool_wants_its_token_and_its_own_name(stack):
    token = (stack.state / "secrets" / "pool_token").read_text().strip()
    # Without the token, or with another, the pool answers 401 and says what to set
    assert pool_request(stack, {}).startswith("401 the pool wants its token")
    assert pool_request(stack, {"Authorization": "Bearer guessed"}).startswith("401 ")
    # Through another host name (DNS rebinding), it answers 421 even with the token
    rebound = {"Authorization": f"Bearer {token}", "Host": "evil.example:9618"}
    assert pool_request(stack, rebound).startswith("421 ")
    # With it, the API answers; and rhc's commands find it through the config, not a flag
    assert pool_request(stack, {"Authorization": f"Bearer {token}"}) == "200"
    listed = stack.exec("rhc", "minicondor", "q", "--pool", POOL_URL)
    assert listed.returncode == 0 and listed.stdout.startswith("ID"), listed.stderr


def test_the_stack_pool_holds_vanilla_jobs_and_foreign_images_and_refuses_outside_outputs(stack):
    # Given submit files an analyst (or an intruder with the token) might send from Jupyter
    files = {
        "vanilla.sub": "executable = /usr/bin/python3\ntransfer_executable = false\n"
        "arguments = -c pass\nJobBatchName = intruder\nqueue\n",
        "image.sub": f"universe = docker\ndocker_image = rhc/manager:{__version__}\n"
        "arguments = x\nJobBatchName = intruder\nqueue\n",
        "output.sub": "universe = docker\ndocker_image = rhc/worker:1\narguments = x\n"
        "output = /etc/cron.d/evil\nqueue\n",
    }
    for name, text in files.items():
        written = stack.exec("sh", "-c", f"cat > /tmp/{name}", stdin=text)
        assert written.returncode == 0, written.stderr
    submitted = {
        name: stack.exec("sh", "-c", f"cd /tmp && rhc minicondor submit {name} --pool {POOL_URL}")
        for name in files
    }
    # Then the absolute output is refused at submit, with the reason
    refused = submitted["output.sub"]
    assert refused.returncode == 1
    assert "output = /etc/cron.d/evil: give a path relative" in refused.stderr
    # And the vanilla job and the foreign image are Held, saying why
    for name in ("vanilla.sub", "image.sub"):
        assert submitted[name].returncode == 0, submitted[name].stderr
    held = [job for job in pool_jobs(stack) if job["batch_name"] == "intruder"]
    assert [job["state"] for job in held] == ["Held", "Held"]
    assert "vanilla universe is off in this pool" in held[0]["reason"]
    assert f"docker image rhc/manager:{__version__} is not allowed" in held[1]["reason"]
    removed = stack.exec("rhc", "minicondor", "rm", "--batch", "intruder", "--pool", POOL_URL)
    assert removed.stdout == "2 job(s) marked for removal.\n", removed.stderr


def test_the_worker_image_runs_a_real_job_as_uid_12345_on_a_read_only_root(stack, engine, tmp_path):
    # Given a namespace of its own, added by the operator with the stack's admin config, and
    # its workers' config file readable by uid 12345 only
    if os.geteuid() != 0:
        pytest.skip("giving the config file to uid 12345 needs root")
    folder = add_namespace(stack, engine, "read-only", tmp_path)
    os.chown(folder / "worker.toml", 12345, 12345)
    folder.chmod(0o755)  # uid 12345 may enter, to read its own 0600 file
    notebook_config = "/tmp/read-only.toml"
    copied = stack.compose("cp", str(folder / "rhc.toml"), f"jupyter:{notebook_config}")
    assert copied.returncode == 0, copied.stderr
    # When the worker image runs as uid 12345 with a read-only root and a tmpfs /tmp
    container = engine.containers.run(
        f"rhc/worker:{__version__}",
        ["--config", "/config/worker.toml"],
        user="12345:12345",
        read_only=True,
        tmpfs={"/tmp": ""},
        volumes={str(folder): {"bind": "/config", "mode": "ro"}},
        network=f"{stack.project}-workers",  # where the pool's workers run
        labels={STACK_LABEL: stack.project},
        detach=True,
    )
    try:
        # Then it runs plain tasks, and the dimuon analysis over HTTP with its disk cache in /tmp
        hosts = stack.probe("hostnames", "read-only", "20", config=notebook_config)
        assert hosts == [container.id[:12]]
        sample = samples_directory() / "nano_dimuon.root"
        url = f"http://nginx/nanoaod/{sample.name}"
        analysed = stack.probe("dimuon", "read-only", url, config=notebook_config)
        assert analysed["entries"] == sum(direct([str(sample)])["entries"].values()) > 0
        assert container.attrs["HostConfig"]["ReadonlyRootfs"] is True
    finally:
        container.remove(force=True)


def add_namespace(stack: Stack, engine, namespace: str, directory: Path) -> Path:
    """`rhc redis namespace` as an operator runs it, with the stack's admin config, on the
    stack's network; the folder holding the new rhc.toml and worker.toml."""
    output = directory / namespace
    output.mkdir(mode=0o700)
    admin = directory / "admin.toml"  # the operator's own copy (the stack's is its Redis's)
    admin.write_text((stack.state / "secrets" / "admin.toml").read_text())
    admin.chmod(0o600)
    engine.containers.run(
        f"rhc/manager:{__version__}",
        ["rhc", "redis", "namespace", namespace, "/out", "--admin-config", "/admin/admin.toml"],
        user="0:0",
        volumes={
            str(admin): {"bind": "/admin/admin.toml", "mode": "ro"},
            str(output): {"bind": "/out", "mode": "rw"},
        },
        network=stack.project,
        remove=True,
    )
    return output


def test_the_notebook_equals_the_direct_computation_bin_for_bin(plain_run, expected_bins):
    assert plain_run["equal"], "the notebook's own check failed"
    assert plain_run["entries"] >= 10_000
    assert plain_run["bins"] == expected_bins
    assert plain_run["workers"] and all(  # the pool's workers (evictions may leave one)
        re.search(r"-\d+\.\d+$", worker) for worker in plain_run["workers"]
    ), plain_run["workers"]
    FIGURES["notebook: warm run speed-up over cold"] = plain_run["warm_speedup"]


def notebook_with_a_busy_worker(stack: Stack, run: str) -> tuple[subprocess.Popen, dict]:
    """Start the notebook with small chunks (a run of seconds: smaller chunks read their
    baskets again) once two workers are up; return it running, and a worker busy with it."""
    stack.probe("workers", "2", "180")
    notebook = subprocess.Popen(
        notebook_command(stack, run, chunksize=5_000),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        return notebook, stack.probe("busy", POOL_URL, "170")
    except (AssertionError, subprocess.TimeoutExpired) as exc:
        notebook.kill()
        _, stderr = notebook.communicate()
        raise AssertionError(
            f"no worker was seen busy with the run ({exc}); the notebook ended with "
            f"{notebook.returncode}: {stderr[-3000:]}"
        ) from exc


def finished_report(stack: Stack, run: str, notebook: subprocess.Popen) -> dict:
    stdout, stderr = notebook.communicate(timeout=600)
    finished = subprocess.CompletedProcess(notebook.args, notebook.returncode, stdout, stderr)
    return notebook_report(stack, run, finished)


def test_a_worker_container_killed_mid_run_changes_nothing(stack, engine, expected_bins):
    # Given the notebook running on two workers
    notebook, busy = notebook_with_a_busy_worker(stack, "killed")
    # When the container of a worker busy with the run is SIGKILLed
    engine.containers.get(busy["host"]).kill()
    # Then the notebook's histogram still equals the direct computation
    report = finished_report(stack, "killed", notebook)
    assert report["bins"] == expected_bins and report["equal"]
    # And the pool saw the job end by the signal (or, if its evictor had sent SIGTERM just
    # before, every 30 s, saw an eviction and queued the job again); a new worker replaces it
    job = pool_job(stack, busy["condor_id"])
    if job["evictions"] > busy["evictions"]:
        assert job["state"] in ("Idle", "Running"), job
    else:
        assert job["state"] == "Completed" and job["exit_code"] == 137, job
    assert stack.exec("rhc", "condor", "submit", "-n", "1").returncode == 0


def test_a_worker_evicted_mid_run_changes_nothing(stack, expected_bins):
    # Given the notebook running on two workers
    notebook, busy = notebook_with_a_busy_worker(stack, "evicted")
    # When the pool evicts a worker busy with the run (SIGTERM: it hands its tasks back)
    vacated = stack.exec("rhc", "minicondor", "vacate", busy["condor_id"], "--pool", POOL_URL)
    if vacated.stdout.strip() == "0 job(s) evicted.":  # the pool's evictor, every 30 s, was first
        job = pool_job(stack, busy["condor_id"])
        assert job["evictions"] > busy["evictions"] or job["stopping"] == "evict", job
    else:
        assert vacated.stdout.strip() == "1 job(s) evicted.", vacated.stderr
    # Then the worker left on the SIGTERM, handing its tasks back
    departed = stack.probe("departure", busy["name"], "120")
    assert departed["reason"] == "SIGTERM (evicted or removed by condor)", departed
    # And the histogram still equals the direct computation
    report = finished_report(stack, "evicted", notebook)
    assert report["bins"] == expected_bins and report["equal"]
    # And the evicted job went back to the queue, to run again
    job = stack.probe("evicted", POOL_URL, busy["condor_id"], str(busy["evictions"]), "120")
    assert job["state"] in ("Idle", "Running"), job
    FIGURES["evictions during the e2e run"] = sum(job["evictions"] for job in pool_jobs(stack))


def pool_jobs(stack: Stack) -> list[dict]:
    return stack.probe("pool_jobs", POOL_URL)


def pool_job(stack: Stack, condor_id: str) -> dict:
    return next(job for job in pool_jobs(stack) if job["id"] == condor_id)


def test_the_coffea_notebook_reads_over_root_on_coffea_workers_of_the_pool(stack):
    # Given the pool's workers replaced by two of the coffea image (a run is refused while a
    # worker without the notebook's coffea could take its items)
    image = f"rhc/worker-coffea:{__version__}"
    submitted = stack.exec("rhc", "condor", "submit", "-n", "2", "--image", image,
                           "--batch-name", "coffea")  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    assert stack.exec("rhc", "condor", "rm").returncode == 0  # the README's workers
    workers = stack.probe("coffea_workers", "2", "300")
    # When the coffea notebook runs in JupyterLab's container, over root:// from xrootd
    report = run_notebook(stack, "coffea", "coffea.ipynb", generated_events=1_000_000)
    # Then every file was read over root://, and the output equals coffea's own executor's over
    # the same files read locally, bin for bin and cut for cut, from one partial per worker
    files = [file for files in report["files"].values() for file in files]
    assert files and all(file.startswith("root://xrootd//store/") for file in files), files
    assert report["equal"] is True and report["bins"] == report["expected_bins"]
    assert report["entries"] >= 10_000 and report["cutflow"]["events"] == 1_000_000
    # (about one per worker: a worker the pool evicts mid-run sends what it merged so far)
    assert all(partials <= 2 * len(workers) for partials in report["partials"]), report


def test_no_secret_shows_in_config_inspect_logs_committed_files_or_notebooks(
    stack, engine, plain_run
):
    secrets = stack.secrets()
    places = {"docker compose config": stack.compose("config").stdout}
    for container in stack.containers(engine):
        places[f"docker inspect {container.name}"] = json.dumps(container.attrs)
        # an evicted worker's container may be on its way out: its logs are in the job's files
        with contextlib.suppress(docker.errors.APIError):
            places[f"docker logs {container.name}"] = container.logs().decode(errors="replace")
    pool = Path(stack.environment["RHC_POOL_DIR"])
    for log in [*pool.rglob("*.out"), *pool.rglob("*.err"), *pool.rglob("*.log")]:
        places[f"worker log {log.name}"] = log.read_text(errors="replace")
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPOSITORY, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, tracked):
        places[f"committed {name}"] = (REPOSITORY / name).read_text(errors="replace")
    for run, text in EXECUTED.items():
        places[f"executed notebook {run}"] = text
    assert any(name.startswith("worker log") for name in places), "no worker log was checked"
    # and the workers' config, and every copy of it sent to a pool job, lacks the task key
    assert "task_key" not in stack.settings("worker.toml")
    for copy in pool.rglob("*.toml"):
        assert "task_key" not in copy.read_text(), f"{copy} holds the notebook's task key"
    for place, text in places.items():
        for name, value in secrets.items():
            assert value not in text, f"the {name} shows in {place}"
