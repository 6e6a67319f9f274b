# SPDX-License-Identifier: BSD-3-Clause
"""A cluster on one machine: a password-protected redis-server on loopback and N workers as
processes (`rhc local`, the tests, the benchmarks). Secrets go into files readable only by
their owner, never onto a command line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rhc.config import CONFIG_FILE_VARIABLE, worker_environment
from rhc.errors import RhcError
from rhc.local.redis_server import RedisServer
from rhc.local.setup import write_namespace_configs
from rhc.wire.keys import Keys


def start_worker(
    config_file: Path,
    *,
    scratch: Path | None = None,
    name: str | None = None,
    log_file: Path | None = None,
    python: str = sys.executable,
    extra_env: dict[str, str] | None = None,
    options: Sequence[str] = (),
) -> subprocess.Popen:
    """Start `rhc worker` in its own process group; its settings come from config_file.

    scratch: a scratch directory for the worker (its TMPDIR, as condor gives a job its own):
      its disk cache goes there unless options name another. By default it inherits this
      process's temporary directory.
    """
    command = [python, "-m", "rhc", "worker", *options]
    if name:
        command += ["--name", name]
    scratch_env = {} if scratch is None else {"TMPDIR": str(scratch)}
    env = worker_environment(
        **{CONFIG_FILE_VARIABLE: str(config_file), **scratch_env, **(extra_env or {})}
    )
    output = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    finally:
        if log_file:
            output.close()


def stop_workers(processes: list[subprocess.Popen], timeout: float = 30.0) -> list[int]:
    """One SIGTERM each (what condor sends; a second would mean "exit now"), then SIGKILL for
    any still running after timeout. Returns their exit codes."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return [process.returncode for process in processes]


class LocalCluster:
    """Redis and N workers on this machine, each side with a fresh 0600 config file of its own:
    config_file for the notebook (the manager user, the secret, the task key), worker_config_file
    for the workers (the worker user, the task key's public half); each worker runs `rhc worker`
    with worker_options (e.g. ``("--preload", "mymodule")``). With tls, Redis speaks TLS only,
    and both files carry the CA that verifies it."""

    def __init__(
        self,
        directory: Path,
        *,
        workers: int = 2,
        namespace: str = "local",
        worker_options: Sequence[str] = (),
        tls: bool = False,
    ) -> None:
        self.directory = directory
        self.worker_count = workers
        self.namespace = namespace
        self.worker_options = tuple(worker_options)
        self.config_file = directory / "rhc.toml"
        self.worker_config_file = directory / "worker.toml"
        self.redis = RedisServer(directory / "redis", tls=tls)
        self.workers: list[subprocess.Popen] = []

    def start(self, timeout: float = 60.0) -> LocalCluster:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.redis.start()
        write_namespace_configs(
            self.redis.url,
            self.redis.add_namespace(self.namespace),
            notebook_file=self.config_file,
            worker_file=self.worker_config_file,
            namespace=self.namespace,
            ca=self.redis.ca,
        )
        for index in range(self.worker_count):
            self.workers.append(
                start_worker(
                    self.worker_config_file,
                    name=f"local-{index}",
                    log_file=self.directory / f"worker-{index}.log",
                    options=self.worker_options,
                )
            )
        self._wait_for_workers(timeout)
        return self

    def _wait_for_workers(self, timeout: float) -> None:
        client = self.redis.client()
        deadline = time.monotonic() + timeout
        key = Keys(self.namespace).workers
        while client.hlen(key) < self.worker_count:
            dead = [p for p in self.workers if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RhcError(f"workers did not start; see {self.directory}/worker-*.log")
            time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        stop_workers(self.workers)
        self.redis.stop()
