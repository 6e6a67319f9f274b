# SPDX-License-Identifier: BSD-3-Clause
"""The remote-reading benchmark: the bytes rhc moves reading files where they live, and how fast
it analyses them there, over HTTP (nginx) and root:// (a real XRootD server) against the local disk.

Both servers run on loopback and serve the same files, each behind a rhc.local.CountingRelay that
counts every byte the server sends (protocol and headers included), so that both protocols are
counted alike. The analysis is rhc.nanoaod.Dimuon in chunks of 100,000 events on 2 `rhc worker`
processes of a fresh cluster (its own redis-server); each run is rhc.nanoaod.run, the notebook's
planning reads (opening the file to count its entries) included.

  1. bytes moved on a wide file: 300,000 generated events with 500 float branches that no one
     reads beside the physics ones (generate_physics(extra_branches=500), ~580 MB), of which the
     analysis reads 9 (the muons' 7, MET_pt, genWeight), as an analysis reads a few of a NanoAOD
     file's ~1,600 branches. Per protocol and round:
       direct      one process reading those 9 branches with plain uproot, no cache:
                   rhc.nanoaod.dimuon.direct on the URL, i.e. uproot.open(url)["Events"].arrays(
                   [*BRANCHES, "genWeight"]) through uproot's own fsspec source: the baseline
       rhc cold    2 fresh workers with empty disk caches, first run
       rhc warm    the second run on the same workers
     once with the workers sharing one --cache-dir (two workers on one node), once with a
     --cache-dir each (two nodes). Their memory caches are off (--cache-bytes 1), so the warm
     run reads from the disk range cache (which outlives a worker), not from decompressed arrays.
     Diagnostics: what the notebook's planning moves (rhc.nanoaod.make_chunks alone), and the
     direct read through rhc's CachedSource with an empty range cache.
     Targets (issue 14, must-hold 4): cold <= 1.3x direct and warm <= 5 % of direct, for both
     protocols, judged on the worst round.
  2. speed: a 2,000,000-event generate_physics file (no extra branches) over the local path,
     HTTP and root://; per system and round, a fresh cluster whose 2 workers share an empty
     --cache-dir runs the analysis cold (first run) and warm (second run: the memory caches hold
     the chunks); then, as a diagnostic, a fresh cluster without memory caches runs it twice, so
     its second run reads from the disk range cache (remote) or the page cache (local).
     events/s, medians of 3 rounds, the systems' order rotated from round to round; ratios to
     the local cold run. No target: the figures for issue 14, must-hold 6.

Every run's histogram must equal, bin for bin, the one of rhc.nanoaod.dimuon.direct on the local
file, or the benchmark stops before reporting. Both servers read the files from the OS page
cache, as the local runs do: "cold" is about rhc's processes and caches and the network path.
The machine's load is recorded after every round.

Run `python benchmarks/remote.py` (or `make bench-remote`): it prints a table and writes
benchmarks/results/remote.json.
"""

from __future__ import annotations

import importlib.metadata
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from harness import CHUNKSIZE, WORKERS, Checker, median, rhc_cluster, run_rhc, timed, verdict
from machine import machine, publish

import rhc
from rhc.local import Served
from rhc.nanoaod import RunResult, make_chunks
from rhc.nanoaod.dimuon import BRANCHES, direct
from rhc.nanoaod.generate import generate_physics
from rhc.nanoaod.rangecache import RangeCache
from rhc.nanoaod.source import RANGE_CACHE_OPTION, CachedSource

WIDE_EVENTS, EXTRA_BRANCHES, WIDE_SEED = 300_000, 500, 4
EVENTS, SEED = 2_000_000, 1
BYTES_ROUNDS = 3
"""Rounds of part 1: the bytes barely vary, but where the chunks run (own caches) may."""
ROUNDS = 3
"""Rounds of part 2; every system runs once per round, so a slow spell of this shared machine
hits all of them rather than one."""
COLD_OVER_DIRECT = 1.3
"""A cold run may move at most this many times the bytes of the direct read."""
WARM_OVER_DIRECT = 0.05
"""A warm run may move at most this fraction of the bytes of the direct read."""
NO_MEMORY_CACHE = ("--cache-bytes", "1")
PROTOCOLS = {"http": "HTTP (nginx)", "root": "root:// (XRootD)"}
SYSTEMS = {"local": "local path", **PROTOCOLS}
ARRANGEMENTS = {
    "shared": "one --cache-dir shared by both (one node)",
    "own": "a --cache-dir each (two nodes)",
}
SPEED_RUNS = {
    "cold": "cold: fresh workers, empty caches",
    "warm": "warm: second run, same workers",
    "cold, no memory cache": "cold, memory caches off (diagnostic)",
    "warm from disk": "warm, memory caches off (diagnostic)",
}
MB = 1e6
LABEL = 46


