# SPDX-License-Identifier: BSD-3-Clause
"""A cluster on one machine: a password-protected redis-server on loopback, N workers as
processes, and nginx to serve files over HTTP.

For trying rhc without a batch system (`rhc local`), and for the tests. Secrets go into files
readable only by their owner, never onto a command line.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import redis

from rhc.config import CONFIG_FILE_VARIABLE, child_environment, new_secret, write_config_file
from rhc.errors import ConfigurationError, RhcError
from rhc.wire.protocol import Keys


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A redis-server process on 127.0.0.1, stopped by its PID."""

    def __init__(
        self,
        directory: Path,
        *,
        password: str | None = None,
        port: int | None = None,
        appendonly: bool = False,
    ) -> None:
        self.directory = directory
        self.password = password
        self.port = port or free_port()
        self.appendonly = appendonly
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The URL without the password (which stays in config files)."""
        return f"redis://127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password)

    def start(self, timeout: float = 10.0) -> RedisServer:
        executable = shutil.which("redis-server")
        if executable is None:
            raise ConfigurationError(
                "redis-server is not installed: `apt-get install redis-server` (Debian/Ubuntu)"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "redis.conf"
        lines = [
            "bind 127.0.0.1",
            f"port {self.port}",
            f"dir {self.directory}",
            'save ""',
            f"appendonly {'yes' if self.appendonly else 'no'}",
            "appendfsync everysec",
            f"logfile {self.directory / 'redis.log'}",
        ]
        if self.password:
            lines.append(f"requirepass {self.password}")
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        self.process = subprocess.Popen(
            [executable, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = self.client()
        while True:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode(errors="replace")
                raise RhcError(f"redis-server exited with {self.process.returncode}: {error}")
            try:
                client.ping()
                client.close()
                return
            except (redis.ConnectionError, redis.ResponseError):
                if time.monotonic() > deadline:
                    raise RhcError(f"redis-server did not answer on port {self.port}") from None
                time.sleep(0.01)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL: the crash that AOF `everysec` may lose the last second of writes to."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


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
    env = child_environment(
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


class Nginx:
    """nginx serving a directory over HTTP on loopback, with range requests (uproot cannot read
    from python -m http.server); one process (no master, no daemon), stopped by its PID. Its
    access log records the bytes it sends, to count what remote reads cost."""

    def __init__(self, root: Path, directory: Path) -> None:
        self.root = root
        self.directory = directory
        self.port = free_port()
        self.access_log = directory / "access.log"
        self.process: subprocess.Popen | None = None

    def url(self, path: Path) -> str:
        return f"http://127.0.0.1:{self.port}/{path.relative_to(self.root)}"

    def start(self) -> Nginx:
        executable = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(executable).exists():
            raise ConfigurationError("nginx is not installed: `apt-get install nginx` (Debian)")
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "nginx.conf"
        config.write_text(f"""
            daemon off;
            master_process off;
            pid {self.directory}/nginx.pid;
            error_log {self.directory}/error.log;
            events {{ worker_connections 256; }}
            http {{
                log_format sent '$bytes_sent';
                access_log {self.access_log} sent;
                client_body_temp_path {self.directory};
                proxy_temp_path {self.directory};
                fastcgi_temp_path {self.directory};
                uwsgi_temp_path {self.directory};
                scgi_temp_path {self.directory};
                server {{
                    listen 127.0.0.1:{self.port};
                    root {self.root};
                }}
            }}
        """)
        self.process = subprocess.Popen(
            [executable, "-c", str(config), "-p", str(self.directory)], stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=1).close()
                return self
            except urllib.error.HTTPError:
                return self  # it answers (403 for a directory without index)
            except OSError:
                if self.process.poll() is not None:
                    raise RhcError(f"nginx exited: {self.process.stderr.read().decode()}") from None
                if time.monotonic() > deadline:
                    raise RhcError(f"nginx did not answer on port {self.port}") from None
                time.sleep(0.02)

    def bytes_sent(self) -> int:
        """Bytes nginx sent so far (headers included), from its access log."""
        if not self.access_log.exists():
            return 0
        return sum(int(line) for line in self.access_log.read_text().split())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


class LocalCluster:
    """Redis and N workers on this machine, described by a fresh 0600 config file; each worker
    runs `rhc worker` with worker_options (e.g. ``("--preload", "mymodule")``)."""

    def __init__(
        self,
        directory: Path,
        *,
        workers: int = 2,
        namespace: str = "local",
        worker_options: Sequence[str] = (),
    ) -> None:
        self.directory = directory
        self.worker_count = workers
        self.namespace = namespace
        self.worker_options = tuple(worker_options)
        self.config_file = directory / "rhc.toml"
        self.redis = RedisServer(directory / "redis", password=new_secret())
        self.workers: list[subprocess.Popen] = []

    def start(self, timeout: float = 60.0) -> LocalCluster:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.redis.start()
        write_config_file(
            self.config_file,
            {
                "redis_url": self.redis.url,
                "redis_password": self.redis.password,
                "secret": new_secret(),
                "namespace": self.namespace,
            },
        )
        for index in range(self.worker_count):
            self.workers.append(
                start_worker(
                    self.config_file,
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
