# SPDX-License-Identifier: BSD-3-Clause
"""A job's scratch directory in the mini pool: the grid credentials rhc's descriptions send
land there 0600, and the job is told where, in the vanilla and the docker universe alike."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from rhc.condor.description import WorkerJob, describe
from rhc.condor.minipool.execution import DockerRunner
from rhc.condor.minipool.jobs import Job, Slot
from rhc.condor.minipool.scratch import prepare_launch
from rhc.condor.minipool.submitfile import interpret
from rhc.config import write_config_file
from tests.grid import jwt, now, write_file, write_proxy


@pytest.mark.parametrize("universe", ["vanilla", "docker"])
def test_credentials_land_private_in_the_scratch_directory_and_the_job_is_told_where(
    tmp_path, universe
):
    # Given rhc's description of a worker with a proxy and a token, and the files as a careless
    # submitter could send them (the proxy 0644: the pool must not keep that)
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    proxy, token = home / "x509up_u1000", home / "bt_u1000"
    write_proxy(proxy, expires=now() + timedelta(days=1))
    write_file(token, jwt(now() + timedelta(days=1)))
    job = WorkerJob(
        redis_url="redis://redis:6379",
        config_file=write_config_file(home / "worker.toml", {"redis_url": "redis://redis:6379"}),
        universe=universe,
        image="rhc/worker:0.1.0" if universe == "docker" else None,
        x509_proxy=proxy,
        bearer_token_file=token,
    )
    sent = {path.name: (path.read_bytes(), 0o600) for path in job.sent_files}
    sent[proxy.name] = (proxy.read_bytes(), 0o644)
    (spec,) = interpret(str(describe(job)), cluster=7)
    # When the pool prepares the job's start in a slot
    pool_job = Job(7, spec, "analyst", sent, time.time(), work / "7.0")
    launch = prepare_launch(pool_job, Slot("slot1@minipool", 1, 4096))
    # Then both files are in its scratch directory, 0600, with the bytes sent
    scratch = work / "7.0"
    for path in (proxy, token):
        copy = scratch / path.name
        assert copy.read_bytes() == path.read_bytes()
        assert copy.stat().st_mode & 0o777 == 0o600, path.name
    # And X509_USER_PROXY names the proxy's copy, the worker the token's (it sets
    # BEARER_TOKEN_FILE from the directory it starts in)
    assert launch.environment["X509_USER_PROXY"] == str(scratch / proxy.name)
    assert launch.command[-2:] == ("--bearer-token-file", token.name)
    assert launch.scratch == scratch
    if universe == "docker":
        # And a container sees its scratch directory at the same path, working in it
        runner = DockerRunner(pool_name="ci", user="12345:12345", work_dir=work)
        arguments = runner.run_arguments(launch)
        assert arguments["volumes"] == {str(scratch): {"bind": str(scratch), "mode": "rw"}}
        assert arguments["working_dir"] == str(scratch)
        assert arguments["environment"]["X509_USER_PROXY"] == str(scratch / proxy.name)
