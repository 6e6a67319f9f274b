# SPDX-License-Identifier: BSD-3-Clause
"""A redis-server on loopback for a cluster on this machine, configured through a 0600 file so
that no secret is on its command line."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import redis

from rhc.errors import ConfigurationError, RhcError
from rhc.local.ports import free_port
from rhc.local.tls import TlsFiles, generate


class RedisServer:
    """A redis-server process on 127.0.0.1, stopped by its PID.

    With tls, it speaks TLS only, with a certificate for 127.0.0.1 and localhost signed by a CA
    of its own (generated once in its directory, kept across restarts).
    """

    def __init__(
        self,
        directory: Path,
        *,
        password: str | None = None,
        port: int | None = None,
        appendonly: bool = False,
        tls: bool = False,
    ) -> None:
        self.directory = directory
        self.password = password
        self.port = port or free_port()
        self.appendonly = appendonly
        self.tls = TlsFiles.in_directory(directory / "tls") if tls else None
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The URL without the password (which stays in config files)."""
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}"

    @property
    def ca(self) -> str | None:
        """The PEM text of the CA clients verify the server with (redis_ca), if it has TLS."""
        return self.tls.ca.read_text() if self.tls else None

    def client(self) -> redis.Redis:
        """A client of this server by its address, verified against its CA (not its name)."""
        tls = (
            {"ssl": True, "ssl_ca_certs": str(self.tls.ca), "ssl_check_hostname": False}
            if self.tls
            else {}
        )
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, **tls)

    def start(self, timeout: float = 10.0) -> RedisServer:
        executable = shutil.which("redis-server")
        if executable is None:
            raise ConfigurationError(
                "redis-server is not installed: `apt-get install redis-server` (Debian/Ubuntu)"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.tls and not self.tls.exist():
            generate(self.tls.ca.parent, ["127.0.0.1", "localhost"])
        config = self.directory / "redis.conf"
        listen = self.tls.redis_config(self.port) if self.tls else [f"port {self.port}"]
        lines = [
            "bind 127.0.0.1",
            *listen,
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
