# SPDX-License-Identifier: BSD-3-Clause
"""Run inside the stack's jupyter container (`python - COMMAND ...` with this file on stdin):
Redis is reachable only inside the stack, so the tests ask from there. Prints one JSON line.

  workers N TIMEOUT          wait until N workers are alive; their names, hosts and condor ids
  coffea_workers N TIMEOUT   wait until N workers are alive and every live one has coffea
  busy POOL_URL TIMEOUT      wait until a worker holds tasks it has read and its pool job
                             is not being stopped; that worker, with its job's evictions
  departure NAME TIMEOUT     wait until worker NAME has left; the record of its departure
  hostnames NAMESPACE N      map N tasks on that namespace's workers; the hosts that ran them
  dimuon NAMESPACE URL       the dimuon analysis of URL on that namespace's workers
  pool_jobs POOL_URL         the mini pool's jobs
  evicted POOL_URL ID N TIMEOUT   wait until pool job ID has been evicted more than N times
"""

from __future__ import annotations

import json
import socket
import sys
import time
from dataclasses import asdict

from rhc import Manager
from rhc.config import resolve_settings
from rhc.manager.broker import Broker
from rhc.wire.activity import Departure
from rhc.wire.connection import connect
from rhc.wire.keys import Keys
from rhc.worker.reaper import Reaper


def wait(condition, timeout: float, what: str, seen=lambda: ""):
    """Poll the cluster's state in Redis, which nothing pushes to us; seen: what was there
    instead, for the message of a timeout."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            sys.exit(f"timed out after {timeout} s waiting for {what}; seen: {seen()}")
        time.sleep(0.02)
    return value


def workers(count: str, timeout: str) -> list[dict]:
    broker = Broker(resolve_settings())
    alive = wait(
        lambda: len(found := broker.registry.workers(fresh=True)) >= int(count) and found,
        float(timeout),
        f"{count} workers",
    )
    return [{"name": w.name, "host": w.host, "condor_id": w.condor_id} for w in alive]


def coffea_workers(count: str, timeout: str) -> list[dict]:
    broker = Broker(resolve_settings())

    def ready() -> list | None:
        found = broker.registry.workers(fresh=True)
        with_coffea = all(info.versions.get("coffea") for info in found)
        return found if len(found) >= int(count) and with_coffea else None

    def seen() -> str:
        return str([(i.name, i.versions.get("coffea")) for i in broker.registry.workers()])

    alive = wait(ready, float(timeout), f"{count} workers, every one with coffea", seen)
    return [{"name": w.name, "coffea": w.versions["coffea"]} for w in alive]


def busy(pool_url: str, timeout: str) -> dict:
    """A worker holding tasks it read and has not finished: seen in Redis's pending entries the
    moment it reads them (a heartbeat's "busy" may come after a short run has ended). Not one
    the pool's own evictor is stopping: the tests stop it themselves."""
    settings = resolve_settings()
    broker = Broker(settings)
    reaper = Reaper(connect(settings, role="probe"), Keys(settings.namespace), compat="")

    def find() -> dict | None:
        for info in broker.registry.workers(fresh=True):
            if reaper.held(info.name, info.compat):
                job = pool_job(pool_url, info.condor_id)
                if job.get("state") == "Running" and job["stopping"] is None:
                    return {
                        "name": info.name,
                        "host": info.host,
                        "condor_id": info.condor_id,
                        "evictions": job["evictions"],
                    }
        return None

    def seen() -> str:
        return repr([(info.name, info.state) for info in broker.registry.workers(fresh=True)])

    return wait(find, float(timeout), "a worker holding tasks", seen)


def departure(name: str, timeout: str) -> dict:
    settings = resolve_settings()
    client = connect(settings, role="probe")
    departures = Keys(settings.namespace).departures

    def find() -> dict | None:
        for _, fields in client.xrevrange(departures, count=100):
            if (record := Departure.from_fields(fields)).worker == name:
                return asdict(record)
        return None

    return wait(find, float(timeout), f"worker {name} to leave")


def hostnames(namespace: str, count: str) -> list[str]:
    with Manager(namespace=namespace) as manager:
        return sorted(set(manager.remote_map(lambda _: socket.gethostname(), range(int(count)))))


def dimuon(namespace: str, url: str) -> dict:
    from rhc.nanoaod import Dimuon, run

    with Manager(namespace=namespace) as manager:
        result = run(manager, Dimuon(), {"sample": [url]}, chunksize=50)
    return {"entries": sum(result.value["entries"].values()), "events": result.events}


def pool_jobs(url: str) -> list[dict]:
    from rhc.condor.minipool import MiniPoolClient
    from rhc.config import resolve_pool_token

    return MiniPoolClient(url, token=resolve_pool_token()).jobs()


def pool_job(url: str, condor_id: str) -> dict:
    """The mini pool's job of that id; {} once it left the queue."""
    return next((job for job in pool_jobs(url) if job["id"] == condor_id), {})


def evicted(url: str, condor_id: str, times: str, timeout: str) -> dict:
    def find() -> dict | None:
        job = pool_job(url, condor_id)
        return job if job.get("evictions", 0) > int(times) else None

    return wait(find, float(timeout), f"pool job {condor_id} evicted more than {times} time(s)")


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    print(json.dumps(globals()[command](*arguments)))
