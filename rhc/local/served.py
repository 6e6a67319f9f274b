# SPDX-License-Identifier: BSD-3-Clause
"""A directory served over HTTP (nginx) or root:// (XRootD), reached through a byte-counting
relay: what reading its files moves is counted the same way for both protocols, for the
remote-reading tests and benchmarks."""

from __future__ import annotations

from pathlib import Path

from rhc.errors import ArgumentError
from rhc.local.nginx import Nginx
from rhc.local.relay import CountingRelay
from rhc.local.xrootd import XRootDServer

PROTOCOLS = ("http", "root")


class Served:
    """root served over `protocol` ("http": nginx, with its run files in directory; "root":
    XRootD), started at once, behind a CountingRelay; stop() stops both."""

    def __init__(self, protocol: str, root: Path, directory: Path) -> None:
        if protocol not in PROTOCOLS:
            raise ArgumentError(f"protocol must be one of {PROTOCOLS}, not {protocol!r}")
        self.protocol = protocol
        self.root = root
        server = Nginx(root, directory) if protocol == "http" else XRootDServer(root)
        self.server = server.start()
        self.relay = CountingRelay(self.server.port).start()

    def url(self, path: Path) -> str:
        """The URL of the file at path (under root), through the relay."""
        return self.server.url(path).replace(f":{self.server.port}/", f":{self.relay.port}/", 1)

    def moved(self) -> int:
        """Bytes the server sent through the relay so far."""
        return self.relay.bytes_from_server

    def stop(self) -> None:
        self.relay.stop()
        self.server.stop()
