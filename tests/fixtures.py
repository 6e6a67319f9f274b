# SPDX-License-Identifier: BSD-3-Clause
"""Task functions the workers import (the repository is on their PYTHONPATH in the tests)."""

from __future__ import annotations

import os
import resource
import signal
import stat
import time
from collections import Counter
from pathlib import Path

import numpy as np

from rhc import get_worker


def square(x: int) -> int:
    return x * x


def sleep_square(x: int, seconds: float = 0.01) -> int:
    time.sleep(seconds)
    return x * x


def sleep_for(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def wait_for_file(path: str) -> int:
    """1 once `path` exists: a task the test lets finish when it has seen what it looks for."""
    deadline = time.monotonic() + 60
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.005)
    return 1


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError(f"three is not allowed (got {x})")
    return x


def fail_on(item: tuple[int, list[int]]) -> int:
    """item: (x, the values that raise)."""
    x, failing = item
    if x in failing:
        raise ValueError(f"{x} is among the failing values")
    return x


def killed_on_two(x: int) -> int:
    """As the OOM killer would: SIGKILL to the task process."""
    if x == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def exit_on_two(x: int) -> int:
    if x == 2:
        os._exit(1)
    return x


def hang_on_one(x: int) -> int:
    if x == 1:
        time.sleep(600)
    return x


WARMED_UP = False
"""Set by rhc_warm_up(), which a worker's task process calls when it preloads this module."""


def rhc_warm_up() -> None:
    global WARMED_UP
    WARMED_UP = True


def was_warmed_up(_: object) -> bool:
    return WARMED_UP


def worker_identity(_: object) -> tuple[str, str, int]:
    worker = get_worker()
    return worker.namespace, worker.name, os.getpid()


def count_visits(key: str) -> int:
    """How often this worker's task process has seen key: the cache outlives single tasks."""
    cache = get_worker().cache
    visits = cache.get(key, 0) + 1
    cache[key] = visits
    return visits


def sleep_one_millisecond(x: int) -> int:
    time.sleep(0.001)
    return x


def random_bytes(size: int) -> bytes:
    return os.urandom(size)


def tally(x: int, seconds: float = 0.005) -> Counter:
    """One count for task x: merged with operator.add, any task lost or counted twice shows."""
    time.sleep(seconds)
    return Counter({x: 1})


def record_run(argument: tuple[str, int]) -> int:
    """Append the task's number to a file: how often it really ran, whatever Redis says."""
    path, x = argument
    with open(path, "a") as handle:
        handle.write(f"{x}\n")
    return x


def grid_credentials(_: object) -> dict:
    """What a task sees of its job's grid credentials: for X509_USER_PROXY and BEARER_TOKEN_FILE
    the file named, its mode and bytes; and the job's scratch directory, job ad, environment and
    its worker's command line, where no secret may be."""
    found: dict = {}
    for variable in ("X509_USER_PROXY", "BEARER_TOKEN_FILE"):
        path = Path(os.environ[variable])
        mode = stat.S_IMODE(path.stat().st_mode)
        found[variable] = {"path": str(path), "mode": mode, "content": path.read_bytes()}
    found["scratch"] = os.environ["_CONDOR_SCRATCH_DIR"]
    found["job_ad"] = Path(os.environ["_CONDOR_JOB_AD"]).read_text()
    found["environment"] = dict(os.environ)
    found["command_line"] = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().replace(b"\0", b" ")
    return found


def faults_per_allocation(megabytes: int) -> float:
    """Minor page faults per allocation of a `megabytes` array, filled and freed 20 times after
    a first one: each is a fresh page the process had to get from the kernel."""
    size = megabytes * 2**20 // 8
    np.ones(size).sum()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        np.ones(size).sum()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20


def faults_keeping(megabytes: int) -> int:
    """Minor page faults while making `megabytes` of 1 MB buffers, all kept until the last is
    made, as a memory cache keeps a cold run's arrays."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    kept = [b"\x01" * 2**20 for _ in range(megabytes)]
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    del kept
    return faults
