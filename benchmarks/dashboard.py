"""The dashboard benchmark: what watching a large cluster costs, against issue 13 (must-hold 3).

Four cases, each on a redis-server of its own with rhc's ACL users: one namespace with W
registered workers and a job of T tasks queued, W in (20, 200) and T in (10,000, 1,000,000).
In each:

  latency    `rhc dashboard` (a process of its own, reading Redis with the monitor user, as
             people run it) asked for /api/overview and /metrics 200 times each, alternately, a
             request every 25 ms (10 s, so requests also meet the snapshot refresh of every
             second), with the token as `Authorization: Bearer` on one kept-alive connection:
             p50 and p95 of each           target (200 workers, 1M tasks): p95 <= 200 ms for both
  commands   what one refresh (one snapshot) costs in Redis: Snapshot.commands, and the commands
             Redis received from the reading connection over 20 snapshots (seen with MONITOR, by
             name): bounded, it grows with the workers and not with the tasks; no KEYS, no SCAN
  read       the wall time of one snapshot read by this process (median of those 20)

The workers: 200 `rhc worker` processes do not fit on 2 cores beside what is measured, so a
helper process writes what each would: its WorkerInfo in the `workers` hash and its
`worker:<name>:alive` key with the heartbeat TTL, rewritten every heartbeat interval (one
pipeline for all), with the workers' Redis user. The same process holds the Manager that
submitted Manager.submit(tasks.noop, range(T)). No worker takes the tasks, so the job stays as
a queued job looks in Redis: the window of batches its sender keeps ahead (2 per live worker, +2)
waiting in the task stream, the rest not yet cut from the arguments. The failures and departures
streams are filled to their caps beforehand, with tracebacks of a realistic length, as workers
write them: what a namespace holds after a while, and what the overview carries.

Run `python benchmarks/dashboard.py` (or `make bench-dashboard`): it prints a table and writes
benchmarks/results/dashboard.json. It stops every process it starts, also on error, Ctrl-C or
SIGTERM. Nothing is asserted on time.
"""

from __future__ import annotations

import collections
import http.client
import json
import math
import multiprocessing
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis
import tasks
from machine import header, machine, publish

import rhc
from rhc.config import read_config_file, resolve_settings, write_config_file
from rhc.dashboard.snapshot import SnapshotReader
from rhc.local import RedisServer
from rhc.local.cluster import stop_workers
from rhc.local.ports import free_port
from rhc.local.setup import client_config, write_namespace_configs
from rhc.wire.activity import DEPARTURES_KEPT, FAILURES_KEPT, Departure, FailureNotice
from rhc.wire.connection import connect
from rhc.wire.keys import Keys
from rhc.wire.protocol import WorkerInfo, compat_tag, versions
from rhc.worker.trust import Trust

HERE = Path(__file__).resolve().parent
NAMESPACE = "bench"
CASES = ((20, 10_000), (20, 1_000_000), (200, 10_000), (200, 1_000_000))
"""(registered workers, tasks of the queued job)."""
TARGET_CASE = (200, 1_000_000)
TARGET_P95_MS = 200.0
PATHS = ("/api/overview", "/metrics")
REQUESTS = 200
"""Requests per path and case."""
PACE = 0.025
"""Seconds between the starts of two requests (of either path)."""
READS = 20
"""Snapshots read by this process per case, counted and timed."""
START_TIMEOUT = 60.0
"""Seconds for the helper to queue the job's window, or for the dashboard to show it."""
LABEL = 44

_TRACEBACK = "".join(
    f'  File "/srv/analysis/selection_{i}.py", line {40 + i}, in select_{i}\n'
    f"    mask = events.Muon.pt[events.Muon.pt > cut_{i}] & (events.Muon.charge != 0)\n"
    for i in range(12)
)
"""About 1.6 KB: a remote traceback of twelve frames, as a failing analysis leaves one."""


# -- the cluster: registered workers and a queued job, in a helper process -----------------


