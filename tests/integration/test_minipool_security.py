# SPDX-License-Identifier: BSD-3-Clause
"""The mini pool plays against an intruder: requests without its token, through another host
name, with huge bodies; jobs that ask for the vanilla universe, an image it does not allow, an
output file outside their scratch directory; and what a job leaves behind. Real pools on
loopback, real processes, and a real container from the worker image."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from urllib.parse import urlsplit

import docker
import pytest

from rhc import __version__
from rhc.condor.minipool import MiniPoolClient, MiniPoolError, MiniPoolServer, Pool, PoolSettings
from rhc.condor.minipool.access import load_token
from rhc.condor.minipool.execution import ENGINE_TIMEOUT
from tests.conftest import rhc_command, wait_for
from tests.integration.test_minipool import TOKEN, WAIT_FOR_GO, in_state, job, shell_job

WORKER_IMAGE = f"rhc/worker:{__version__}"
SECRET = "password = 's3cret-of-the-submitter'\n"


@pytest.fixture
def serve(tmp_path):
    """Start pools with the given settings (vanilla off, the default image list) and servers
    with the given options; each is stopped after the test."""
    started: list[tuple[Pool, MiniPoolServer]] = []

    def make(*, names: tuple[str, ...] = (), max_request_bytes: int = 2**20, **overrides):
        settings = PoolSettings(
            work_dir=tmp_path / f"pool{len(started)}", **{"slots": 2, "grace": 1.0, **overrides}
        )
        pool = Pool(settings).start()
        server = MiniPoolServer(
            pool, token=TOKEN, port=0, names=names, max_request_bytes=max_request_bytes
        ).start()
        started.append((pool, server))
        return pool, server

    yield make
    for pool, server in started:
        server.stop()
        pool.stop()


def raw(
    url: str,
    method: str,
    path: str,
    *,
    host: str | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, dict]:
    """One request, written header by header (Host and Content-Length as given, or absent)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host or parts.netloc)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def files_holding(directory: Path, text: str) -> list[Path]:
    return [
        path
        for path in directory.rglob("*")
        if path.is_file() and not path.is_symlink() and text.encode() in path.read_bytes()
    ]


def test_without_the_token_or_with_a_wrong_one_the_pool_answers_401_and_does_nothing(serve):
    # Given a pool
    pool, server = serve(allow_vanilla=True)
    submit = json.dumps({"description": shell_job("true"), "owner": "mallory"}).encode()
    json_body = {"Content-Type": "application/json", "Content-Length": str(len(submit))}
    # When requests come without the token, with a wrong one, or another scheme
    for headers in ({}, bearer("wrong"), bearer(TOKEN[:-1]), {"Authorization": f"Basic {TOKEN}"}):
        for method, path, body in (("GET", "/jobs", None), ("POST", "/submit", submit)):
            extra = json_body if body else {}
            status, answer = raw(server.url, method, path, headers={**headers, **extra}, body=body)
            # Then each is refused with what to do, and nothing was queued
            assert status == 401, (headers, path)
            assert "pool_token_file" in answer["error"]
    assert pool.jobs() == []
    # And the health check answers without it, telling nothing
    assert raw(server.url, "GET", "/healthz") == (200, {"ok": True})
    # While the token opens the API
    assert raw(server.url, "GET", "/jobs", headers=bearer(TOKEN)) == (200, [])


def test_the_cli_says_where_the_token_goes_and_never_takes_it_on_its_command_line(serve, tmp_path):
    _, server = serve()
    # Without a token in the config, the command says what to set
    refused = rhc_command("minicondor", "q", "--pool", server.url, env={"RHC_POOL_TOKEN_FILE": ""})
    assert refused.returncode == 1
    assert "pool_token_file" in refused.stderr
    # A token file others may read (in a directory they may enter) is refused, unprinted
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    token_file = shared / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o644)
    loose = rhc_command(
        "minicondor", "q", "--pool", server.url, env={"RHC_POOL_TOKEN_FILE": str(token_file)}
    )
    assert loose.returncode == 1 and "chmod 600" in loose.stderr
    assert TOKEN not in loose.stdout + loose.stderr
    # A private one works
    token_file.chmod(0o600)
    listed = rhc_command(
        "minicondor", "q", "--pool", server.url, env={"RHC_POOL_TOKEN_FILE": str(token_file)}
    )
    assert listed.returncode == 0, listed.stderr
    assert TOKEN not in listed.stdout + listed.stderr
    assert "--token" not in rhc_command("minicondor", "q", "--help").stdout


