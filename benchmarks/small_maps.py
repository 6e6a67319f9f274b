"""Small maps, A/B: benchmarks/core.py's rhc figures — the latency of a 10-task no-op map, back
to back and 20 ms after the last ("idle": a person in a notebook), and the throughput of 10,000
no-op tasks — for the rhc that PYTHONPATH names, so that two checkouts can be compared:

    git worktree add ../before <commit>
    for i in 1 2 3 4 5 6 7; do for tree in ../before .; do
      PYTHONPATH=$PWD/$tree python benchmarks/small_maps.py; done; done
    PYTHONPATH=$PWD python benchmarks/small_maps.py --against ../before

Each run starts a LocalCluster of 2 workers, warms it with 3 maps of each size, then times
core.py's maps (200 small, 100 idle, 20 large, tasks.noop from benchmarks/tasks.py), and prints
one JSON line: which rhc, and per size the median wall time, and per map the CPU time of the
manager (this process), the workers (with their task processes) and redis-server, and the
commands Redis ran (INFO commandstats, its scripts' own included). Interleave runs: on a shared
machine the wall times of single runs scatter by ±50 %, and even CPU times drift with the load.

With --against, both checkouts run at once, each with a cluster of its own, taking turns map by
map (1,000 small maps, 300 idle and 200 large ones each): two adjacent maps meet the same load,
and the median of their differences is the figure. It prints one JSON line.

The workers start in a scratch directory: `python -m rhc worker` puts its working directory
first on sys.path, so started from a checkout they would import that checkout's rhc whatever
PYTHONPATH says; the run checks that they run the manager's rhc.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import redis
import tasks
from processes import family

import rhc
from rhc.config import read_config_file
from rhc.local import LocalCluster

HERE = Path(__file__).resolve().parent
SMALL, LARGE = list(range(10)), list(range(10_000))
PAUSE = 0.02
"""Seconds between the "idle" maps: a person in a notebook, not a loop."""
MAPS = {  # name: (items, seconds paused before each, repeats, pairs with --against)
    "small": (SMALL, 0.0, 200, 1000),
    "idle": (SMALL, PAUSE, 100, 300),
    "large": (LARGE, 0.0, 20, 200),
}
WARMUP = 3
"""As benchmarks/core.py times rhc."""


def where(_: object) -> str:
    """The rhc a worker runs (sent by value: the task module is not asked for)."""
    import rhc

    return rhc.__file__


def cpu_seconds(pids: list[int]) -> float:
    """CPU time of every thread of the processes so far, in ns resolution (schedstat)."""
    nanoseconds = 0
    for pid in pids:
        for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            try:
                nanoseconds += int(stat.read_text().split()[0])
            except (OSError, IndexError):
                continue
    return nanoseconds / 1e9


def redis_calls(admin: redis.Redis) -> int:
    """Commands Redis ran so far, those its scripts ran included."""
    return sum(stats["calls"] for stats in admin.info("commandstats").values())


def timed(run: Callable[[list], list], name: str) -> float:
    """Seconds one map of that kind takes, after its pause."""
    items, pause, _, _ = MAPS[name]
    time.sleep(pause)
    started = time.perf_counter()
    if run(items) != items:
        raise RuntimeError(f"a map of {len(items)} no-op tasks returned wrong results")
    return time.perf_counter() - started


def phase(
    run: Callable[[list], list],
    name: str,
    workers: list[int],
    server: int,
    admin: redis.Redis,
) -> dict[str, float]:
    """Time the maps of that kind: the median wall, and per map CPU and Redis work (the
    pauses' included: the CPU a worker spends idle)."""
    repeats = MAPS[name][2]
    before = (time.process_time(), cpu_seconds(workers), cpu_seconds([server]))
    calls = redis_calls(admin)
    seconds = [timed(run, name) for _ in range(repeats)]
    after = (time.process_time(), cpu_seconds(workers), cpu_seconds([server]))
    calls = redis_calls(admin) - calls
    manager, worker, server_cpu = (
        1e3 * (b - a) / repeats for a, b in zip(before, after, strict=True)
    )
    return {
        "wall_ms": 1e3 * statistics.median(seconds),
        "manager_cpu_ms": manager,
        "workers_cpu_ms": worker,
        "redis_cpu_ms": server_cpu,
        "redis_calls": calls / repeats,
    }


@contextlib.contextmanager
def warm_cluster(scratch: Path) -> Iterator[tuple[LocalCluster, Callable[[list], list]]]:
    """A LocalCluster of 2 workers and a map on it, checked to run this process's rhc, warm."""
    os.chdir(scratch)  # the workers' working directory: no rhc there
    cluster = LocalCluster(scratch / "cluster", workers=2).start()
    try:
        with rhc.Manager(**read_config_file(cluster.config_file)) as manager:

            def run(items: list) -> list:
                return manager.remote_map(tasks.noop, items, progress=False)

            workers_run = set(manager.remote_map(where, range(20), progress=False))
            if workers_run != {rhc.__file__}:
                raise RuntimeError(f"workers run {workers_run}, this process {rhc.__file__}")
            for items in (SMALL, LARGE):
                for _ in range(WARMUP):
                    run(items)
            yield cluster, run
    finally:
        cluster.stop()
        os.chdir(HERE)


def measure(scratch: Path) -> dict[str, object]:
    """One run: its medians, and per map its CPU time and Redis commands."""
    with warm_cluster(scratch) as (cluster, run):
        admin = cluster.redis.client()
        workers = family([process.pid for process in cluster.workers])
        server = cluster.redis.process.pid
        phases = {name: phase(run, name, workers, server, admin) for name in MAPS}
        admin.close()
    return {
        "rhc": rhc.__file__,
        "latency_ms": phases["small"]["wall_ms"],
        "idle_latency_ms": phases["idle"]["wall_ms"],
        "throughput": len(LARGE) / (phases["large"]["wall_ms"] / 1e3),
        **phases,
    }


def serve(scratch: Path) -> None:
    """For --against: warm, say "ready", then time one map per line read (a name of MAPS)."""
    with warm_cluster(scratch) as (_, run):
        print("ready", flush=True)
        for line in sys.stdin:
            print(timed(run, line.strip()), flush=True)


def against(other: Path) -> dict[str, object]:
    """Both checkouts side by side, each with its own cluster, taking turns map by map (the
    first of each pair alternates): adjacent maps share the machine's load of the moment."""
    mine = Path(rhc.__file__).resolve().parent.parent
    trees = {"before": other.resolve(), "after": mine}
    servers = {
        name: subprocess.Popen(
            [sys.executable, __file__, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(tree)},
        )
        for name, tree in trees.items()
    }
    try:
        for name, server in servers.items():
            if server.stdout.readline().strip() != "ready":
                raise RuntimeError(f"the {name} side did not start (its error is above)")
        seconds: dict[str, dict[str, list[float]]] = {}
        for size, (_, _, _, count) in MAPS.items():
            seconds[size] = {name: [] for name in servers}
            for i in range(count):
                for name in list(servers)[:: 1 if i % 2 else -1]:
                    servers[name].stdin.write(f"{size}\n")
                    servers[name].stdin.flush()
                    seconds[size][name].append(float(servers[name].stdout.readline()))
    finally:
        for server in servers.values():
            server.stdin.close()
            server.wait(60)
    figures: dict[str, object] = {"before": str(trees["before"]), "after": str(mine)}
    for size, times in seconds.items():
        pairs = list(zip(times["before"], times["after"], strict=True))
        figures[size] = {
            "before_ms": 1e3 * statistics.median(times["before"]),
            "after_ms": 1e3 * statistics.median(times["after"]),
            "paired_difference_ms": 1e3 * statistics.median(b - a for a, b in pairs),
            "paired_ratio": statistics.median(b / a for a, b in pairs),
            "after_slower_in": sum(b > a for a, b in pairs) / len(pairs),
        }
    return figures


def main() -> None:
    # The workers import tasks.py by name, from this directory.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), os.getenv("PYTHONPATH")]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", type=Path, help="a checkout to take turns with, map by map")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rhc-small-maps-") as scratch:
        if arguments.serve:
            serve(Path(scratch))
            return
        figures = against(arguments.against) if arguments.against else measure(Path(scratch))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
