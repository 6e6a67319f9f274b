"""The swarm benchmark: 2,000 simulated workers against one Redis, in one run.

A site's pool may give an analyst thousands of slots; what they cost is Redis's and the
notebook's, not the machine's that hosts this run. So the workers here are simulated
(simulated_worker.py: the real protocol through the worker's own parts, batches that take
0.5 s per task without using the CPU), 125 to a process, against a redis-server of their own
with rhc's ACL users. Each simulated worker has a client of its own (a real one holds one
more connection, for the control channel, which they leave out). Figures:

  at rest      Redis memory per idle registered worker (used_memory with the workers, less
               before them, over the workers; and of it, the buffers of its connections:
               mem_clients_normal), Redis CPU and commands/s with every worker idle
               (heartbeats, sweeps, blocking reads) over REST_SECONDS
  efficiency   after an untimed warm-up map, maps of 40,000 tasks of 0.5 s (20 per worker, 10 s
               if no time were lost), each timed from submit to its last result; the median map's
                 tasks * 0.5 s / (wall time * 2,000)                      target: >= 95 %
               and per task: Redis CPU, the notebook's CPU, the simulated workers' CPU; and
               how many live workers were taken for dead during the maps (their beats late on
               a saturated machine: their batches ran again, their late results were dropped)
  reaping      3 more workers, each in a process of its own, are killed (SIGKILL) while each
               holds a batch of a map; the seconds from each one's last heartbeat until it is
               reaped (its registration gone, its batch back in the queue), the slowest
                                                            target: <= heartbeat TTL + 1 interval
               and that map still returns every result exactly.

Run `python benchmarks/swarm.py [WORKERS]` (default 2,000; also `make bench-swarm`, and part of
`make bench`): it prints a table and writes benchmarks/results/swarm.json. It stops every
process it starts, also on error, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import multiprocessing
import os
import shlex
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import tasks
from machine import figure_table, machine, publish
from processes import stat_fields
from simulated_worker import SimulatedWorker

import rhc
from rhc.config import read_config_file, resolve_settings
from rhc.errors import RhcError
from rhc.local import LocalCluster
from rhc.wire.connection import connect
from rhc.wire.keys import Keys
from rhc.wire.protocol import GROUP, compat_tag, versions

WORKERS = 2000
PROCESSES = 16
BEAT_TURNS = 8
"""The turns per heartbeat interval in which a process of simulated workers beats for them."""
TASK_SECONDS = 0.5
TASKS_PER_WORKER = 20
REPEATS = 3
REST_SECONDS = 10.0
START_TIMEOUT = 120.0
MAP_TIMEOUT = 6 * TASKS_PER_WORKER * TASK_SECONDS
"""Seconds after which a map counts as stuck and the benchmark stops."""
VICTIMS = 3
NAMESPACE = "swarm"
EFFICIENCY_TARGET = 95.0
LABEL = 44


def serve_swarm(config_file: Path, names: list[str], ready: multiprocessing.Queue) -> None:
    """A process of simulated workers; its main thread beats and sweeps for all of them, each
    in its turn of the interval, until SIGTERM. Then every worker leaves."""
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    settings = resolve_settings(config_file=config_file)
    workers = [
        SimulatedWorker(settings, connect(settings, role="worker"), name, TASK_SECONDS)
        for name in names
    ]
    interval = settings.heartbeat_interval
    beaten = time.monotonic()
    for started, worker in enumerate(workers, start=1):
        worker.start()
        if time.monotonic() - beaten > interval:
            # Starting them all may outlast a heartbeat's TTL on a busy machine: keep the
            # ones already started alive meanwhile, as their own processes would.
            for alive in workers[:started]:
                alive.heartbeat.beat()
            beaten = time.monotonic()
    ready.put(len(workers))
    # In turns spread over the interval, a few workers each: a sleep per worker would wake
    # this process as often as it beats, which costs this machine as much as the beat.
    turns = [workers[first::BEAT_TURNS] for first in range(BEAT_TURNS)]
    cycle = time.monotonic()
    while not stopping:
        for index, turn in enumerate(turns):
            time.sleep(max(0.0, cycle + interval * index / BEAT_TURNS - time.monotonic()))
            for worker in turn:
                if worker.error is not None:
                    raise worker.error
                worker.heartbeat.beat_and_sweep()
            if stopping:
                break
        cycle += interval
    for worker in workers:
        worker.stop()
    for worker in workers:
        worker.leave()


class Swarm:
    """The simulated workers' processes: started together, stopped by SIGTERM, killed if they
    do not stop."""

    def __init__(self, config_file: Path) -> None:
        self._config_file = config_file
        self._context = multiprocessing.get_context("spawn")
        self._ready = self._context.Queue()
        self.processes: list[multiprocessing.Process] = []

    def start(self, groups: list[list[str]]) -> None:
        for names in groups:
            process = self._context.Process(
                target=serve_swarm, args=(self._config_file, names, self._ready), daemon=True
            )
            process.start()
            self.processes.append(process)
        for _ in groups:
            self._ready.get(timeout=START_TIMEOUT)

    def check(self) -> None:
        """Raise if a process died (a simulated worker failed: its traceback is above)."""
        dead = [process.pid for process in self.processes if not process.is_alive()]
        if dead:
            raise RhcError(f"simulated worker processes {dead} died; see above")

    def cpu_seconds(self) -> float:
        return sum(_process_cpu(process.pid) for process in self.processes)

    def kill(self) -> None:
        """SIGKILL every process: its workers die without a word, as on a lost node."""
        for process in self.processes:
            process.kill()
        for process in self.processes:
            process.join()

    def stop(self) -> None:
        for process in self.processes:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        for process in self.processes:
            process.join(timeout=60)
            if process.is_alive():
                process.kill()
                process.join()


def _process_cpu(pid: int) -> float:
    fields = stat_fields(pid)
    if fields is None:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_figures(admin) -> dict[str, float]:
    """Redis's CPU seconds, commands processed and memory used so far."""
    info = admin.info()
    return {
        "cpu": info["used_cpu_sys"] + info["used_cpu_user"],
        "commands": info["total_commands_processed"],
        "memory": info["used_memory"],
        "connections_memory": info["mem_clients_normal"],
        "clients": info["connected_clients"],
    }


