# SPDX-License-Identifier: BSD-3-Clause
"""/metrics: the latest snapshot in the Prometheus text format, named in the conventions of
task-queue exporters (celery-exporter's `celery_task_*_total`, rq-exporter's `rq_workers`),
labelled by namespace. Counters come from Redis, where workers and senders keep them, so they
survive a dashboard restart and count tasks exactly once."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from rhc.dashboard.snapshot import BUSY, IDLE, LEAVING, LOST, Snapshot, worker_state
from rhc.wire.activity import COUNTED, FAILED, RETRIED, RUNTIME_SUM, STARTED, SUBMITTED, SUCCEEDED

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_COUNTERS = (
    (SUBMITTED, "Tasks sent by managers."),
    (STARTED, "Tasks taken by workers (counted with their heartbeat, so up to a second late)."),
    (SUCCEEDED, "Tasks that returned a result."),
    (FAILED, "Tasks that raised, timed out or kept killing their process."),
    (RETRIED, "Tasks run again because the worker running them was lost."),
)


class SnapshotCollector:
    """A prometheus-client collector of whatever snapshot `latest` returns."""

    def __init__(self, latest: Callable[[], Snapshot], heartbeat_interval: float) -> None:
        self._latest = latest
        self._interval = heartbeat_interval

    def collect(self) -> Iterator[Metric]:
        snapshot = self._latest()
        yield _gauge(
            "rhc_redis_up",
            "1 if the dashboard's last read of Redis succeeded.",
            [],
            1 if snapshot.redis_up else 0,
        )
        if not snapshot.redis_up:
            return
        yield _gauge("rhc_redis_memory_bytes", "Memory Redis uses.", [], snapshot.redis_memory)
        yield _gauge(
            "rhc_redis_round_trip_seconds",
            "A PING's round trip from the dashboard.",
            [],
            snapshot.round_trip,
        )
        yield from self._counters(snapshot)
        yield self._counted(snapshot)
        yield self._runtime(snapshot)
        yield from self._queues(snapshot)
        yield from self._workers(snapshot)

    def _counters(self, snapshot: Snapshot) -> Iterator[Metric]:
        for name, documentation in _COUNTERS:
            family = CounterMetricFamily(f"rhc_tasks_{name}", documentation, labels=["namespace"])
            for view in snapshot.namespaces:
                family.add_metric([view.name], view.counters.get(name, 0.0))
            yield family

    def _counted(self, snapshot: Snapshot) -> Metric:
        family = CounterMetricFamily(
            "rhc_counted",
            "What tasks counted with rhc.get_worker().count (a NanoAOD run: events, bytes_read).",
            labels=["namespace", "name"],
        )
        for view in snapshot.namespaces:
            for key, value in view.counters.items():
                if key.startswith(COUNTED):
                    family.add_metric([view.name, key.removeprefix(COUNTED)], value)
        return family

    def _runtime(self, snapshot: Snapshot) -> Metric:
        family = HistogramMetricFamily(
            "rhc_task_runtime_seconds",
            "How long tasks ran (each batch's mean, for each of its tasks).",
            labels=["namespace"],
        )
        for view in snapshot.namespaces:
            cumulative, buckets = 0.0, []
            for bound, count in view.runtime_buckets():
                cumulative += count
                buckets.append((_bound(bound), cumulative))
            if not buckets or buckets[-1][0] != "+Inf":
                buckets.append(("+Inf", cumulative))
            family.add_metric([view.name], buckets, view.counters.get(RUNTIME_SUM, 0.0))
        return family

    def _queues(self, snapshot: Snapshot) -> Iterator[Metric]:
        waiting = GaugeMetricFamily(
            "rhc_queue_length", "Task batches waiting for a worker.", labels=["namespace"]
        )
        pending = GaugeMetricFamily(
            "rhc_batches_running",
            "Task batches taken by a worker (running, or in hand next), not yet finished.",
            labels=["namespace"],
        )
        oldest = GaugeMetricFamily(
            "rhc_queue_oldest_age_seconds",
            "How long the oldest waiting batch has waited.",
            labels=["namespace"],
        )
        for view in snapshot.namespaces:
            waiting.add_metric(
                [view.name], sum(q.waiting for q in view.queues) + view.routed_waiting
            )
            pending.add_metric([view.name], sum(q.pending for q in view.queues))
            ages = [q.oldest_age for q in view.queues if q.oldest_age is not None]
            oldest.add_metric([view.name], max(ages, default=0.0))
        yield from (waiting, pending, oldest)

    def _workers(self, snapshot: Snapshot) -> Iterator[Metric]:
        counts = GaugeMetricFamily(
            "rhc_workers", "Registered workers by state.", labels=["namespace", "state"]
        )
        up = GaugeMetricFamily(
            "rhc_worker_up",
            "1 for each registered worker whose heartbeat is current, 0 if it is lost.",
            labels=["namespace", "worker", "host", "condor_id"],
        )
        for view in snapshot.namespaces:
            states = [worker_state(info, snapshot.taken, self._interval) for info in view.workers]
            for state in (IDLE, BUSY, LOST, LEAVING):
                counts.add_metric([view.name, state], states.count(state))
            for info, state in zip(view.workers, states, strict=True):
                labels = [view.name, info.name, info.host, info.condor_id or ""]
                up.add_metric(labels, 0 if state == LOST else 1)
        yield from (counts, up)


def exposition(latest: Callable[[], Snapshot], heartbeat_interval: float) -> bytes:
    """The text /metrics serves."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(latest, heartbeat_interval))
    return generate_latest(registry)


def _gauge(name: str, documentation: str, labels: list[str], value: float) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    family.add_metric([], value)
    return family


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else f"{bound:g}"
