"""The core benchmark: rhc against its peers on this machine, side by side, in one run.

Four figures, each from the median of many repeats on warm workers, one new job per map with
the default options (rhc's progress bar on), each map timed from its first submit to its last
result:

  throughput    10,000 no-op tasks, in tasks/s    target: >= 1.5x pool(100), 25x pool(1),
                                                          200x dask, 400x rq
  latency       a map of 10 no-op tasks back to back, in ms           target: <= 1.0 ms
  idle latency  the same 20 ms after the last map ends (a person in a notebook, not a loop;
                the machine idles meanwhile), in ms                   target: <= 1.5 ms
  efficiency    400 tasks sleeping 10 ms: time in tasks / (wall time * workers)  target: >= 99 %
                (also shown against the nominal 10 ms, which time.sleep overshoots here)

Figures swing from run to run on a shared machine: the JSON keeps every map's time and the
quartiles of each figure, and only the ratios between systems carry from one machine to another.

Every system gets 2 workers: rhc (a LocalCluster: redis-server and `rhc worker` processes, driven
by a Manager), the same over TLS ("rhc tls": a TLS-only redis-server),
concurrent.futures.ProcessPoolExecutor with chunksize 1 and 100 (pool(1) and pool(100)), a
dask.distributed LocalCluster with its default settings, and RQ (one job per task, `rq worker`
processes with SimpleWorker, which runs jobs without forking, on a redis-server of its own).
Only one system runs at a time, so none takes cores from another.

Beside them, what signing costs: the task key's Ed25519 signature and its verification, and the
shared secret's HMAC, on a 10-task batch; and per 10-task map, what rhc signs (the batch, the
job's status twice) and verifies on a worker (the batch; functions are signed and verified once);
and what waking costs this machine: the same 0.1 ms of Python timed back to back and right after
the idle-latency pause (a halted virtual CPU comes back with cold caches), which puts the idle
latency of every system in proportion.

Run `python benchmarks/core.py` (or `make bench`): it prints a table and writes
benchmarks/results/core.json.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import dask
import distributed
import redis
import rq
import tasks
from machine import header, machine, publish

import rhc
from rhc.config import new_secret, read_config_file
from rhc.local import LocalCluster, RedisServer
from rhc.wire.protocol import TaskBatch
from rhc.wire.serialization import dumps, seal, sign, unseal, verify
from rhc.wire.signing import TaskKey, TrustedKeys, new_task_key

HERE = Path(__file__).resolve().parent
WORKERS = 2
PAUSE = 0.02
"""Seconds between the idle-latency maps."""
WORKLOADS = {  # name: (function, tasks per map, timed repeats, seconds paused before each)
    "throughput": (tasks.noop, 10_000, 20, 0.0),
    "latency": (tasks.noop, 10, 200, 0.0),
    "idle latency": (tasks.noop, 10, 100, PAUSE),
    "efficiency": (tasks.sleep, 400, 20, 0.0),
}
WARMUP, WARMUP_BUDGET = 3, 2.0
"""Up to 3 untimed maps of each workload first (fewer past 2 s): workers started, code imported,
and rhc's batch sizer told how long the function takes (it remembers that per function, as on
any second run)."""
BUDGET = 45.0
"""Seconds of timed maps per system and workload: the repeats stop early once it is spent, so a
slow peer (dask takes ~17 s per 10,000 tasks here) cannot push the run past ~5 minutes."""
LABEL = 30
UNITS = {
    "throughput": "tasks/s",
    "latency": "ms",
    "idle latency": "ms",
    "efficiency": "%",
    "nominal efficiency": "%",
}
FORMATS = {
    "throughput": ",.0f",
    "latency": ".2f",
    "idle latency": ".2f",
    "efficiency": ".1f",
    "nominal efficiency": ".1f",
}
HIGHER_IS_BETTER = {
    "throughput": True,
    "latency": False,
    "idle latency": False,
    "efficiency": True,
    "nominal efficiency": True,
}
TARGETS = {
    "throughput": ">= 1.5x pool(100), 25x pool(1), 200x dask, 400x rq",
    "latency": "<= 1.0 ms",
    "idle latency": "<= 1.5 ms",
    "efficiency": ">= 99 %",
}

Map = Callable[[Callable, list], list]


@contextlib.contextmanager
def rhc_system(directory: Path, *, tls: bool = False) -> Iterator[Map]:
    """rhc as a notebook uses it: a Manager sending to `rhc worker` processes through Redis."""
    cluster = LocalCluster(directory, workers=WORKERS, tls=tls)
    try:
        cluster.start()
        with rhc.Manager(**read_config_file(cluster.config_file)) as manager:
            yield manager.remote_map  # the default options: the progress bar on
    finally:
        cluster.stop()


@contextlib.contextmanager
def pool_system(chunksize: int) -> Iterator[Map]:
    """The standard library's answer, at the chunk size of one task per message and of many."""
    with ProcessPoolExecutor(WORKERS) as pool:
        yield lambda function, items: list(pool.map(function, items, chunksize=chunksize))