def timed_map(manager: rhc.Manager, swarm: Swarm, admin, count: int) -> dict[str, float]:
    """One map of `count` simulated 0.5 s tasks, with the CPU each side spent on it."""
    departures = Keys(NAMESPACE).departures
    before = redis_figures(admin), time.process_time(), swarm.cpu_seconds()
    departed = admin.xlen(departures)
    started = time.perf_counter()
    results = manager.submit(tasks.noop, range(count)).results(timeout=MAP_TIMEOUT)
    seconds = time.perf_counter() - started
    after = redis_figures(admin), time.process_time(), swarm.cpu_seconds()
    swarm.check()
    if results != list(range(count)):
        raise RhcError(f"a map of {count} simulated tasks returned wrong results")
    return {
        "seconds": seconds,
        "tasks": count,
        "redis_cpu": after[0]["cpu"] - before[0]["cpu"],
        "redis_commands": after[0]["commands"] - before[0]["commands"],
        "notebook_cpu": after[1] - before[1],
        "workers_cpu": after[2] - before[2],
        # none of them died (swarm.check): each one swept was late with its beats, as the
        # processes beating for 125 each fall behind on a saturated machine
        "taken_for_dead": admin.xlen(departures) - departed,
    }


def measure_rest(admin, swarm: Swarm, empty: dict[str, float], interval: float) -> dict[str, float]:
    """With every worker idle: Redis memory per worker, Redis CPU and commands per second."""
    time.sleep(2 * interval)  # every worker has beaten since it started
    before, workers_before = redis_figures(admin), swarm.cpu_seconds()
    time.sleep(REST_SECONDS)
    after = redis_figures(admin)
    return {
        "memory_per_worker": (after["memory"] - empty["memory"]) / WORKERS,
        "connections_memory_per_worker": (after["connections_memory"] - empty["connections_memory"])
        / WORKERS,
        "redis_cpu_percent": 100 * (after["cpu"] - before["cpu"]) / REST_SECONDS,
        "commands_per_second": (after["commands"] - before["commands"]) / REST_SECONDS,
        "workers_cpu_percent": 100 * (swarm.cpu_seconds() - workers_before) / REST_SECONDS,
        "connections_per_worker": (after["clients"] - empty["clients"]) / WORKERS,
    }


