# SPDX-License-Identifier: BSD-3-Clause
"""How the mini pool starts jobs: what it asks the Docker SDK for when it runs a
docker-universe job, and a vanilla job's process.

The Docker tests run without a Docker engine, so they hand the runner a stand-in client that
records the calls; the end-to-end tests run real containers.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import docker.errors
import pytest

from rhc.condor.minipool.errors import HoldError
from rhc.condor.minipool.execution import DockerRunner, Launch, VanillaRunner


class FakeContainer:
    id = "0123456789abcdef"

    def __init__(self, labels: dict[str, str] | None = None) -> None:
        self.calls: list[tuple] = []
        self.labels = labels or {}

    def wait(self) -> dict:
        self.calls.append(("wait",))
        return {"StatusCode": 3}

    def logs(self, *, stdout: bool, stderr: bool) -> bytes:
        return b"out\n" if stdout else b"err\n"

    def stop(self, *, timeout: int) -> None:
        self.calls.append(("stop", timeout))

    def remove(self, *, force: bool) -> None:
        self.calls.append(("remove", force))


class FakeClient:
    """Records what the runner asks for; knows one image."""

    def __init__(self, images: tuple[str, ...] = ("rhc/worker:0.1.0",)) -> None:
        self.known = images
        self.runs: list[dict] = []
        self.listed: list[dict] = []
        self.container = FakeContainer()
        self.images = self
        self.containers = self

    def get(self, image: str) -> object:  # client.images.get
        if image not in self.known:
            raise docker.errors.ImageNotFound(f"No such image: {image}")
        return object()

    def run(self, **arguments: object) -> FakeContainer:  # client.containers.run
        self.runs.append(arguments)
        return self.container

    def list(self, **arguments: object) -> list[FakeContainer]:  # client.containers.list
        self.listed.append(arguments)
        return [self.container]


def launch(scratch: Path, image: str = "rhc/worker:0.1.0") -> Launch:
    return Launch(
        job_id="12.3",
        command=("rhc", "worker", "redis://redis:6379", "--config", "rhc.toml"),
        environment={
            "_CONDOR_SCRATCH_DIR": str(scratch),
            "_CONDOR_JOB_AD": str(scratch / ".job.ad"),
            "_CONDOR_SLOT": "slot2",
            "A": "1",
        },
        scratch=scratch,
        output="out",
        error="err",
        image=image,
        cpus=2,
        memory_mb=1500,
    )


def test_a_docker_job_runs_as_a_labelled_sibling_container_in_its_scratch_directory(tmp_path):
    # Given a runner for pool "ci" on network rhc_default, and a job's scratch directory
    work = tmp_path / "work"
    scratch = work / "12.3"
    scratch.mkdir(parents=True)
    client = FakeClient()
    runner = DockerRunner(
        pool_name="ci", user="12345:12345", work_dir=work, network="rhc_default", client=client
    )
    # When the job starts and ends
    execution = runner.start(launch(scratch))
    code = execution.wait()
    # Then the SDK was asked for exactly this container
    assert client.runs == [
        {
            "image": "rhc/worker:0.1.0",
            "name": "ci-job-12.3",
            "command": ["rhc", "worker", "redis://redis:6379", "--config", "rhc.toml"],
            "detach": True,
            "working_dir": str(scratch),
            "volumes": {str(scratch): {"bind": str(scratch), "mode": "rw"}},
            "environment": {
                "_CONDOR_SCRATCH_DIR": str(scratch),
                "_CONDOR_JOB_AD": str(scratch / ".job.ad"),
                "_CONDOR_SLOT": "slot2",
                "A": "1",
            },
            "user": "12345:12345",
            "labels": {"rhc.minipool": "ci", "rhc.minipool.job": "12.3"},
            "mem_limit": "1500m",
            "memswap_limit": "1500m",
            "nano_cpus": 2_000_000_000,
            "pids_limit": 1024,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "read_only": True,
            "tmpfs": {"/tmp": "rw,nosuid,nodev,size=256m,mode=1777"},
            "network": "rhc_default",
        }
    ]
    # And its exit code, logs and removal were taken care of
    assert code == 3
    assert (scratch / "out").read_bytes() == b"out\n"
    assert (scratch / "err").read_bytes() == b"err\n"
    assert client.container.calls == [("wait",), ("remove", True)]


def test_a_job_that_runs_again_after_an_eviction_names_a_container_of_its_own(tmp_path):
    runner = DockerRunner(pool_name="ci", user="1:1", work_dir=tmp_path, client=FakeClient())
    again = dataclasses.replace(launch(tmp_path / "12.3"), run=2)
    assert runner.run_arguments(again)["name"] == "ci-job-12.3-run2"


class TakenNameClient(FakeClient):
    """The job's container name is taken by a container with these labels."""

    def __init__(self, labels: dict[str, str]) -> None:
        super().__init__()
        self.holder = FakeContainer(labels)

    def get(self, name: str) -> object:  # client.images.get and client.containers.get
        return self.holder if name == "ci-job-12.3" else super().get(name)

    def run(self, **arguments: object) -> FakeContainer:
        if ("remove", True) not in self.holder.calls:
            explanation = 'the container name "/ci-job-12.3" is already in use'
            raise docker.errors.APIError("", response=Conflict(), explanation=explanation)
        return super().run(**arguments)