def _worker_infos(count: int, trust: Trust) -> list[WorkerInfo]:
    """What `count` workers on 8-slot condor nodes say of themselves, as real ones fill it."""
    advertised = versions()
    started = time.time() - 3600
    return [
        WorkerInfo(
            name=f"bench-{i:03d}",
            host=f"node{i // 8:03d}.bench.invalid",
            pid=20_000 + i,
            compat=compat_tag(advertised),
            versions=advertised,
            started=started,
            condor_id=f"{4000 + i // 8}.{i % 8}",
            state="idle",
            taken=1_000 + i,
            done=990 + i,
            failed=10,
            tasks_per_second=0.0,
            cpu_percent=0.5,
            rss_mb=180.0,
            task_keys=trust.key_ids,
            secret_id=trust.secret_id,
            last_error="",
            extra={"task_pid": str(30_000 + i)},
        )
        for i in range(count)
    ]


def _beat(client: redis.Redis, keys: Keys, infos: list[WorkerInfo], ttl: float) -> None:
    """Every worker's heartbeat, as Heartbeat.beat() writes it, in one pipeline."""
    now = time.time()
    with client.pipeline(transaction=False) as pipe:
        for info in infos:
            info.heartbeat = now
            pipe.set(keys.alive(info.name), now, px=int(ttl * 1000))
            pipe.hset(keys.workers, info.name, info.encode())
        pipe.execute()


def _fill_logs(client: redis.Redis, keys: Keys, infos: list[WorkerInfo]) -> None:
    """The failures and departures streams at their caps, as workers add to them."""
    now = time.time()
    with client.pipeline(transaction=False) as pipe:
        for i in range(FAILURES_KEPT):
            notice = FailureNotice(
                job="0123456789abcdef",
                task=str(i),
                worker=infos[i % len(infos)].name,
                kind="raised",
                error="ValueError",
                message=f"cut_{i % 12} is not a number: 'nan'",
                traceback=_TRACEBACK,
                argument=f"WorkItem(dataset='DYJetsToLL', file='root://eos/file_{i}.root', "
                f"entrystart={100_000 * i}, entrystop={100_000 * (i + 1)})",
                time=now - FAILURES_KEPT + i,
            )
            pipe.xadd(keys.failures, notice.to_fields(), maxlen=FAILURES_KEPT, approximate=True)
        for i in range(DEPARTURES_KEPT):
            info = infos[i % len(infos)]
            departure = Departure(
                worker=f"gone-{i:03d}",
                host=info.host,
                condor_id=f"{3000 + i // 8}.{i % 8}",
                reason="SIGTERM (evicted or removed by condor)",
                last_error="",
                left="1",
                time=now - DEPARTURES_KEPT + i,
            )
            pipe.xadd(
                keys.departures, departure.to_fields(), maxlen=DEPARTURES_KEPT, approximate=True
            )
        pipe.execute()


def hold_cluster(
    notebook_file: Path,
    worker_file: Path,
    workers: int,
    task_count: int,
    stop: multiprocessing.synchronize.Event,
) -> None:
    """In a process of its own: register the workers, submit the job, and keep the workers'
    heartbeats going until `stop`."""
    settings = resolve_settings(config_file=worker_file)
    client = connect(settings, role="worker")
    keys = Keys(settings.namespace)
    infos = _worker_infos(workers, Trust(settings))
    _fill_logs(client, keys, infos)
    _beat(client, keys, infos, settings.heartbeat_ttl)
    with rhc.Manager(**read_config_file(notebook_file)) as manager:
        job = manager.submit(tasks.noop, range(task_count))
        try:
            while not stop.wait(settings.heartbeat_interval):
                _beat(client, keys, infos, settings.heartbeat_ttl)
        finally:
            job.cancel()  # its thread ends before the manager's connection closes
    client.close()


# -- the dashboard, as people start it --------------------------------------------------------


