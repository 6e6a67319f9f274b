# SPDX-License-Identifier: BSD-3-Clause
"""What the analysis benchmarks (nanoaod.py, remote.py, coffea_executor.py) share: fresh rhc
clusters, timed runs of the reference analysis, and the check of every result against the
direct computation."""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

import rhc
from rhc.config import read_config_file
from rhc.local import LocalCluster, start_worker
from rhc.nanoaod import Dimuon, RunResult, run

WORKERS = 2
CHUNKSIZE = 100_000
"""The analysis' chunks, in entries, in every run of these benchmarks."""


@contextlib.contextmanager
def rhc_cluster(
    directory: Path, options: Callable[[str], list[str]] = lambda name: []
) -> Iterator[rhc.Manager]:
    """A fresh cluster: its own redis-server and WORKERS `rhc worker` processes that have run
    nothing yet, started with options(name); a Manager on it. Stopped whatever happens."""
    cluster = LocalCluster(directory, workers=0)
    try:
        cluster.start()
        for index in range(WORKERS):
            name = f"bench-{index}"
            cluster.workers.append(
                start_worker(
                    cluster.worker_config_file,
                    name=name,
                    log_file=directory / f"{name}.log",
                    options=options(name),
                )
            )
        with rhc.Manager(**read_config_file(cluster.config_file)) as manager:
            deadline = time.monotonic() + 60
            while len(manager.workers().workers) < WORKERS:
                if time.monotonic() > deadline or any(
                    p.poll() is not None for p in cluster.workers
                ):
                    raise RuntimeError(f"workers did not start; see {directory}/bench-*.log")
                time.sleep(0.02)
            yield manager
    finally:
        cluster.stop()


def timed(run: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    value = run()
    return time.perf_counter() - started, value


def run_rhc(manager: rhc.Manager, files: list[str]) -> tuple[float, RunResult, float]:
    """One rhc.nanoaod.run, timed from the call (chunking included) to the merged result; also the
    seconds from the call to the first chunk starting on a worker (same machine, same clock):
    chunking, sending the job, and the workers loading the processor."""
    called = time.time()
    seconds, result = timed(
        lambda: run(manager, Dimuon(), files, chunksize=CHUNKSIZE, progress=False)
    )
    return seconds, result, min(r.started for r in result.chunks) - called


class Checker:
    """Holds every result against the direct computation: histograms equal bin for bin (flow
    bins and sums of squares included), sums of weights equal, MET means equal up to float32
    summation order, every event processed."""

    def __init__(self, expected: dict, events: int) -> None:
        self.expected = expected
        self.events = events
        self.checked = 0

    def __call__(self, what: str, value: dict, events: int | None = None) -> None:
        want = self.expected["mass"].view(flow=True)
        got = value["mass"].view(flow=True)
        if not np.array_equal(got, want):
            differ = int(np.count_nonzero(got != want))
            raise RuntimeError(f"{what}: the mass histogram differs from direct in {differ} bins")
        if value["sumw"] != self.expected["sumw"]:
            raise RuntimeError(f"{what}: sums of weights {value['sumw']}, not direct's")
        (path, mean), *_ = self.expected["met_mean"].items()
        if not math.isclose(next(iter(value["met_mean"].values())), mean, rel_tol=1e-5):
            raise RuntimeError(f"{what}: mean MET of {path} differs from direct")
        if events is not None and events != self.events:
            raise RuntimeError(f"{what}: {events} events processed, not {self.events}")
        self.checked += 1


def median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def verdict(met: bool) -> str:
    return "met" if met else "NOT MET"