def test_the_pool_writes_a_fresh_private_token_file_and_refuses_one_others_may_read(tmp_path):
    fresh = tmp_path / "new-token"
    token = load_token(fresh)
    assert len(token) >= 32 and fresh.stat().st_mode & 0o777 == 0o600
    assert load_token(fresh) == token  # read again, not replaced
    fresh.chmod(0o640)
    with pytest.raises(MiniPoolError, match="readable by others"):
        load_token(fresh)


def test_a_request_through_a_host_name_the_pool_does_not_serve_is_refused(serve):
    # Given a pool on loopback that also serves the name minicondor
    _, server = serve(names=("minicondor",))
    port = urlsplit(server.url).port
    # When a page rebinds evil.example to 127.0.0.1 (or uses 0.0.0.0), then it is refused
    for host in (
        "evil.example",
        f"evil.example:{port}",
        f"0.0.0.0:{port}",
        f"minicondor.evil:{port}",
    ):
        status, answer = raw(server.url, "GET", "/jobs", host=host, headers=bearer(TOKEN))
        assert status == 421, host
        assert "does not serve the host name" in answer["error"]
    # Not even the health check answers it
    assert raw(server.url, "GET", "/healthz", host="evil.example")[0] == 421
    # While the names it serves work
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"minicondor:{port}", "minicondor"):
        assert raw(server.url, "GET", "/jobs", host=host, headers=bearer(TOKEN)) == (200, [])


def test_a_body_over_the_limit_or_of_no_declared_length_is_refused_unread(serve):
    # Given a pool that takes bodies of at most 1 kB
    pool, server = serve(max_request_bytes=1024)
    headers = {**bearer(TOKEN), "Content-Type": "application/json"}
    # When a request declares a gigabyte and sends none of it, then 413 comes at once (had the
    # pool tried to read the body, it would wait for it until the client's timeout)
    status, answer = raw(
        server.url, "POST", "/submit", headers={**headers, "Content-Length": str(10**9)}
    )
    assert status == 413
    assert "at most 1024" in answer["error"]
    # A body without a length (or chunked) is refused too
    assert raw(server.url, "POST", "/submit", headers=headers)[0] == 411
    chunked = {**headers, "Transfer-Encoding": "chunked"}
    assert raw(server.url, "POST", "/submit", headers=chunked, body=b"0\r\n\r\n")[0] == 411
    # Without the token, the pool answers 401 before it looks at the size
    assert raw(server.url, "POST", "/submit", headers={"Content-Length": str(10**9)})[0] == 401
    # And a submission of 2 kB through the client is refused with the reason
    client = MiniPoolClient(server.url, token=TOKEN)
    with pytest.raises(MiniPoolError, match="--max-request-bytes"):
        client.submit(shell_job("true"), {"big": (b"x" * 2048, 0o600)}, "eve")
    assert pool.jobs() == []


def test_a_vanilla_job_is_held_with_the_reason_unless_the_pool_allows_them(serve, tmp_path):
    # Given a pool started without --allow-vanilla
    _, server = serve()
    client = MiniPoolClient(server.url, token=TOKEN)
    marker = tmp_path / "ran"
    # When a vanilla job is submitted (here: the pool host's shell, as its own user)
    cluster, _ = client.submit(shell_job(f"touch {marker}"), {}, "mallory")
    # Then it is held, says why, claims no slot, and never runs
    held = job(client, f"{cluster}.0")
    assert held["state"] == "Held"
    assert "vanilla universe is off" in held["reason"]
    assert "--allow-vanilla" in held["reason"]
    assert {slot["state"] for slot in client.status()} == {"Unclaimed"}
    assert not marker.exists()
    # And a pool that allows them runs it
    _, allowing = serve(allow_vanilla=True)
    other = MiniPoolClient(allowing.url, token=TOKEN)
    cluster, _ = other.submit(shell_job(f"touch {marker}"), {}, "alice")
    wait_for(lambda: in_state(other, f"{cluster}.0", "Completed"), 10, "the vanilla job")
    assert marker.exists()