def rotated(items: list[str], index: int) -> list[str]:
    """items, starting at index: each comes first in some round."""
    at = index % len(items)
    return items[at:] + items[:at]


def worker_options(directory: Path, *, shared: bool, memory: bool) -> Callable[[str], list[str]]:
    """Options of each worker: its disk cache in directory (one for both, or one each), its
    memory cache on or off."""

    def options(name: str) -> list[str]:
        cache = directory / ("node-cache" if shared else f"cache-{name}")
        return ["--cache-dir", str(cache), *(() if memory else NO_MEMORY_CACHE)]

    return options


def drop_caches(directory: Path) -> None:
    """The clusters' disk caches (the 2M-event file's reach ~100 MB each); logs stay."""
    for cache in [*directory.glob("node-cache"), *directory.glob("cache-*")]:
        shutil.rmtree(cache, ignore_errors=True)


class Meter:
    """What reads through one server's relay move: bytes, and (nginx) requests by method."""

    def __init__(self, served: Served | None) -> None:
        self.served = served

    def reading(self) -> tuple[int, Counter[str]]:
        if self.served is None:
            return 0, Counter()
        requests = self.served.server.requests() if self.served.protocol == "http" else Counter()
        return self.served.moved(), requests

    def __call__(self, read: Callable[[], object]) -> tuple[dict, object]:
        """read()'s value, and what it moved."""
        moved, requests = self.reading()
        value = read()
        moved_after, requests_after = self.reading()
        return {"bytes": moved_after - moved, "requests": dict(requests_after - requests)}, value


def rhc_run(
    manager: rhc.Manager, url: str, meter: Meter, check: Checker, what: str
) -> tuple[dict, RunResult]:
    """One analysis run, checked; its seconds, what it moved and where its chunks ran."""
    moved, (seconds, result, delay) = meter(lambda: run_rhc(manager, [url]))
    check(what, result.value, result.events)
    figures = {
        **moved,
        "seconds": seconds,
        "first_chunk_delay": delay,
        "workers_fetched": result.bytes_read,
        "chunk_workers": {r.chunk.entry_start: r.worker for r in result.chunks},
    }
    return figures, result


def load() -> float:
    """The 1-minute load average of this machine (2 cores, shared with other work)."""
    return os.getloadavg()[0]


def measure_bytes(path: Path, servers: dict[str, Served], scratch: Path, check: Checker) -> dict:
    """Part 1: per round and protocol, what the direct read, the planning and rhc's runs move."""
    rounds: dict[str, list[dict]] = {protocol: [] for protocol in servers}
    loads = []
    for index in range(BYTES_ROUNDS):
        print(f"bytes round {index + 1}/{BYTES_ROUNDS} ...", file=sys.stderr, flush=True)
        for protocol in rotated(list(servers), index):
            meter, url = Meter(servers[protocol]), servers[protocol].url(path)
            figures: dict[str, dict] = {}
            figures["direct"], value = meter(lambda url=url: direct([url]))
            check(f"{protocol} direct", value)
            cache = RangeCache(scratch / f"direct-{protocol}-{index}", 2**40)
            figures["direct, CachedSource"], value = meter(
                lambda url=url, cache=cache: direct(
                    [url], handler=CachedSource, **{RANGE_CACHE_OPTION: cache}
                )
            )
            check(f"{protocol} direct through CachedSource", value)
            figures["planning"], _ = meter(
                lambda url=url: make_chunks([url], CHUNKSIZE, branches=BRANCHES)
            )
            for arrangement in ARRANGEMENTS:
                directory = scratch / f"bytes-{index}-{protocol}-{arrangement}"
                options = worker_options(directory, shared=arrangement == "shared", memory=False)
                with rhc_cluster(directory, options) as manager:
                    for run in ("cold", "warm"):
                        figures[f"{arrangement} {run}"], _ = rhc_run(
                            manager, url, meter, check, f"{protocol} {arrangement} {run}"
                        )
                drop_caches(directory)
            rounds[protocol].append(figures)
        loads.append(load())
    return {"rounds": rounds, "loads": loads}


