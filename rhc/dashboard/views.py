# SPDX-License-Identifier: BSD-3-Clause
"""What the page shows, as JSON: a snapshot and its rates, laid out per namespace. No field of
it is a secret: Settings never reach it, and worker records hold none."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict

from rhc.dashboard.history import History
from rhc.dashboard.snapshot import (
    BUSY,
    IDLE,
    LEAVING,
    LOST,
    NamespaceView,
    Snapshot,
    worker_state,
)
from rhc.wire.protocol import WorkerInfo

_VERSIONS = ("rhc", "python", "cloudpickle")


def overview(snapshot: Snapshot, history: History, heartbeat_interval: float) -> dict:
    """The page's data: Redis, then each namespace."""
    return {
        "taken": snapshot.taken,
        "redis": {
            "up": snapshot.redis_up,
            "error": snapshot.error,
            "memory": snapshot.redis_memory,
            "max_memory": snapshot.redis_max_memory,
            "round_trip_ms": round(snapshot.round_trip * 1000, 2),
            "commands": snapshot.commands,
        },
        "namespaces": [
            _namespace(view, snapshot.taken, history, heartbeat_interval)
            for view in snapshot.namespaces
        ],
    }


def _namespace(view: NamespaceView, now: float, history: History, interval: float) -> dict:
    states = {info.name: worker_state(info, now, interval) for info in view.workers}
    usual = {
        name: Counter(info.versions.get(name, "") for info in view.workers).most_common(1)
        for name in _VERSIONS
    }
    return {
        "name": view.name,
        "workers_by_state": {
            state: list(states.values()).count(state) for state in (IDLE, BUSY, LOST, LEAVING)
        },
        "queues": [asdict(queue) for queue in view.queues],
        "routed_waiting": view.routed_waiting,
        "counters": view.counters,
        "rates": history.rates(view.name),
        "workers": [_worker(info, states[info.name], now, usual) for info in view.workers],
        "departures": [asdict(departure) for departure in view.departures],
        "jobs": [
            {
                "id": job.id,
                "owner": job.record.owner,
                "state": job.record.state,
                "created": job.record.created,
                "total": job.record.total,
                "expected": job.record.expected,
                "submitted": job.record.submitted,
                "done": job.record.done,
                "failed": job.failed,
                "retried": job.retried,
                "reason": job.record.reason,
                "rate": round(history.job_rate(view.name, job.id), 1),
                "counts": job.counts,
                "count_rates": {
                    name: round(history.job_rate(view.name, job.id, name), 1) for name in job.counts
                },
            }
            for job in view.jobs
        ],
        "failures": [asdict(failure) for failure in view.failures],
    }


def _worker(info: WorkerInfo, state: str, now: float, usual: dict) -> dict:
    versions = {name: info.versions.get(name, "") for name in _VERSIONS}
    return {
        "name": info.name,
        "condor_id": info.condor_id or "",
        "host": info.host,
        "state": state,
        "job": info.job or "",
        "task": info.task,
        "done": info.done,
        "failed": info.failed,
        "rate": info.tasks_per_second,
        "cpu_percent": info.cpu_percent,
        "rss_mb": info.rss_mb,
        "heartbeat_age": round(max(0.0, now - info.heartbeat), 1),
        "versions": versions,
        "mismatched": [
            name for name, value in versions.items() if usual[name] and value != usual[name][0][0]
        ],
        "last_error": info.last_error,
    }