@contextlib.contextmanager
def dask_system() -> Iterator[Map]:
    """The closest distributed peer: one scheduler and worker processes, one thread each."""
    with (
        distributed.LocalCluster(
            n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        # pure=False gives every map fresh keys: no map may reuse an earlier one's results.
        yield lambda function, items: client.gather(client.map(function, items, pure=False))


@contextlib.contextmanager
def rq_system(directory: Path) -> Iterator[Map]:
    """RQ, the classic Redis task queue: a job per task, results read back job by job."""
    server = RedisServer(directory / "rq-redis").start()
    admin = server.admin  # RQ needs no ACL of its own: the benchmark's Redis is its alone
    url = f"redis://{admin.name}:{admin.password}@127.0.0.1:{server.port}"
    environment = {**os.environ, "RQ_REDIS_URL": url}
    command = [sys.executable, "-m", "rq.cli", "worker", "--worker-class", "rq.SimpleWorker"]
    workers = [
        subprocess.Popen([*command, "--quiet", "--name", f"bench{i}", "bench"], env=environment)
        for i in range(WORKERS)
    ]
    # No socket timeout: a result is awaited with a blocking read of up to 120 s
    queue = rq.Queue("bench", connection=redis.Redis.from_url(url, socket_timeout=None))

    def run(function: Callable, items: list) -> list:
        jobs = queue.enqueue_many([rq.Queue.prepare_data(function, (x,)) for x in items])
        return [job.latest_result(timeout=120).return_value for job in jobs]

    try:
        yield run
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:  # rq's warm shutdown can outwait its blocking read
                worker.kill()
                worker.wait()
        server.stop()


def measure(run: Map) -> dict[str, list[float]]:
    """Seconds per map of every workload, after untimed warm-up maps; results are checked.
    The efficiency maps also record the seconds their tasks measured themselves ("busy")."""
    seconds = {}
    for name, (function, count, repeats, pause) in WORKLOADS.items():
        items = list(range(count))
        repeat(run, function, items, WARMUP, WARMUP_BUDGET, pause)
        seconds[name], busy = repeat(run, function, items, repeats, BUDGET, pause)
        if function is tasks.sleep:
            seconds["busy"] = busy
    return seconds


def repeat(
    run: Map, function: Callable, items: list, count: int, budget: float, pause: float
) -> tuple[list[float], list[float]]:
    """Time `count` maps, each after `pause` seconds, or fewer (at least one) if they take
    more than `budget` seconds."""
    seconds: list[float] = []
    busy: list[float] = []
    while len(seconds) < count and sum(seconds) < budget:
        time.sleep(pause)
        started = time.perf_counter()
        results = run(function, items)
        seconds.append(time.perf_counter() - started)
        if function is tasks.sleep:
            busy.append(sum(lasted for _, lasted in results))
            results = [x for x, _ in results]
        if results != items:
            raise RuntimeError(f"{function.__name__} over {len(items)} items: wrong results")
    return seconds, busy


def signing_costs(rounds: int = 2000) -> dict[str, float]:
    """Microseconds (median of rounds) to sign and verify a 10-task batch each way, and what a
    10-task map signs and verifies: 3 signatures in the notebook (the batch, the job's status
    when sent and when finished; a function's is kept), 1 verification on a worker."""
    key, secret = TaskKey(new_task_key()), new_secret().encode()
    trusted = TrustedKeys([key.public])
    header = TaskBatch("ns", "0123456789abcdef", 0, 0, 10, "f" * 32, 3, 60.0, 0.0).header()
    body = dumps(list(range(10)), what="arguments", limit=2**20)
    signed, sealed = sign(key, header, body), seal(secret, header, body)
    operations = {
        "ed25519 sign": lambda: sign(key, header, body),
        "ed25519 verify": lambda: verify(trusted, signed),
        "hmac seal": lambda: seal(secret, header, body),
        "hmac unseal": lambda: unseal(secret, sealed),
    }
    costs = {}
    for name, operation in operations.items():
        lasted = []
        for _ in range(rounds):
            started = time.perf_counter()
            operation()
            lasted.append(time.perf_counter() - started)
        costs[name] = 1e6 * statistics.median(lasted)
    costs["per 10-task map"] = 3 * costs["ed25519 sign"] + costs["ed25519 verify"]
    return costs


def sleep_milliseconds() -> float:
    """How long time.sleep(0.01) really lasts here (median): it overshoots (timer slack,
    scheduling), and no system runs the efficiency tasks faster than their sleeps allow."""
    lasted = []
    for _ in range(50):
        started = time.perf_counter()
        time.sleep(tasks.SLEEP_SECONDS)
        lasted.append(time.perf_counter() - started)
    return 1e3 * statistics.median(lasted)


def wake_penalty(rounds: int = 100) -> dict[str, float]:
    """What waking costs here: the same 0.1 ms of Python (pickling, hashing, a dict) timed back
    to back and right after a PAUSE-long sleep, interleaved, medians in microseconds. A virtual
    CPU that halted comes back with cold caches, and every process an idle map wakes (the
    manager, Redis, a worker's supervisor and task process) pays that on its part of the path."""

    def work() -> None:
        table = {str(n): pickle.dumps((n, "x" * n)) for n in range(120)}
        hashlib.sha256(b"".join(table.values())).hexdigest()

    def timed() -> float:
        started = time.perf_counter()
        work()
        return time.perf_counter() - started

    warm, woken = [], []
    for _ in range(rounds):
        timed()
        warm.append(timed())
        time.sleep(PAUSE)
        woken.append(timed())
    back_to_back, after_pause = (1e6 * statistics.median(lasted) for lasted in (warm, woken))
    return {
        "back to back": back_to_back,
        "after the pause": after_pause,
        "slower by": after_pause / back_to_back,
    }


def figures_of(seconds: dict[str, list[float]]) -> dict[str, float]:
    """Each metric's figure from the median map: tasks/s, ms, or % of worker time in tasks."""
    throughput_tasks, sleep_tasks = WORKLOADS["throughput"][1], WORKLOADS["efficiency"][1]
    efficiency = [
        b / (s * WORKERS) for b, s in zip(seconds["busy"], seconds["efficiency"], strict=True)
    ]
    return {
        "throughput": throughput_tasks / statistics.median(seconds["throughput"]),
        "latency": 1e3 * statistics.median(seconds["latency"]),
        "idle latency": 1e3 * statistics.median(seconds["idle latency"]),
        "efficiency": 100 * statistics.median(efficiency),
        "nominal efficiency": 100
        * sleep_tasks
        * tasks.SLEEP_SECONDS
        / (statistics.median(seconds["efficiency"]) * WORKERS),
    }


def quartiles_ms(seconds: list[float]) -> list[float]:
    """The spread of a figure's maps: their first, second and third quartile, in ms."""
    if len(seconds) < 2:
        return [1e3 * seconds[0]] * 3
    return [1e3 * q for q in statistics.quantiles(seconds, n=4)]


def summarize(seconds: dict[str, dict[str, list[float]]]) -> dict[str, object]:
    """Everything the table shows and core.json keeps, raw map times included."""
    figures = {name: figures_of(per) for name, per in seconds.items()}
    ours = figures["rhc"]
    met = {
        "throughput": ours["throughput"] >= 1.5 * figures["pool(100)"]["throughput"]
        and ours["throughput"] >= 25 * figures["pool(1)"]["throughput"]
        and ours["throughput"] >= 200 * figures["dask"]["throughput"]
        and ours["throughput"] >= 400 * figures["rq"]["throughput"],
        "latency": ours["latency"] <= 1.0,
        "idle latency": ours["idle latency"] <= 1.5,
        "efficiency": ours["efficiency"] >= 99.0,
    }
    sleep = sleep_milliseconds()
    return {
        "command": shlex.join([sys.executable, *sys.argv]),
        "machine": machine(dask=dask.__version__, rq=rq.__version__),
        "method": {
            "workers": WORKERS,
            "warmup_maps": WARMUP,
            "budget_seconds": BUDGET,
            "workloads": {
                n: {"tasks": c, "repeats": r, "pause_seconds": p}
                for n, (_, c, r, p) in WORKLOADS.items()
            },
        },
        "figures": figures,
        "quartiles_ms": {
            name: {m: quartiles_ms(per[m]) for m in WORKLOADS} for name, per in seconds.items()
        },
        "repeats": {
            name: {m: len(s) for m, s in per.items() if m in WORKLOADS}
            for name, per in seconds.items()
        },
        "ratios": {m: {n: ours[m] / figures[n][m] for n in figures if n != "rhc"} for m in UNITS},
        "targets": {m: {"target": TARGETS[m], "met": met[m]} for m in met},
        "sleep_ms": sleep,
        "efficiency_ceiling_percent": 100 * 1e3 * tasks.SLEEP_SECONDS / sleep,
        "wake_penalty_us": wake_penalty(),
        "signing_us": signing_costs(),
        "seconds": seconds,
    }


def report(summary: dict) -> str:
    figures, method = summary["figures"], summary["method"]
    names = list(figures)
    peers = names[1:]
    short = [
        f"{name} {metric} {count}"
        for name, per in summary["repeats"].items()
        for metric, count in per.items()
        if count < method["workloads"][metric]["repeats"]
    ]
    lines = [
        *header(summary),
        f"method: {WORKERS} workers per system, warm (up to {WARMUP} untimed maps each), a new job "
        "per map, timed from first submit to last result; medians of "
        + ", ".join(f"{w['repeats']} ({m})" for m, w in method["workloads"].items())
        + " repeats",
    ]
    if short:
        lines.append(f"fewer repeats ({BUDGET:.0f} s budget per figure): {', '.join(short)}")
    lines += [
        "",
        f"{'metric':<{LABEL}}" + "".join(f"{n:>11}" for n in names) + f"  {'target':<36}met",
    ]
    for metric, unit in UNITS.items():
        values = "".join(f"{figures[n][metric]:>11{FORMATS[metric]}}" for n in names)
        target = summary["targets"].get(metric)
        verdict = "" if target is None else "yes" if target["met"] else "NO"
        wanted = "" if target is None else target["target"]
        lines.append(f"{metric + f' ({unit})':<{LABEL}}{values}  {wanted:<36}{verdict}")
    lines += ["", f"{'rhc / peer':<{LABEL}}" + "".join(f"{n:>11}" for n in peers)]
    for metric, ratios in summary["ratios"].items():
        label = f"{metric} ({'higher' if HIGHER_IS_BETTER[metric] else 'lower'} wins)"
        lines.append(f"{label:<{LABEL}}" + "".join(f"{ratios[n]:>10.2f}x" for n in peers))
    lines += ["", "signing, in microseconds (a 10-task batch):"]
    lines += [f"  {name:<{LABEL - 2}}{us:>11.1f}" for name, us in summary["signing_us"].items()]
    lines.append(
        f"\nnote: time.sleep({tasks.SLEEP_SECONDS}) lasts {summary['sleep_ms']:.2f} ms here, so no "
        f"system can exceed {summary['efficiency_ceiling_percent']:.1f} % nominal efficiency"
    )
    wake = summary["wake_penalty_us"]
    lines.append(
        f"note: the same Python code takes {wake['back to back']:.0f} us back to back and "
        f"{wake['after the pause']:.0f} us right after a {1e3 * PAUSE:.0f} ms sleep here "
        f"({wake['slower by']:.1f}x): every process an idle map wakes pays that"
    )
    return "\n".join(lines)


def main() -> None:
    # The workers of rhc and dask import tasks.py by name, from this directory.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), os.getenv("PYTHONPATH")]))
    seconds = {}
    with tempfile.TemporaryDirectory(prefix="rhc-bench-") as scratch:
        systems = {
            "rhc": lambda: rhc_system(Path(scratch) / "plain"),
            "rhc tls": lambda: rhc_system(Path(scratch) / "tls", tls=True),
            "pool(1)": lambda: pool_system(1),
            "pool(100)": lambda: pool_system(100),
            "dask": dask_system,
            "rq": lambda: rq_system(Path(scratch)),
        }
        for name, system in systems.items():
            print(f"measuring {name} ...", file=sys.stderr, flush=True)
            with system() as run:
                seconds[name] = measure(run)
    summary = summarize(seconds)
    publish("core", summary, report(summary))


if __name__ == "__main__":
    main()
