"""Small maps, A/B: the latency of a 10-task no-op map and the throughput of 10,000 no-op tasks,
for the rhc that PYTHONPATH names, so that two checkouts can be compared run by run.

    for i in 1 2 3; do for tree in ../before .; do
      PYTHONPATH=$tree python benchmarks/small_maps.py; done; done

Each run starts a LocalCluster of 2 workers, warms it with 20 maps, then times 300 small maps
and 10 large ones, and prints one JSON line (which rhc, medians). Interleave runs: single runs
on a shared machine scatter by ±20 %.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import rhc
from rhc.config import read_config_file
from rhc.local import LocalCluster

SMALL, LARGE = list(range(10)), list(range(10_000))


def noop(x: int) -> int:
    return x


def timed(run: object, items: list, repeats: int) -> float:
    """The median seconds of repeats calls of run(items)."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        run(items)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="rhc-small-maps-") as scratch:
        cluster = LocalCluster(Path(scratch), workers=2).start()
        try:
            with rhc.Manager(**read_config_file(cluster.config_file)) as manager:

                def run(items: list) -> list:
                    return manager.remote_map(noop, items, progress=False)

                timed(run, SMALL, 20)
                latency = timed(run, SMALL, 300)
                throughput = len(LARGE) / timed(run, LARGE, 10)
        finally:
            cluster.stop()
    figures = {"rhc": rhc.__file__, "latency_ms": 1e3 * latency, "throughput": throughput}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
