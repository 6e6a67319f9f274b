"""The scale benchmark: rhc with 200 workers, and a map of a million tasks, in one run.

Two parts, each against its target of issue 6:

  efficiency   200 `rhc worker` processes (a supervisor and its task process each, preloading
               only tasks.py) on a redis-server of their own, all started and registered before
               any timing. After an untimed warm-up map, maps of 4,000 tasks sleeping 0.5 s
               (20 per worker: 10 s if no time were lost), a new job each, timed from its first
               submit to its last result; the median map's
                 time in tasks / (wall time * 200)                          target: >= 95 %
               (and the same against the nominal 0.5 s per task)
  1M-task map  Manager.remote_map(tasks.noop, range(1_000_000)) returning the list, on 2
               workers, by a Manager in a fresh process of its own, so that its memory is the
               map's and an interpreter's with rhc imported, nothing else's:
                 peak RSS (VmHWM) of that process, the largest of 3 runs   target: <= 300 MB
               and, medians of the 3 runs, the tasks/s it sent (until it took the last argument)
               and completed. The manager sends only as fast as the workers finish (a bounded
               window of batches in flight keeps memory bounded), so the two rates are close.

Run `python benchmarks/scale.py` (or `make bench`): it prints a table and writes
benchmarks/results/scale.json. It stops every process it starts, also on error, Ctrl-C or
SIGTERM, and gives up on a part that takes far longer than it should.
"""

from __future__ import annotations

import functools
import itertools
import multiprocessing
import os
import shlex
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import tasks
from machine import figure_table, machine, publish
from processes import family

import rhc
from rhc.config import read_config_file
from rhc.local import LocalCluster

HERE = Path(__file__).resolve().parent
WORKERS = 200
TASK_SECONDS = 0.5
TASKS_PER_WORKER = 20
REPEATS = 5
START_TIMEOUT = 300.0
"""Seconds for 200 workers to start: each imports Python and rhc twice (supervisor and task
process), ~0.25 s of CPU per worker, so about 50 s on 2 cores."""
MAP_TIMEOUT = 6 * TASKS_PER_WORKER * TASK_SECONDS
"""Seconds after which a 200-worker map counts as stuck and the benchmark stops."""
MILLION = 1_000_000
MILLION_WORKERS = 2
MILLION_RUNS = 3
MILLION_TIMEOUT = 120.0
"""Seconds one 1M-task map may take (about 1 s here) before its process is killed."""
TARGETS = {"efficiency": 95.0, "peak RSS": 300.0}
LABEL = 38


def worker_memory(pids: list[int]) -> float:
    """Mean MB of proportional set size (PSS: shared pages divided among their users) of a
    worker and the processes it started: what each worker really costs the machine."""
    kilobytes = 0
    for pid in family(pids):
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        kilobytes += next(int(line.split()[1]) for line in rollup if line.startswith("Pss:"))
    return kilobytes / 1024 / len(pids)


def sleep_map(manager: rhc.Manager, count: int) -> tuple[float, float]:
    """One map of `count` sleeping tasks: its wall seconds and the seconds its tasks slept."""
    started = time.perf_counter()
    job = manager.submit(functools.partial(tasks.sleep, seconds=TASK_SECONDS), range(count))
    results = job.results(timeout=MAP_TIMEOUT)
    seconds = time.perf_counter() - started
    if [x for x, _ in results] != list(range(count)):
        raise RuntimeError(f"a map of {count} sleeping tasks returned wrong results")
    return seconds, sum(lasted for _, lasted in results)


def measure_efficiency(directory: Path) -> dict[str, object]:
    """Start 200 workers, then time maps on them; stop them whatever happens."""
    cluster = LocalCluster(directory, workers=WORKERS, worker_options=("--preload", "tasks"))
    started = time.perf_counter()
    try:
        cluster.start(timeout=START_TIMEOUT)
        startup = time.perf_counter() - started
        memory = worker_memory([process.pid for process in cluster.workers])
        with rhc.Manager(**read_config_file(cluster.config_file)) as manager:
            sleep_map(manager, 2 * WORKERS)  # every worker loads the function; speed learnt
            maps = [sleep_map(manager, WORKERS * TASKS_PER_WORKER) for _ in range(REPEATS)]
    finally:
        stopping = time.perf_counter()
        cluster.stop()
    return {
        "startup_seconds": startup,
        "stop_seconds": time.perf_counter() - stopping,
        "worker_pss_mb": memory,
        "map_seconds": [seconds for seconds, _ in maps],
        "busy_seconds": [busy for _, busy in maps],
    }


class _Arguments:
    """range(n) that notes when its last item was taken, i.e. when the manager had every task
    in hand (it takes arguments only as its window of batches in flight allows). The note
    costs nothing per item: chain() runs in C."""

    def __init__(self, count: int) -> None:
        self._count = count
        self.exhausted: float | None = None

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[int]:
        return itertools.chain(range(self._count), self._stamp())

    def _stamp(self) -> Iterator[int]:
        self.exhausted = time.perf_counter()
        yield from ()


def _status_mb(field: str) -> float:
    lines = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in lines if line.startswith(f"{field}:")) / 1024


