# SPDX-License-Identifier: BSD-3-Clause
"""A free TCP port on loopback, for the servers this machine's cluster starts."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