def measure_speed(
    paths: dict[str, str], meters: dict[str, Meter], scratch: Path, check: Checker
) -> dict:
    """Part 2: per round and system, a cold and a warm run on one fresh cluster, then the same
    on a fresh cluster without memory caches."""
    runs = {system: {name: [] for name in SPEED_RUNS} for system in paths}
    loads = []
    for index in range(ROUNDS):
        print(f"speed round {index + 1}/{ROUNDS} ...", file=sys.stderr, flush=True)
        for system in rotated(list(paths), index):
            for memory, names in ((True, list(SPEED_RUNS)[:2]), (False, list(SPEED_RUNS)[2:])):
                directory = scratch / f"speed-{index}-{system}-{'memory' if memory else 'disk'}"
                options = worker_options(directory, shared=True, memory=memory)
                with rhc_cluster(directory, options) as manager:
                    for name in names:
                        figures, _ = rhc_run(
                            manager, paths[system], meters[system], check, f"{system} {name}"
                        )
                        runs[system][name].append(figures)
                drop_caches(directory)
        loads.append(load())
    return {"runs": runs, "loads": loads}


def summarize_bytes(measured: dict, file_bytes: int) -> dict:
    """Medians over rounds per protocol, ratios to the direct read, targets on the worst round."""
    figures, targets = {}, {}
    for protocol, rounds in measured["rounds"].items():
        direct_bytes = [r["direct"]["bytes"] for r in rounds]
        rows = {
            name: {
                "bytes": median([r[name] for r in rounds], "bytes"),
                "over_direct": statistics.median(
                    r[name]["bytes"] / r["direct"]["bytes"] for r in rounds
                ),
                "worst_over_direct": max(r[name]["bytes"] / r["direct"]["bytes"] for r in rounds),
                "requests": rounds[-1][name]["requests"],
                **(
                    {"workers_fetched": median([r[name] for r in rounds], "workers_fetched")}
                    if "workers_fetched" in rounds[0][name]
                    else {}
                ),
            }
            for name in rounds[0]
        }
        rows["direct"]["of_file"] = statistics.median(b / file_bytes for b in direct_bytes)
        figures[protocol] = rows
        for arrangement in ARRANGEMENTS:
            cold, warm = rows[f"{arrangement} cold"], rows[f"{arrangement} warm"]
            targets[f"{protocol} {arrangement} cold"] = {
                "target": f"<= {COLD_OVER_DIRECT:g}x direct",
                "worst": cold["worst_over_direct"],
                "met": cold["worst_over_direct"] <= COLD_OVER_DIRECT,
            }
            targets[f"{protocol} {arrangement} warm"] = {
                "target": f"<= {WARM_OVER_DIRECT:.0%} of direct",
                "worst": warm["worst_over_direct"],
                "met": warm["worst_over_direct"] <= WARM_OVER_DIRECT,
            }
    return {"figures": figures, "targets": targets, "chunks_moved": chunks_moved(measured)}


def chunks_moved(measured: dict) -> dict[str, list[int]]:
    """Per protocol and arrangement, how many chunks the warm run analysed on another worker than
    the cold run did, round by round: with a cache each, those read from the server again."""
    return {
        f"{protocol} {arrangement}": [
            sum(
                r[f"{arrangement} warm"]["chunk_workers"][start] != worker
                for start, worker in r[f"{arrangement} cold"]["chunk_workers"].items()
            )
            for r in rounds
        ]
        for protocol, rounds in measured["rounds"].items()
        for arrangement in ARRANGEMENTS
    }


