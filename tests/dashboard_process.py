# SPDX-License-Identifier: BSD-3-Clause
"""`rhc dashboard` as a person starts it, for the tests: a real process on a free loopback
port, reading a real Redis with the monitor user, reached over HTTP."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from rhc.config import write_config_file
from rhc.local.cluster import stop_workers
from rhc.local.redis_server import RedisServer
from rhc.local.setup import client_config
from tests.conftest import REPOSITORY, wait_for


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DashboardProcess:
    """`rhc dashboard` of some namespaces, with the monitor's config; `url` ends in "/"."""

    def __init__(
        self,
        server: RedisServer,
        directory: Path,
        namespaces: list[str],
        *,
        manager_config: Path | None = None,
        heartbeat_ttl: float = 2.0,
    ) -> None:
        settings = client_config(
            server.url,
            server.monitor,
            namespace=namespaces[0],
            ca=server.ca,
            heartbeat_interval=0.25,
            heartbeat_ttl=heartbeat_ttl,
        )
        self.config_file = write_config_file(directory / "monitor.toml", settings)
        self.token_file = directory / "dashboard_token"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        command = [sys.executable, "-m", "rhc", "dashboard", "--port", str(self.port)]
        command += ["--token-file", str(self.token_file)]
        for namespace in namespaces:
            command += ["--namespace", namespace]
        if manager_config is not None:
            command += ["--manager-config", str(manager_config)]
        self.log_file = directory / f"dashboard-{self.port}.log"
        with self.log_file.open("w") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={
                    **os.environ,
                    "PYTHONPATH": str(REPOSITORY),
                    "RHC_CONFIG_FILE": str(self.config_file),
                },
                start_new_session=True,
            )
        wait_for(self._answers, 30, f"the dashboard to answer (log: {self.log_file})")
        self.token = self.token_file.read_text().strip()

    def _answers(self) -> bool:
        assert self.process.poll() is None, self.log()
        try:
            return requests.get(self.url + "health", timeout=1).ok
        except requests.ConnectionError:
            return False

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def printed_url(self) -> str:
        """The URL with its token, as the command printed it."""
        return re.search(r"http://\S+\?token=\S+", self.log()).group(0)

    def session(self) -> requests.Session:
        """A browser-like session, logged in through the printed URL."""
        session = requests.Session()
        response = session.get(self.printed_url(), timeout=5)
        assert response.ok, response.text
        return session

    def get(self, path: str, **kwargs: object) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return requests.get(self.url + path, headers=headers, timeout=5, **kwargs)

    def overview(self) -> dict:
        response = self.get("api/overview")
        assert response.ok, response.text
        return response.json()

    def namespace(self, name: str) -> dict:
        return next(ns for ns in self.overview()["namespaces"] if ns["name"] == name)

    def metrics(self) -> dict[tuple[str, tuple], float]:
        """Every sample of /metrics, parsed by prometheus_client: (name, labels) -> value."""
        response = self.get("metrics")
        assert response.ok, response.text
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }

    def stop(self) -> None:
        stop_workers([self.process], timeout=10)
