# SPDX-License-Identifier: BSD-3-Clause
"""nginx serving a directory over HTTP on loopback, for remote-read tests and benchmarks."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

from rhc.errors import ConfigurationError, RhcError
from rhc.local.ports import free_port


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
                log_format sent '$request_method $bytes_sent';
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
        return sum(int(sent) for _, sent in self._logged())

    def requests(self) -> Counter[str]:
        """Requests nginx answered so far, by method (GET, HEAD, ...)."""
        return Counter(method for method, _ in self._logged())

    def _logged(self) -> list[list[str]]:
        if not self.access_log.exists():
            return []
        return [line.split() for line in self.access_log.read_text().splitlines() if line]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