def million_map(config_file: Path) -> dict[str, float]:
    """Runs in a fresh process: the 1M-task map as a notebook would run it, with its memory."""
    arguments = _Arguments(MILLION)
    with rhc.Manager(**read_config_file(config_file)) as manager:
        before = _status_mb("VmRSS")
        started = time.perf_counter()
        results = manager.remote_map(tasks.noop, arguments, progress=False)
        seconds = time.perf_counter() - started
        peak = _status_mb("VmHWM")
    if results != list(range(MILLION)):
        raise RuntimeError("the 1M-task map returned wrong results")
    return {
        "rss_before_mb": before,
        "peak_rss_mb": peak,
        "seconds": seconds,
        "sending_seconds": arguments.exhausted - started,
    }


def measure_million(directory: Path) -> list[dict[str, float]]:
    """The 1M-task map, each run in a new process, on one cluster of 2 workers."""
    cluster = LocalCluster(directory, workers=MILLION_WORKERS)
    try:
        cluster.start()
        runs = []
        for _ in range(MILLION_RUNS):
            # Pool's exit terminates its process, so a stuck map ends with the timeout.
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                runs.append(
                    pool.apply_async(million_map, (cluster.config_file,)).get(MILLION_TIMEOUT)
                )
        return runs
    finally:
        cluster.stop()


def summarize(efficiency: dict, million: list[dict], runtime: float) -> dict[str, object]:
    tasks_per_map = WORKERS * TASKS_PER_WORKER
    median = statistics.median(efficiency["map_seconds"])
    maps = list(zip(efficiency["map_seconds"], efficiency["busy_seconds"], strict=True))
    measured = [100 * busy / (seconds * WORKERS) for seconds, busy in maps]
    figures = {
        "efficiency": statistics.median(measured),
        "nominal efficiency": 100 * tasks_per_map * TASK_SECONDS / (median * WORKERS),
        "wall per map": median,
        "ideal wall per map": tasks_per_map * TASK_SECONDS / WORKERS,
        "idle per worker per map": statistics.median(
            seconds - busy / WORKERS for seconds, busy in maps
        ),
        "mean task duration": 1e3 * sum(efficiency["busy_seconds"]) / (tasks_per_map * REPEATS),
        "worker start-up": efficiency["startup_seconds"],
        "worker stop": efficiency["stop_seconds"],
        "memory per worker": efficiency["worker_pss_mb"],
        "peak RSS": max(run["peak_rss_mb"] for run in million),
        "RSS before the map": statistics.median(run["rss_before_mb"] for run in million),
        "submission rate": statistics.median(MILLION / run["sending_seconds"] for run in million),
        "completion rate": statistics.median(MILLION / run["seconds"] for run in million),
        "1M-task map wall": statistics.median(run["seconds"] for run in million),
    }
    return {
        "command": shlex.join([sys.executable, *sys.argv]),
        "machine": machine(),
        "method": {
            "workers": WORKERS,
            "task_seconds": TASK_SECONDS,
            "tasks_per_map": tasks_per_map,
            "repeats": REPEATS,
            "million_workers": MILLION_WORKERS,
            "million_runs": MILLION_RUNS,
        },
        "figures": figures,
        "targets": {
            "efficiency": {
                "target": f">= {TARGETS['efficiency']:.0f} %",
                "met": figures["efficiency"] >= TARGETS["efficiency"],
            },
            "peak RSS": {
                "target": f"<= {TARGETS['peak RSS']:.0f} MB",
                "met": figures["peak RSS"] <= TARGETS["peak RSS"],
            },
        },
        "efficiency_runs": {"percent": measured, **efficiency},
        "million_runs": million,
        "runtime_seconds": runtime,
    }


UNITS = {
    "efficiency": ("%", ".1f"),
    "nominal efficiency": ("%", ".1f"),
    "wall per map": ("s", ".2f"),
    "ideal wall per map": ("s", ".2f"),
    "idle per worker per map": ("s", ".3f"),
    "mean task duration": ("ms", ".2f"),
    "worker start-up": ("s", ".1f"),
    "worker stop": ("s", ".1f"),
    "memory per worker": ("MB PSS", ".1f"),
    "peak RSS": ("MB", ".1f"),
    "RSS before the map": ("MB", ".1f"),
    "submission rate": ("tasks/s", ",.0f"),
    "completion rate": ("tasks/s", ",.0f"),
    "1M-task map wall": ("s", ".2f"),
}


def report(summary: dict) -> str:
    method = (
        f"{WORKERS} workers, maps of {WORKERS * TASKS_PER_WORKER} tasks of {TASK_SECONDS} s "
        f"(medians of {REPEATS}); a {MILLION:,}-task map on {MILLION_WORKERS} workers in a fresh "
        f"process ({MILLION_RUNS} runs: largest peak, median rates)"
    )
    return figure_table(summary, method, UNITS, LABEL)


def main() -> None:
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so every process started is stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    # The workers import tasks.py by name, from this directory.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), os.getenv("PYTHONPATH")]))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rhc-scale-") as scratch:
        print("measuring the 1M-task map ...", file=sys.stderr, flush=True)
        million = measure_million(Path(scratch) / "million")
        print(f"starting {WORKERS} workers ...", file=sys.stderr, flush=True)
        efficiency = measure_efficiency(Path(scratch) / "efficiency")
    summary = summarize(efficiency, million, time.perf_counter() - started)
    publish("scale", summary, report(summary))


if __name__ == "__main__":
    main()
