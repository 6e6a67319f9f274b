# SPDX-License-Identifier: BSD-3-Clause
"""Servers and clusters on this machine: a Redis (with TLS when asked), workers as processes,
nginx, an XRootD server, a byte-counting relay in front of either; for `rhc local`, the tests
and the benchmarks."""

from rhc.local.cluster import LocalCluster, start_worker, stop_workers
from rhc.local.nginx import Nginx
from rhc.local.ports import free_port
from rhc.local.redis_server import RedisServer
from rhc.local.relay import CountingRelay
from rhc.local.served import Served
from rhc.local.tls import TlsFiles, generate
from rhc.local.xrootd import XRootDServer

__all__ = [
    "CountingRelay",
    "LocalCluster",
    "Nginx",
    "RedisServer",
    "Served",
    "TlsFiles",
    "XRootDServer",
    "free_port",
    "generate",
    "start_worker",
    "stop_workers",
]