def test_a_docker_job_naming_an_image_off_the_allow_list_is_held_with_the_reason(serve):
    # Given a pool with the default allow-list (rhc/worker:*, rhc/worker-coffea:*)
    _, server = serve()
    client = MiniPoolClient(server.url, token=TOKEN)
    # When jobs name other images: another of rhc's, one made to look like the worker's
    ids = []
    for image in (f"rhc/manager:{__version__}", "rhc/worker-evil:1", "docker.io/rhc/worker:1"):
        description = f"universe = docker\ndocker_image = {image}\narguments = x\nqueue\n"
        cluster, _ = client.submit(description, {}, "mallory")
        ids.append((image, f"{cluster}.0"))
    # Then each is held at once with the reason, and no slot was claimed
    for image, job_id in ids:
        held = job(client, job_id)
        assert held["state"] == "Held", image
        assert held["reason"] == (
            f"docker image {image} is not allowed in this pool (allowed: rhc/worker:*, "
            "rhc/worker-coffea:*); start the pool with --allow-image PATTERN"
        )
    assert {slot["state"] for slot in client.status()} == {"Unclaimed"}


def test_the_pool_never_runs_containers_as_root():
    for user in ("0", "0:0", "12345:0"):
        with pytest.raises(MiniPoolError, match="never run as root"):
            PoolSettings(work_dir=Path("/nonexistent"), docker_user=user)


@pytest.mark.parametrize(
    "line",
    [
        "output = /etc/cron.d/job",
        "error = /root/.ssh/authorized_keys",
        "log = /tmp/elsewhere.log",
        "output = ../../escape.txt",
        "error = logs/../../escape.txt",
    ],
)
def test_an_output_path_outside_the_scratch_directory_is_refused_at_submit(serve, line):
    _, server = serve(allow_vanilla=True)
    description = shell_job("true", extra=line + "\n")
    # The API answers 400 with the reason
    body = json.dumps({"description": description}).encode()
    headers = {**bearer(TOKEN), "Content-Type": "application/json"}
    status, answer = raw(
        server.url,
        "POST",
        "/submit",
        headers={**headers, "Content-Length": str(len(body))},
        body=body,
    )
    assert status == 400
    assert "relative to the job's scratch directory" in answer["error"]
    assert MiniPoolClient(server.url, token=TOKEN).jobs() == []


def test_the_cli_prints_why_an_absolute_output_is_refused(serve, tmp_path, monkeypatch):
    _, server = serve(allow_vanilla=True)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    (tmp_path / "job.sub").write_text(shell_job("true", extra="output = /etc/passwd\n"))
    monkeypatch.chdir(tmp_path)
    refused = rhc_command(
        "minicondor", "submit", "job.sub", "--pool", server.url,
        env={"RHC_POOL_TOKEN_FILE": str(token_file)},
    )  # fmt: skip
    assert refused.returncode == 1
    assert "output = /etc/passwd: give a path relative to the job's scratch directory" in (
        refused.stderr
    )


def test_a_job_cannot_make_the_pool_hand_back_a_file_outside_its_scratch(serve, tmp_path):
    # Given a file the job must not obtain, and a job that turns its output into links to it
    outside = tmp_path / "outside.txt"
    outside.write_text("the pool host's secret\n")
    pool, server = serve(allow_vanilla=True)
    client = MiniPoolClient(server.url, token=TOKEN)
    script = f"rm -f out.txt; ln -s {outside} out.txt; rm -rf logs; ln -s {tmp_path} logs"
    extra = "output = out.txt\nerror = logs/outside.txt\n"
    cluster, _ = client.submit(shell_job(script, extra=extra), {}, "mallory")
    # When it ends
    done = wait_for(lambda: in_state(client, f"{cluster}.0", "Completed", "Held"), 10, "the job")
    # Then no copy of that file was handed back: links are not followed
    assert not files_holding(Path(done["output_dir"]), "the pool host's secret")
    assert not files_holding(pool.settings.work_dir, "the pool host's secret")


