# SPDX-License-Identifier: BSD-3-Clause
"""What workers and senders record for people to watch (the dashboard, /metrics): the
namespace's counters, each job's spans, the latest failures and departures.

All of it is written in the pipelines and scripts rhc already sends (no extra round trip on the
path of a task), and none of it is trusted for delivery: the counters are exact because the
script that stores a result counts it (once: a batch is stored once), the rest is display.
The three streams are capped logs, never work: trimming them loses nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import redis

SUBMITTED, STARTED, SUCCEEDED, FAILED, RETRIED = (
    "submitted",
    "started",
    "succeeded",
    "failed",
    "retried",
)
"""Counts of the counters hash: tasks sent by senders; taken by workers (flushed with their
heartbeat); finished without and with an error (counted where results are stored); and run
again because the worker running them was lost. Succeeded is not stored: it is every task the
runtime histogram counts, less the failed ones (succeeded_from)."""

COUNTED = "count:"
"""The prefix of the counters (namespace and job hash) of what tasks counted
(rhc.get_worker().count(name, amount)): count:<name>."""

RUNTIME_SUM = "runtime_sum"
"""Field of the counters hash: seconds the finished tasks ran, summed."""

RUNTIME_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
"""Upper bounds (seconds) of the task runtime histogram; tasks above the last count in +Inf."""

JOB_FAILED, JOB_RETRIED = "failed", "retried"
"""Fields of the job hash beside `done`, counted where results are stored."""

SPANS_KEPT, FAILURES_KEPT, DEPARTURES_KEPT = 10_000, 200, 500
"""How many entries each capped stream keeps (approximately: MAXLEN ~)."""

RECENT_JOBS_KEPT, RECENT_JOBS_TRIM_EVERY = 100, 10
"""How many of the latest jobs the recent-jobs list keeps; a sender trims it at its first job,
then every tenth (a command less on the path of most small maps)."""

TEXT_KEPT = 4_000
"""How much of a traceback or an argument's repr a failure keeps."""


def runtime_bucket(seconds: float) -> str:
    """The counters field of the histogram bucket a task runtime falls in (not cumulative:
    the reader sums them up)."""
    for bound in RUNTIME_BUCKETS:
        if seconds <= bound:
            return f"le:{bound:g}"
    return "le:+Inf"


def succeeded_from(counters: dict[str, float]) -> float:
    """The tasks that finished without an error: all the histogram's buckets hold, less the
    failed ones (one command less per stored batch than a counter of its own)."""
    finished = sum(value for name, value in counters.items() if bucket_bound(name) is not None)
    return finished - counters.get(FAILED, 0.0)


def bucket_bound(field_name: str) -> float | None:
    """A bucket field's upper bound, or None if the field is not a bucket."""
    if not field_name.startswith("le:"):
        return None
    return math.inf if field_name == "le:+Inf" else float(field_name[3:])


class _Fields:
    """A record stored as the fields of an entry of a capped stream."""

    def append_to(self, pipe: redis.client.Pipeline, stream: str, kept: int) -> None:
        """Queue adding it to `stream`, which keeps about its last `kept` entries (a log:
        trimming it loses nothing)."""
        pipe.xadd(stream, self.to_fields(), maxlen=kept, approximate=True)

    def to_fields(self) -> dict[str, str]:
        # its fields are plain values: asdict's deep copy costs a worker's every batch 30x
        return {name: str(value) for name, value in vars(self).items()}

    @classmethod
    def from_fields(cls, data: dict[bytes, bytes]):
        text = {key.decode(): value.decode(errors="replace") for key, value in data.items()}
        values = {}
        for spec in fields(cls):
            raw = text.get(spec.name, "")
            values[spec.name] = float(raw or 0) if spec.type == "float" else raw
        return cls(**values)


@dataclass(frozen=True)
class Span(_Fields):
    """Batch tasks of a job ran on a worker from `started` to `finished` (epoch seconds)."""

    worker: str
    started: float
    finished: float
    tasks: str
    """The task numbers, as "first-last"."""


@dataclass(frozen=True)
class FailureNotice(_Fields):
    """A task that raised (or whose process died), as people read it."""

    job: str
    task: str
    worker: str
    kind: str
    error: str
    message: str
    traceback: str
    argument: str
    """The repr of the task's argument, cut to TEXT_KEPT."""
    time: float


@dataclass(frozen=True)
class Departure(_Fields):
    """A worker that left, or whose task process died (the worker lives on: `left` is "0")."""

    worker: str
    host: str
    condor_id: str
    reason: str
    last_error: str
    left: str
    time: float