class _Dashboard:
    """`rhc dashboard` with the monitor's config on a free port, in a process of its own."""

    def __init__(self, monitor_file: Path, directory: Path) -> None:
        self.port = free_port()
        token_file = directory / "dashboard_token"
        command = [sys.executable, "-m", "rhc", "dashboard", "--port", str(self.port)]
        command += ["--token-file", str(token_file), "--namespace", NAMESPACE]
        path = os.pathsep.join(filter(None, [str(HERE.parent), os.getenv("PYTHONPATH")]))
        self.log_file = directory / "dashboard.log"
        with self.log_file.open("w") as log:
            # cwd: `python -m` puts the working directory first on sys.path; nothing there
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=directory,
                env={**os.environ, "PYTHONPATH": path, "RHC_CONFIG_FILE": str(monitor_file)},
                start_new_session=True,
            )
        _wait(self._answers, f"the dashboard to answer (log: {self.log_file})")
        self.token = token_file.read_text().strip()
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"the dashboard exited:\n{self.log_file.read_text()}")
        probe = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
        try:
            probe.request("GET", "/health")
            return probe.getresponse().status == 200
        except OSError:
            return False
        finally:
            probe.close()

    def get(self, path: str) -> bytes:
        self.connection.request("GET", path, headers={"Authorization": f"Bearer {self.token}"})
        response = self.connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
        return body

    def shows(self, workers: int) -> bool:
        """Its latest snapshot holds every worker and the queued batches."""
        namespaces = json.loads(self.get("/api/overview"))["namespaces"]
        if not namespaces:  # no snapshot read yet
            return False
        (namespace,) = namespaces
        waiting = sum(queue["waiting"] for queue in namespace["queues"])
        return len(namespace["workers"]) == workers and waiting > 0

    def stop(self) -> None:
        self.connection.close()
        stop_workers([self.process], timeout=10)