def test_scratch_and_secrets_are_gone_once_a_job_completes_is_removed_or_the_pool_stops(serve):
    # Given a pool, and jobs that receive a secret: one completes, one runs, one waits
    pool, server = serve(allow_vanilla=True, slots=1)
    client = MiniPoolClient(server.url, token=TOKEN)
    secret = {"rhc.toml": (SECRET.encode(), 0o600)}
    extra = "transfer_input_files = rhc.toml\n"
    done, _ = client.submit(shell_job("cat rhc.toml > copy", extra=extra), secret, "alice")
    completed = wait_for(lambda: in_state(client, f"{done}.0", "Completed"), 10, "the first job")
    # Then the completed one left nothing of the secret: no scratch directory, no copy
    assert not Path(completed["scratch_dir"]).exists()
    work_dir = pool.settings.work_dir
    assert not files_holding(work_dir, "s3cret-of-the-submitter")
    # When one runs and is removed
    running, _ = client.submit(shell_job(WAIT_FOR_GO, extra=extra), secret, "alice")
    entry = wait_for(lambda: in_state(client, f"{running}.0", "Running"), 10, "the second job")
    scratch = Path(entry["scratch_dir"])
    wait_for((scratch / "ready").exists, 10, "the second job to be ready")
    assert files_holding(scratch, "s3cret-of-the-submitter")  # while it runs, it has it
    assert client.remove(cluster=running) == 1
    wait_for(lambda: in_state(client, f"{running}.0", "Removed"), 10, "the removal")
    # Then its scratch directory is gone too
    assert not scratch.exists()
    assert not files_holding(work_dir, "s3cret-of-the-submitter")
    # And when the pool stops with one job running and one waiting
    busy, _ = client.submit(shell_job(WAIT_FOR_GO, extra=extra, queue=2), secret, "alice")
    entry = wait_for(lambda: in_state(client, f"{busy}.0", "Running"), 10, "the third job")
    wait_for((Path(entry["scratch_dir"]) / "ready").exists, 10, "the third job to be ready")
    server.stop()
    pool.stop()
    # Then no scratch directory and no copy of the secret is left in its work directory
    assert sorted(path.name for path in work_dir.iterdir()) == ["output"]
    assert not files_holding(work_dir, "s3cret-of-the-submitter")
    # And the history still tells what happened, without the files
    assert [job["state"] for job in pool.jobs()[:2]] == ["Completed", "Removed"]


def test_a_container_the_pool_starts_is_confined(make_cluster, tmp_path):
    # Given a real Docker engine with the worker image, and a pool whose containers share the
    # host's network (to reach the test's Redis on loopback)
    engine = docker.from_env(timeout=ENGINE_TIMEOUT)
    engine.images.get(WORKER_IMAGE)  # fails when the image is missing: `make images`
    settings = PoolSettings(
        work_dir=tmp_path / "pool", name=f"sec{tmp_path.name[-8:]}", slots=1, network="host"
    )
    pool = Pool(settings).start()
    server = MiniPoolServer(pool, token=TOKEN, port=0).start()
    token_file = tmp_path / "pool_token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    cluster = make_cluster(condor_pool=server.url)  # the token: in the notebook's environment
    label = f"rhc.minipool={settings.name}"
    try:
        # When a worker is submitted as a person would, asking for 512 MB and 1 cpu
        submitted = rhc_command(
            "condor", "submit", "-n", "1", "--image", WORKER_IMAGE, "--request-memory", "512MB",
            env={
                "RHC_CONFIG_FILE": str(cluster.config_file),
                "RHC_POOL_TOKEN_FILE": str(token_file),
            },
        )  # fmt: skip
        assert submitted.returncode == 0, submitted.stderr
        (container,) = wait_for(
            lambda: engine.containers.list(filters={"label": label, "status": "running"}),
            60,
            "the worker's container to run",
        )
        # Then it is named after its condor job, for `docker ps`
        assert container.name == f"{settings.name}-job-1.0"
        # And docker inspect shows it confined
        host = container.attrs["HostConfig"]
        assert host["Memory"] == 512 * 2**20
        assert host["MemorySwap"] == 512 * 2**20
        assert host["NanoCpus"] == 10**9
        assert host["PidsLimit"] == 1024
        assert host["CapDrop"] == ["ALL"]
        assert host["SecurityOpt"] == ["no-new-privileges"]
        assert host["ReadonlyRootfs"] is True
        assert "/tmp" in host["Tmpfs"]
        assert host["Privileged"] is False
        user = container.attrs["Config"]["User"]
        assert user and user.split(":")[0] not in ("0", "root"), user
        # only its scratch directory is mounted, read-write
        (mount,) = container.attrs["Mounts"]
        assert mount["Destination"].startswith(str(settings.work_dir)) and mount["RW"]
    finally:
        server.stop()
        pool.stop()
    # And stopping the pool removed it, and every scratch directory
    assert engine.containers.list(all=True, filters={"label": label}) == []
    assert [path.name for path in settings.work_dir.iterdir()] == ["output"]
    engine.close()