def measure_reaping(manager: rhc.Manager, cluster: LocalCluster, admin) -> dict[str, object]:
    """Kill VICTIMS workers while each holds a batch of a map; how long after its last beat
    each is reaped."""
    keys = Keys(NAMESPACE)
    shared = keys.task_stream(compat_tag(versions()))
    victims = Swarm(cluster.worker_config_file)
    names = [f"victim-{index}" for index in range(VICTIMS)]
    try:
        victims.start([[name] for name in names])
        count = TASKS_PER_WORKER * (WORKERS + VICTIMS)  # a batch for every worker
        job = manager.submit(tasks.noop, range(count))
        deadline = time.monotonic() + MAP_TIMEOUT
        for name in names:
            while not admin.xpending_range(shared, GROUP, "-", "+", 1, consumername=name):
                if time.monotonic() > deadline:
                    raise RhcError(f"{name} never took a batch")
                time.sleep(0.01)
        victims.kill()
        last_beats = {name: float(admin.get(keys.alive(name))) for name in names}
        reaped: dict[str, float] = {}
        while len(reaped) < VICTIMS:
            if time.monotonic() > deadline:
                raise RhcError("killed workers were never reaped")
            for name in set(names) - set(reaped):
                if not admin.hexists(keys.workers, name):
                    reaped[name] = time.time() - last_beats[name]
            time.sleep(0.01)
        if job.results(timeout=MAP_TIMEOUT) != list(range(count)):
            raise RhcError("the map that lost workers returned wrong results")
    finally:
        victims.stop()
    settings = resolve_settings(config_file=cluster.worker_config_file)
    return {
        "reaped_after": sorted(reaped.values()),
        "limit": settings.heartbeat_ttl + settings.heartbeat_interval,
    }


def measure(directory: Path) -> dict[str, object]:
    cluster = LocalCluster(directory, workers=0, namespace=NAMESPACE)
    swarm = Swarm(cluster.worker_config_file)
    admin = None
    try:
        cluster.start()
        admin = cluster.redis.client()
        interval = resolve_settings(config_file=cluster.worker_config_file).heartbeat_interval
        empty = redis_figures(admin)
        started = time.perf_counter()
        names = [f"sim-{index}" for index in range(WORKERS)]
        swarm.start([names[first::PROCESSES] for first in range(PROCESSES)])
        startup = time.perf_counter() - started
        if admin.hlen(Keys(NAMESPACE).workers) != WORKERS:
            registered = admin.hlen(Keys(NAMESPACE).workers)
            raise RhcError(
                f"{registered} of {WORKERS} simulated workers registered after {startup:.0f} s: "
                "the others were swept as dead while the rest started (this machine is too busy)"
            )
        rest = measure_rest(admin, swarm, empty, interval)
        with rhc.Manager(**read_config_file(cluster.config_file)) as manager:
            timed_map(manager, swarm, admin, 2 * WORKERS)  # the manager learns the task's length
            maps = [
                timed_map(manager, swarm, admin, WORKERS * TASKS_PER_WORKER) for _ in range(REPEATS)
            ]
            reaping = measure_reaping(manager, cluster, admin)
    finally:
        swarm.stop()
        if admin is not None:
            admin.close()
        cluster.stop()
    return {"startup_seconds": startup, "rest": rest, "maps": maps, "reaping": reaping}