def summarize_speed(measured: dict) -> dict:
    """Median seconds and events/s per system and run, and their ratio to the local cold run."""
    runs = measured["runs"]
    local_cold = EVENTS / median(runs["local"]["cold"], "seconds")
    return {
        system: {
            name: {
                "seconds": median(figures, "seconds"),
                "events_per_second": EVENTS / median(figures, "seconds"),
                "over_local_cold": EVENTS / median(figures, "seconds") / local_cold,
                "bytes": median(figures, "bytes"),
                "first_chunk_delay": median(figures, "first_chunk_delay"),
            }
            for name, figures in by_run.items()
        }
        for system, by_run in runs.items()
    }


def methods(requests: dict[str, int]) -> str:
    """HTTP requests by method, as "12 GET + 2 HEAD"."""
    return " + ".join(f"{count} {method}" for method, count in sorted(requests.items()))


def server_versions() -> dict[str, str]:
    """nginx's and xrootd's versions, as they print them."""
    found = {}
    for name, flag in (("nginx", "-v"), ("xrootd", "-v")):
        done = subprocess.run([name, flag], capture_output=True, text=True, check=False)
        found[name] = (done.stdout + done.stderr).strip().rsplit("/", 1)[-1]
    return found


def summarize(bytes_part: dict, speed_part: dict, generation: dict, checked: int) -> dict:
    """Everything the table shows and remote.json keeps, every run's raw figures included."""
    versions = {
        name: importlib.metadata.version(name)
        for name in ("uproot", "awkward", "fsspec", "fsspec-xrootd", "xrootd")
    }
    bytes_summary = summarize_bytes(bytes_part, generation["wide"]["bytes"])
    loads = bytes_part["loads"] + speed_part["loads"]
    return {
        "command": shlex.join([sys.executable, *sys.argv]),
        "machine": machine(**versions, **{f"{k} server": v for k, v in server_versions().items()}),
        "method": {
            "wide_events": WIDE_EVENTS,
            "extra_branches": EXTRA_BRANCHES,
            "events": EVENTS,
            "chunksize": CHUNKSIZE,
            "workers": WORKERS,
            "bytes_rounds": BYTES_ROUNDS,
            "rounds": ROUNDS,
            "files": generation,
            "results_checked_against_direct": checked,
            "load_1min": {"start": generation["load"], "min": min(loads), "max": max(loads)},
        },
        "bytes": bytes_summary,
        "speed": summarize_speed(speed_part),
        "targets": bytes_summary["targets"],
        "runs": {"bytes": bytes_part, "speed": speed_part},
    }