class Conflict:
    """The engine's answer to a create whose name is taken."""

    status_code, reason, url = 409, "Conflict", "http+docker://localhost/v1.41/containers/create"


def test_a_container_a_pool_of_the_same_name_left_behind_is_replaced(tmp_path):
    # Given a container named after the job, left by a pool of this name that did not stop
    client = TakenNameClient({"rhc.minipool": "ci", "rhc.minipool.job": "12.3"})
    runner = DockerRunner(pool_name="ci", user="1:1", work_dir=tmp_path, client=client)
    (tmp_path / "12.3").mkdir()
    # When the job starts, then the leftover is removed and the job's container runs
    runner.start(launch(tmp_path / "12.3"))
    assert client.holder.calls == [("remove", True)]
    assert [arguments["name"] for arguments in client.runs] == ["ci-job-12.3"]


def test_a_container_of_anyone_else_holding_the_name_is_left_alone_and_the_job_held(tmp_path):
    client = TakenNameClient({"rhc.minipool": "another-pool"})
    runner = DockerRunner(pool_name="ci", user="1:1", work_dir=tmp_path, client=client)
    (tmp_path / "12.3").mkdir()
    with pytest.raises(HoldError, match=r"could not start rhc/worker:0\.1\.0: 409 .*in use"):
        runner.start(launch(tmp_path / "12.3"))
    assert client.holder.calls == [] and client.runs == []


def test_removal_stops_the_container_with_the_grace_as_docker_stop_timeout(tmp_path):
    client = FakeClient()
    runner = DockerRunner(pool_name="ci", user="1:1", work_dir=tmp_path, client=client)
    (tmp_path / "1.0").mkdir()
    execution = runner.start(launch(tmp_path / "1.0"))
    execution.terminate(2.5)
    assert client.container.calls == [("stop", 3)]
    assert "network" not in client.runs[0]


def test_the_bind_mount_names_the_host_path_when_the_pool_runs_in_a_container(tmp_path):
    runner = DockerRunner(
        pool_name="ci",
        user="1:1",
        work_dir=Path("/var/lib/minipool"),
        host_work_dir=Path("/srv/compose/minipool"),
        client=FakeClient(),
    )
    arguments = runner.run_arguments(launch(Path("/var/lib/minipool/4.0")))
    assert arguments["volumes"] == {
        "/srv/compose/minipool/4.0": {"bind": "/var/lib/minipool/4.0", "mode": "rw"}
    }
    assert arguments["working_dir"] == "/var/lib/minipool/4.0"


def test_a_container_cannot_make_the_pool_write_its_logs_through_a_link(tmp_path):
    # Given a job whose container replaced its output file with a link to a file outside
    scratch = tmp_path / "1.0"
    scratch.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    client = FakeClient()
    runner = DockerRunner(pool_name="ci", user="1:1", work_dir=tmp_path, client=client)
    execution = runner.start(launch(scratch))
    (scratch / "out").symlink_to(victim)
    # When it ends, then the pool refuses to write the logs there, and holds the job
    with pytest.raises(HoldError, match="cannot write output out"):
        execution.wait()
    assert victim.read_text() == "untouched\n"
    assert client.container.calls == [("wait",), ("remove", True)]


def test_a_missing_image_holds_the_job_and_nothing_is_pulled(tmp_path):
    client = FakeClient(images=())
    runner = DockerRunner(pool_name="ci", user="1:1", work_dir=tmp_path, client=client)
    with pytest.raises(HoldError, match=r"rhc/worker:0\.1\.0 is not on the pool's Docker engine"):
        runner.start(launch(tmp_path / "1.0"))
    assert client.runs == []


def test_stopping_the_pool_removes_every_container_labelled_with_its_name(tmp_path):
    client = FakeClient()
    runner = DockerRunner(pool_name="ci", user="1:1", work_dir=tmp_path, client=client)
    assert runner.remove_all() == 1
    assert client.listed == [{"all": True, "filters": {"label": "rhc.minipool=ci"}}]
    assert client.container.calls == [("remove", True)]


def test_a_vanilla_job_whose_executable_is_briefly_busy_still_starts(tmp_path):
    # Given an executable still open for writing (as in a sibling job's fork, until it execs)
    executable = tmp_path / "job.sh"
    writer = open(executable, "w")  # noqa: SIM115
    writer.write("#!/bin/sh\necho started\n")
    writer.flush()
    executable.chmod(0o755)
    launch = Launch(
        job_id="1.0",
        command=(str(executable),),
        environment={},
        scratch=tmp_path,
        output="out",
        error="err",
    )
    # When the pool starts it, and the writer lets go a moment later
    threading.Timer(0.2, writer.close).start()
    execution = VanillaRunner().start(launch)
    # Then it ran instead of being held for "Text file busy"
    assert execution.wait() == 0
    assert (tmp_path / "out").read_text() == "started\n"
