# SPDX-License-Identifier: BSD-3-Clause
"""A redis-server on loopback for a cluster on this machine, configured through 0600 files so
that no secret is on its command line."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import redis

from rhc.config import write_private
from rhc.errors import ConfigurationError, RhcError
from rhc.local.ports import free_port
from rhc.local.setup import NamespaceUsers, ServerFiles, add_namespace, operator_users
from rhc.wire.acl import ADMIN, MONITOR


class RedisServer:
    """A redis-server process on 127.0.0.1, stopped by its PID, with rhc's ACL users: the
    default user is off, `admin` is the tests' and the operator's, namespaces get theirs from
    add_namespace().

    With tls, it speaks TLS only, with a certificate for `hosts` signed by a CA of its own.
    Its files are written at the first start(); restarts keep them and its users.
    """

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        appendonly: bool = False,
        tls: bool = False,
        hosts: Sequence[str] = ("127.0.0.1", "localhost"),
    ) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.appendonly = appendonly
        self.files = ServerFiles(directory / "server")
        self.admin, self.monitor = operator_users()
        self._tls = tls
        self._hosts = tuple(hosts)
        self._written = False
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The URL without the password (which stays in config files)."""
        return f"{'rediss' if self._tls else 'redis'}://127.0.0.1:{self.port}"

    @property
    def ca(self) -> str | None:
        """The PEM text of the CA clients verify the server with (redis_ca), if it has TLS."""
        return self.files.tls.ca.read_text() if self._tls else None

    def client(self) -> redis.Redis:
        """An admin client of this server by its address, verified against its CA (not its
        name)."""
        tls = (
            {"ssl": True, "ssl_ca_certs": str(self.files.tls.ca), "ssl_check_hostname": False}
            if self._tls
            else {}
        )
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            username=self.admin.name,
            password=self.admin.password,
            **tls,
        )

    def add_namespace(self, namespace: str) -> NamespaceUsers:
        """New manager and worker users for a namespace."""
        admin = self.client()
        try:
            return add_namespace(admin, namespace)
        finally:
            admin.close()

    def start(self, timeout: float = 10.0) -> RedisServer:
        executable = shutil.which("redis-server")
        if executable is None:
            raise ConfigurationError(
                "redis-server is not installed: `apt-get install redis-server` (Debian/Ubuntu)"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self._written:
            self._written = True
            self.files.write(
                port=self.port,
                users=[(self.admin, ADMIN, None), (self.monitor, MONITOR, None)],
                tls_hosts=self._hosts if self._tls else (),
            )
        config = self.directory / "redis.conf"
        lines = [
            f"include {self.files.config}",
            "bind 127.0.0.1",
            f"dir {self.directory}",
            'save ""',
            f"appendonly {'yes' if self.appendonly else 'no'}",
            "appendfsync everysec",
            f"logfile {self.directory / 'redis.log'}",
        ]
        write_private(config, "\n".join(lines) + "\n")
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