def report(summary: dict) -> str:
    """The printed table: how it was measured, the bytes of part 1, the speeds of part 2."""
    method, host = summary["method"], summary["machine"]
    files, loads = method["files"], method["load_1min"]
    wide_mb = files["wide"]["bytes"] / MB
    lines = [
        f"command: {summary['command']}",
        f"machine: {host['cores']} cores ({host['cpu']}), Python {host['python']}, "
        f"{host['platform']}; rhc {host['rhc']}, uproot {host['uproot']}, awkward "
        f"{host['awkward']}, fsspec {host['fsspec']}, fsspec-xrootd {host['fsspec-xrootd']}, "
        f"xrootd {host['xrootd']} (server {host['xrootd server']}), nginx {host['nginx server']}",
        f"load (1-min average, shared machine): {loads['start']:.1f} at the start, "
        f"{loads['min']:.1f} to {loads['max']:.1f} after the rounds",
        f"checked: all {method['results_checked_against_direct']} runs' histograms equal direct() "
        "on the local file bin for bin",
        "",
        f"1. bytes moved: wide file, {method['wide_events']:,} events, {method['extra_branches']} "
        f"extra branches, {wide_mb:.0f} MB; medians of {method['bytes_rounds']} rounds; "
        "memory caches off",
        f"{'':<{LABEL}}{'MB moved':>10}{'vs direct':>11}{'of file':>9}",
    ]
    figures = summary["bytes"]["figures"]
    for protocol, title in PROTOCOLS.items():
        rows = figures[protocol]
        lines.append(f"{title}:")
        described = {
            "direct": "direct, plain uproot, 1 process (baseline)",
            **{
                f"{arrangement} {run}": f"rhc {run}, {description.split(' (')[0]}"
                for arrangement, description in ARRANGEMENTS.items()
                for run in ("cold", "warm")
            },
            "planning": "diagnostic: the notebook's planning alone",
            "direct, CachedSource": "diagnostic: direct through CachedSource",
        }
        for name, description in described.items():
            row = rows[name]
            lines.append(
                f"  {description:<{LABEL - 2}}{row['bytes'] / MB:>10.2f}"
                f"{row['over_direct']:>10.3f}x{row['bytes'] / files['wide']['bytes']:>9.2%}"
            )
        cold = rows["own cold"]
        opening = cold["bytes"] - rows["planning"]["bytes"] - cold["workers_fetched"]
        lines += [
            f"  rhc cold, a cache each = planning {rows['planning']['bytes'] / MB:.2f} MB + the "
            f"workers opening the tree {opening / MB:.2f} MB",
            f"    + baskets {cold['workers_fetched'] / MB:.2f} MB; rhc warm: the workers fetched "
            f"{rows['own warm']['workers_fetched']:,} bytes, the rest is planning",
        ]
        if protocol == "http":
            counted = ("direct", "planning", "shared cold", "shared warm")
            requests = "; ".join(f"{name} {methods(rows[name]['requests'])}" for name in counted)
            lines.append(f"  nginx requests, last round: {requests}")
    lines.append("")
    for name, target in summary["targets"].items():
        worst = target["worst"]
        shown = f"{worst:.3f}x" if "cold" in name else f"{worst:.2%}"
        lines.append(
            f"target: {name} {target['target']}: worst round {shown}  {verdict(target['met'])}"
        )
    moved = summary["bytes"]["chunks_moved"]
    lines.append(
        "warm chunks analysed on another worker than in the cold run, per round: "
        + "; ".join(f"{name} {counts}" for name, counts in moved.items())
    )
    speed = summary["speed"]
    lines += [
        "",
        f"2. speed: {method['events']:,} events ({files['speed']['bytes'] / MB:.0f} MB), chunks of "
        f"{method['chunksize']:,}, {method['workers']} workers sharing a --cache-dir; medians of "
        f"{method['rounds']} rounds",
        f"{'':<{LABEL}}{'wall s':>8}{'events/s':>12}{'vs local cold':>15}{'MB moved':>10}",
    ]
    for system, title in SYSTEMS.items():
        lines.append(f"{title}:")
        for name, description in SPEED_RUNS.items():
            row = speed[system][name]
            lines.append(
                f"  {description:<{LABEL - 2}}{row['seconds']:>8.2f}"
                f"{row['events_per_second']:>12,.0f}{row['over_local_cold']:>14.2f}x"
                f"{row['bytes'] / MB:>10.2f}"
            )
    return "\n".join(lines)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="rhc-bench-remote-") as name:
        scratch = Path(name)
        data = scratch / "data"
        data.mkdir()
        started_load = load()
        print("generating the files ...", file=sys.stderr, flush=True)
        wide_seconds, wide = timed(
            lambda: generate_physics(
                data / "wide.root", WIDE_EVENTS, seed=WIDE_SEED, extra_branches=EXTRA_BRANCHES
            )
        )
        speed_seconds, path = timed(lambda: generate_physics(data / "dy.root", EVENTS, seed=SEED))
        generation = {
            "wide": {"bytes": wide.stat().st_size, "seconds": wide_seconds},
            "speed": {"bytes": path.stat().st_size, "seconds": speed_seconds},
            "load": started_load,
        }
        wide_check = Checker(direct([str(wide)]), WIDE_EVENTS)
        check = Checker(direct([str(path)]), EVENTS)
        servers: dict[str, Served] = {}
        try:
            for protocol in PROTOCOLS:
                servers[protocol] = Served(protocol, data, scratch / protocol)
            bytes_part = measure_bytes(wide, servers, scratch, wide_check)
            paths = {"local": str(path)} | {p: s.url(path) for p, s in servers.items()}
            meters = {"local": Meter(None)} | {p: Meter(s) for p, s in servers.items()}
            speed_part = measure_speed(paths, meters, scratch, check)
        finally:
            for served in servers.values():
                served.stop()
        checked = wide_check.checked + check.checked
        summary = summarize(bytes_part, speed_part, generation, checked)
    publish("remote", summary, report(summary))


if __name__ == "__main__":
    main()