def summarize(measured: dict, runtime: float) -> dict[str, object]:
    maps, rest, reaping = measured["maps"], measured["rest"], measured["reaping"]
    efficiencies = [100 * m["tasks"] * TASK_SECONDS / (m["seconds"] * WORKERS) for m in maps]
    per_task = {
        side: statistics.median(1e6 * m[side] / m["tasks"] for m in maps)
        for side in ("redis_cpu", "notebook_cpu", "workers_cpu")
    }
    figures = {
        "efficiency": statistics.median(efficiencies),
        "wall per map": statistics.median(m["seconds"] for m in maps),
        "ideal wall per map": TASKS_PER_WORKER * TASK_SECONDS,
        "Redis CPU per task": per_task["redis_cpu"],
        "notebook CPU per task": per_task["notebook_cpu"],
        "simulated workers' CPU per task": per_task["workers_cpu"],
        "Redis commands per task": statistics.median(
            m["redis_commands"] / m["tasks"] for m in maps
        ),
        "live workers taken for dead in the maps": sum(m["taken_for_dead"] for m in maps),
        "Redis memory per idle worker": rest["memory_per_worker"] / 1024,
        "of which its connections' buffers": rest["connections_memory_per_worker"] / 1024,
        "Redis CPU at rest": rest["redis_cpu_percent"],
        "Redis commands/s at rest": rest["commands_per_second"],
        "simulated workers' CPU at rest": rest["workers_cpu_percent"],
        "start-up of the workers": measured["startup_seconds"],
        "Redis connections per worker": rest["connections_per_worker"],
        "reaped after its last heartbeat, slowest": max(reaping["reaped_after"]),
        "reaped after its last heartbeat, median": statistics.median(reaping["reaped_after"]),
    }
    targets = {
        "efficiency": (f">= {EFFICIENCY_TARGET:.0f} %", figures["efficiency"] >= EFFICIENCY_TARGET),
        "reaped after its last heartbeat, slowest": (
            f"<= {reaping['limit']:.0f} s",
            max(reaping["reaped_after"]) <= reaping["limit"],
        ),
    }
    return {
        "command": shlex.join([sys.executable, *sys.argv]),
        "machine": machine(),
        "method": {
            "workers": WORKERS,
            "processes": PROCESSES,
            "task_seconds": TASK_SECONDS,
            "tasks_per_map": WORKERS * TASKS_PER_WORKER,
            "repeats": REPEATS,
            "rest_seconds": REST_SECONDS,
        },
        "figures": figures,
        "targets": {name: {"target": text, "met": met} for name, (text, met) in targets.items()},
        "runs": {"efficiency_percent": efficiencies, **measured},
        "runtime_seconds": runtime,
    }


UNITS = {
    "efficiency": ("%", ".1f"),
    "wall per map": ("s", ".2f"),
    "ideal wall per map": ("s", ".2f"),
    "Redis CPU per task": ("µs", ".1f"),
    "notebook CPU per task": ("µs", ".1f"),
    "simulated workers' CPU per task": ("µs", ".1f"),
    "Redis commands per task": ("", ".2f"),
    "live workers taken for dead in the maps": ("", "d"),
    "Redis memory per idle worker": ("KiB", ".1f"),
    "of which its connections' buffers": ("KiB", ".1f"),
    "Redis CPU at rest": ("% of a core", ".1f"),
    "Redis commands/s at rest": ("", ",.0f"),
    "simulated workers' CPU at rest": ("% of a core", ".1f"),
    "start-up of the workers": ("s", ".1f"),
    "Redis connections per worker": ("", ".2f"),
    "reaped after its last heartbeat, slowest": ("s", ".2f"),
    "reaped after its last heartbeat, median": ("s", ".2f"),
}


def report(summary: dict) -> str:
    method = (
        f"{WORKERS} simulated workers in {PROCESSES} processes, maps of "
        f"{WORKERS * TASKS_PER_WORKER} tasks of {TASK_SECONDS} s (medians of {REPEATS}); "
        f"{REST_SECONDS:.0f} s at rest"
    )
    return figure_table(summary, method, UNITS, LABEL)


def main() -> None:
    global WORKERS
    if len(sys.argv) > 1:  # another pool size, e.g. to see where this machine's limit lies
        WORKERS = int(sys.argv[1])
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so every process started is stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rhc-swarm-") as scratch:
        print(f"starting {WORKERS} simulated workers ...", file=sys.stderr, flush=True)
        measured = measure(Path(scratch))
    summary = summarize(measured, time.perf_counter() - started)
    publish("swarm" if WORKERS == 2000 else f"swarm-{WORKERS}", summary, report(summary))


if __name__ == "__main__":
    main()