def _wait(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up after {START_TIMEOUT:.0f} s waiting for {what}")
        time.sleep(0.05)


# -- what is measured -----------------------------------------------------------------------


def latencies(dashboard: _Dashboard) -> dict[str, dict[str, object]]:
    """Seconds of each request, per path, paced; and the size of the last answer."""
    seconds: dict[str, list[float]] = {path: [] for path in PATHS}
    sizes = {}
    due = time.perf_counter()
    for _ in range(REQUESTS):
        for path in PATHS:
            due += PACE
            time.sleep(max(0.0, due - time.perf_counter()))
            started = time.perf_counter()
            sizes[path] = len(dashboard.get(path))
            seconds[path].append(time.perf_counter() - started)
    return {path: {"seconds": seconds[path], "bytes": sizes[path]} for path in PATHS}


def snapshot_costs(monitor_file: Path, server: RedisServer) -> dict[str, object]:
    """READS snapshots read here with the dashboard's own reader and user: their commands as
    counted (Snapshot.commands) and as Redis received them from this connection (MONITOR,
    between two marks), and their wall times."""
    settings = resolve_settings(config_file=monitor_file, require_secret=False)
    client = connect(settings, role="dashboard")
    reader = SnapshotReader(client, [settings.namespace])
    reader.read()  # the connection is open, and stays the only one (no threads here)
    admin = server.client()
    lines: list[dict] = []
    start, end = "rhc-bench-start", "rhc-bench-end"

    def listen(monitor: redis.client.Monitor) -> None:
        while True:
            command = monitor.next_command()
            lines.append(command)
            if command["command"] == f"PING {end}":
                return

    counted, seconds = [], []
    with admin.monitor() as monitor:
        listener = threading.Thread(target=listen, args=(monitor,), daemon=True)
        listener.start()
        client.execute_command("PING", start)
        for _ in range(READS):
            started = time.perf_counter()
            snapshot = reader.read()
            seconds.append(time.perf_counter() - started)
            counted.append(snapshot.commands)
        client.execute_command("PING", end)
        listener.join(30)
    client.close()
    admin.close()
    marks = [line for line in lines if line["command"] in (f"PING {start}", f"PING {end}")]
    if len(marks) != 2 or listener.is_alive():
        raise RuntimeError("MONITOR did not show both marks of the snapshot reads")
    source = (marks[0]["client_address"], marks[0]["client_port"])
    first, last = lines.index(marks[0]), lines.index(marks[1])
    seen = collections.Counter(
        _command_name(line["command"])
        for line in lines[first + 1 : last]
        if (line["client_address"], line["client_port"]) == source
    )
    return {
        "counted": counted,
        "seen_per_read": {name: count / READS for name, count in sorted(seen.items())},
        "read_seconds": seconds,
    }


def _command_name(command: str) -> str:
    """A command's name as INFO commandstats has it: `XINFO GROUPS key` is xinfo|groups."""
    words = command.split()
    name = words[0].lower()
    if name in ("xinfo", "client", "config", "object") and len(words) > 1:
        return f"{name}|{words[1].lower()}"
    return name


def measure_case(directory: Path, workers: int, task_count: int) -> dict[str, object]:
    """One case, on a Redis of its own; every process it starts is stopped whatever happens."""
    directory.mkdir(parents=True)
    server = RedisServer(directory / "redis").start()
    spawn = multiprocessing.get_context("spawn")
    stop = spawn.Event()
    helper, dashboard = None, None
    try:
        notebook_file, worker_file = directory / "rhc.toml", directory / "worker.toml"
        write_namespace_configs(
            server.url,
            server.add_namespace(NAMESPACE),
            notebook_file=notebook_file,
            worker_file=worker_file,
            namespace=NAMESPACE,
        )
        monitor_file = write_config_file(
            directory / "monitor.toml",
            client_config(server.url, server.monitor, namespace=NAMESPACE),
        )
        helper = spawn.Process(
            target=hold_cluster, args=(notebook_file, worker_file, workers, task_count, stop)
        )
        helper.start()
        admin = server.client()
        stream = Keys(NAMESPACE).task_stream(compat_tag(versions()))
        window = 2 * workers + 2

        def queued() -> bool:
            if not helper.is_alive():
                raise RuntimeError(f"the helper holding the cluster exited ({helper.exitcode})")
            return admin.xlen(stream) >= window

        _wait(queued, f"{window} batches queued")
        dashboard = _Dashboard(monitor_file, directory)
        _wait(lambda: dashboard.shows(workers), f"the dashboard to show {workers} workers")
        requests = latencies(dashboard)
        costs = snapshot_costs(monitor_file, server)
        state = {
            "registered": admin.hlen(Keys(NAMESPACE).workers),
            "batches_queued": admin.xlen(stream),
            "redis_memory_bytes": admin.info("memory")["used_memory"],
        }
        admin.close()
        return {"workers": workers, "tasks": task_count, **state, **costs, "requests": requests}
    finally:
        if dashboard is not None:
            dashboard.stop()
        if helper is not None:
            stop.set()
            helper.join(30)
            if helper.is_alive():
                helper.terminate()
                helper.join()
        server.stop()


# -- the report -----------------------------------------------------------------------------


def _percentile(seconds: list[float], percent: int) -> float:
    return 1e3 * statistics.quantiles(seconds, n=100, method="inclusive")[percent - 1]


def figures_of(case: dict) -> dict[str, float]:
    figures = {
        "batches queued (task stream length)": case["batches_queued"],
        "commands per refresh (Snapshot.commands)": statistics.median(case["counted"]),
        "commands per refresh (Redis received)": sum(case["seen_per_read"].values()),
        "snapshot read (ms, median)": 1e3 * statistics.median(case["read_seconds"]),
    }
    for path, measured in case["requests"].items():
        figures[f"{path} p50 (ms)"] = _percentile(measured["seconds"], 50)
        figures[f"{path} p95 (ms)"] = _percentile(measured["seconds"], 95)
        figures[f"{path} max (ms)"] = 1e3 * max(measured["seconds"])
        figures[f"{path} answer (KB)"] = measured["bytes"] / 1024
    figures["Redis memory (MB)"] = case["redis_memory_bytes"] / 2**20
    return figures


def _name(workers: int, task_count: int) -> str:
    return f"{workers} w, {task_count // 1000:,}k t" if task_count < 10**6 else f"{workers} w, 1M t"


def summarize(cases: list[dict], runtime: float) -> dict[str, object]:
    figures = {_name(c["workers"], c["tasks"]): figures_of(c) for c in cases}
    by_case = {(c["workers"], c["tasks"]): c for c in cases}
    target = figures[_name(*TARGET_CASE)]
    commands = {key: statistics.median(c["counted"]) for key, c in by_case.items()}
    task_counts = sorted({t for _, t in by_case})
    worker_counts = sorted({w for w, _ in by_case})
    forbidden = {"keys", "scan", "hscan", "sscan", "zscan"}
    seen = set().union(*(c["seen_per_read"] for c in cases))
    return {
        "command": shlex.join([sys.executable, *sys.argv]),
        "machine": machine(),
        "method": {
            "cases": CASES,
            "requests_per_path": REQUESTS,
            "pace_seconds": PACE,
            "snapshot_reads": READS,
        },
        "figures": figures,
        "targets": {
            f"{path} p95": {
                "target": f"<= {TARGET_P95_MS:.0f} ms",
                "met": target[f"{path} p95 (ms)"] <= TARGET_P95_MS,
            }
            for path in PATHS
        },
        "bounded": {
            "same commands whatever the tasks": all(
                len({commands[w, t] for t in task_counts}) == 1 for w in worker_counts
            ),
            "counted = received by Redis": all(
                math.isclose(statistics.median(c["counted"]), sum(c["seen_per_read"].values()))
                for c in cases
            ),
            "no KEYS or SCAN": not (seen & forbidden),
        },
        "commands_by_name": {_name(c["workers"], c["tasks"]): c["seen_per_read"] for c in cases},
        "cases": cases,
        "runtime_seconds": runtime,
    }


_FORMATS = {"(ms": ".1f", "(KB)": ".1f", "(MB)": ".1f"}


def report(summary: dict) -> str:
    figures = summary["figures"]
    names = list(figures)
    lines = [
        *header(summary),
        f"method: per case a Redis of its own, W registered workers (heartbeats written every "
        f"second) and Manager.submit(noop, range(T)) queued; {REQUESTS} requests per path, one "
        f"every {1e3 * PACE:.0f} ms alternately, with the bearer token; {READS} snapshots read "
        "here, their commands seen with MONITOR",
        "",
        f"{'figure':<{LABEL}}" + "".join(f"{n:>15}" for n in names),
    ]
    for figure in figures[names[0]]:
        form = next((f for unit, f in _FORMATS.items() if unit in figure), ",.0f")
        values = "".join(f"{figures[n][figure]:>15{form}}" for n in names)
        lines.append(f"{figure:<{LABEL}}{values}")
    lines += ["", f"targets ({_name(*TARGET_CASE)}):"]
    for name, target in summary["targets"].items():
        verdict = "met" if target["met"] else "MISSED"
        lines.append(f"  {name:<{LABEL - 2}}{target['target']:<15}{verdict}")
    lines.append("bounded refresh:")
    for name, holds in summary["bounded"].items():
        lines.append(f"  {name:<{LABEL - 2}}{'yes' if holds else 'NO'}")
    lines.append(f"commands per refresh by name ({_name(*TARGET_CASE)}):")
    per_name = summary["commands_by_name"][_name(*TARGET_CASE)]
    lines.append("  " + ", ".join(f"{name} {count:g}" for name, count in per_name.items()))
    lines.append(f"\nruntime: {summary['runtime_seconds']:.0f} s")
    return "\n".join(lines)


def main() -> None:
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so every process started is stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    started = time.perf_counter()
    cases = []
    with tempfile.TemporaryDirectory(prefix="rhc-dashboard-") as scratch:
        for index, (workers, task_count) in enumerate(CASES):
            print(f"measuring {_name(workers, task_count)} ...", file=sys.stderr, flush=True)
            cases.append(measure_case(Path(scratch) / f"case{index}", workers, task_count))
    summary = summarize(cases, time.perf_counter() - started)
    publish("dashboard", summary, report(summary))


if __name__ == "__main__":
    main()
