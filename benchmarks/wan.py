"""The WAN benchmark: workers at another site than their Redis, the notebook beside it.

Workers reach Redis through rhc.local.CountingRelay with a delay in each direction (this
machine's kernel has no netem): round trips of 0 (the relay alone), 10 and 50 ms added. At each,
4 `rhc worker` processes, registered before timing, and a Manager connected directly:

  efficiency  maps of 10 ms sleeping tasks (10,000 at 50 ms, 2,000 below): time in tasks /
              (wall * 4)                                            target at 50 ms: >= 90 %
  latency     a 10-task no-op map, median of 30, 20 ms apart        target: <= 2 round trips
                                                                            + 5 ms
  throughput  maps of 100,000 no-op tasks, median of 3, in tasks/s  target at 50 ms: >= 100,000
  round trip  a PING through the relay, median of 30, 20 ms apart: what a round trip of the
              modelled link measures (the relay's own hops and timers included), against which
              the latency target is also counted

and, for each, its ratio to the same figure without a delay. Run `python benchmarks/wan.py`
(or `make bench`): it prints a table and writes benchmarks/results/wan.json. It stops every
process it starts, also on error.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import redis
import tasks
from machine import machine, publish

import rhc
from rhc.config import read_config_file, resolve_settings
from rhc.local import CountingRelay, LocalCluster
from rhc.local.cluster import start_worker, stop_workers
from rhc.wire.connection import connect

HERE = Path(__file__).resolve().parent
WORKERS = 4
ROUND_TRIPS = (0.0, 0.010, 0.050)
"""Seconds added to each round trip between a worker and Redis."""
SLEEP_TASKS = {0.050: 10_000}
"""Tasks per efficiency map where it differs from 2,000."""
LATENCY_MAPS, THROUGHPUT_MAPS, THROUGHPUT_TASKS = 30, 3, 100_000
PAUSE = 0.02


class FarSite(NamedTuple):
    manager: rhc.Manager
    link: redis.Redis
    """A client reaching Redis through the workers' relay, as they do."""


@contextlib.contextmanager
def far_workers(scratch: Path, round_trip: float) -> Iterator[FarSite]:
    """A Redis, 4 workers reaching it through a relay adding round_trip, a Manager beside it,
    and a client of the relay."""
    cluster = LocalCluster(scratch / "cluster", workers=0)
    relay = workers = None
    try:
        cluster.start()
        relay = CountingRelay(cluster.redis.port, delay=round_trip / 2).start()
        far = cluster.redis.url.rsplit(":", 1)[0] + f":{relay.port}"
        workers = [
            start_worker(
                cluster.worker_config_file,
                name=f"far-{index}",
                log_file=scratch / f"worker-{index}.log",
                extra_env={"RHC_REDIS_URL": far},
            )
            for index in range(WORKERS)
        ]
        settings = read_config_file(cluster.config_file)
        link = connect(resolve_settings(**{**settings, "redis_url": far}), role="probe")
        with rhc.Manager(**settings) as manager, contextlib.closing(link):
            deadline = time.monotonic() + 120
            while len(manager.workers().runnable) < WORKERS:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"workers did not register; see {scratch}/worker-*.log")
                time.sleep(0.1)
            yield FarSite(manager, link)
    finally:
        if workers:
            stop_workers(workers)
        if relay is not None:
            relay.stop()
        cluster.stop()


def efficiency(manager: rhc.Manager, count: int) -> float:
    manager.remote_map(tasks.sleep, range(200), progress=False)  # warm: the sizer learns 10 ms
    started = time.perf_counter()
    results = manager.remote_map(tasks.sleep, range(count), progress=False)
    wall = time.perf_counter() - started
    return sum(lasted for _, lasted in results) / (wall * WORKERS)


def paced(call: Callable[[], object]) -> float:
    """The median seconds of LATENCY_MAPS calls, PAUSE apart (as a person in a notebook)."""
    seconds = []
    for _ in range(LATENCY_MAPS):
        time.sleep(PAUSE)
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def small_map(manager: rhc.Manager) -> None:
    manager.remote_map(tasks.noop, range(10), progress=False)


def throughput(manager: rhc.Manager) -> float:
    manager.remote_map(tasks.noop, range(10_000), progress=False)
    seconds = []
    for _ in range(THROUGHPUT_MAPS):
        started = time.perf_counter()
        manager.remote_map(tasks.noop, range(THROUGHPUT_TASKS), progress=False)
        seconds.append(time.perf_counter() - started)
    return THROUGHPUT_TASKS / statistics.median(seconds)


def measure(scratch: Path, round_trip: float) -> dict[str, float]:
    with far_workers(scratch, round_trip) as (manager, link):
        return {
            "efficiency": efficiency(manager, SLEEP_TASKS.get(round_trip, 2_000)),
            "latency_ms": 1e3 * paced(lambda: small_map(manager)),
            "throughput": throughput(manager),
            "round_trip_ms": 1e3 * paced(link.ping),
        }


def report(figures: dict[float, dict[str, float]]) -> str:
    lines = [
        f"{'added round trip':<18}{'measured':>10}{'efficiency':>12}{'latency ms':>12}"
        f"{'tasks/s':>12}"
    ]
    for round_trip, row in figures.items():
        lines.append(
            f"{1e3 * round_trip:>13.0f} ms {row['round_trip_ms']:>7.1f} ms"
            f"{100 * row['efficiency']:>10.1f} %{row['latency_ms']:>12.1f}"
            f"{row['throughput']:>12,.0f}"
        )
    far = figures[ROUND_TRIPS[-1]]
    lines.append(
        f"\nat {1e3 * ROUND_TRIPS[-1]:.0f} ms: efficiency {100 * far['efficiency']:.1f} % "
        f"(target >= 90 %), {far['throughput']:,.0f} tasks/s (target >= 100,000), a 10-task map "
        f"{far['latency_ms']:.1f} ms = 2 round trips + "
        f"{far['latency_ms'] - 2e3 * ROUND_TRIPS[-1]:.1f} ms as added, + "
        f"{far['latency_ms'] - 2 * far['round_trip_ms']:.1f} ms as measured (target: + 5 ms)"
    )
    return "\n".join(lines)


def main() -> None:
    # The workers import tasks.py by name, from this directory.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), os.getenv("PYTHONPATH")]))
    figures = {}
    with tempfile.TemporaryDirectory(prefix="rhc-bench-wan-") as scratch:
        for round_trip in ROUND_TRIPS:
            print(f"measuring {1e3 * round_trip:.0f} ms ...", file=sys.stderr, flush=True)
            figures[round_trip] = measure(Path(scratch) / f"rt{round_trip}", round_trip)
    summary = {
        "machine": machine(),
        "workers": WORKERS,
        "figures": {f"{1e3 * rt:.0f} ms": row for rt, row in figures.items()},
        "ratios_to_no_delay": {
            f"{1e3 * rt:.0f} ms": {k: v / figures[0.0][k] for k, v in row.items()}
            for rt, row in figures.items()
        },
    }
    publish("wan", summary, report(figures))


if __name__ == "__main__":
    main()
