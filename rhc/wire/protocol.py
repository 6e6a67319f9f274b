# SPDX-License-Identifier: BSD-3-Clause
"""The Redis protocol: every message field rhc uses (the keys are in rhc.wire.keys).

Task entry fields: job, batch, redeliveries (unsigned) and m, the signed TaskBatch (its header
binds namespace, job, batch and function digest; its body, the pickled arguments). Result entry
fields: m, the sealed ResultMessage (its body, the values or the merged value), or cancel (see
CANCEL_FIELD). The notebook
side signs with its task key (rhc.wire.signing), workers with the shared secret.

Delivery (the scripts are in rhc.wire.scripts): a worker acknowledges a task entry only in the
script that stores its result (ACK_AND_STORE). A dead worker (heartbeat key expired) has its
pending entries moved back to the shared stream by REQUEUE, which acknowledges and re-adds them
atomically: the claim and the redelivery are one step, and the entry goes to whichever worker is
free rather than to the sweeper. Only the entry it was running counts as a redelivery (its
oldest-delivered pending entry not in its merged set): the others were finished or not yet
started, and a task that keeps killing its workers must not take its neighbours down with it.
Task streams are never trimmed; entries are deleted once acknowledged.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import TypeVar

import cloudpickle

from rhc._version import __version__
from rhc.wire.serialization import FORMAT_VERSION

GROUP = "workers"
"""The consumer group every worker reads task streams through."""

TASK_FIELDS = ("job", "batch", "redeliveries", "m")
"""Fields of a task stream entry, in order."""

RESULT_FIELD = "m"

CANCEL_FIELD = "cancel"
"""The field of a result stream entry that holds, instead of a result, a signed cancel
ControlMessage: a job's waiters learn at once that whoever holds a task key (its sender, the
dashboard) cancelled it."""

RESULTS, PARTIAL, PROGRESS = "results", "partial", "progress"
"""Kinds of ResultMessage: per-task values, a merged value, or bookkeeping for a merged job."""

CANCEL, FLUSH = "cancel", "flush"
"""Operations of a ControlMessage."""

RUNNING, FINISHED, CANCELLED, DELIVERED = "running", "finished", "cancelled", "delivered"
"""States of a job; delivered: finished, its results handed to the caller and removed."""

JOB_STATE, JOB_TOTAL, JOB_SUBMITTED, JOB_DONE = "state", "total", "submitted", "done"
"""Fields of the job hash that change while it runs; ACK_AND_STORE counts `done`."""

JOB_REASON, JOB_SIGNED = "reason", "signed"
"""Fields of the job hash: the error that stopped a job in its sender (empty if a user cancelled
it); and its signed JobStatus, whence state, total and reason are trusted."""

FUNCTION = "function"
"""The kind of a function's signed header."""


def versions() -> dict[str, str]:
    """What a worker advertises and a manager stamps on its jobs; coffea's version is "" where
    it is not installed (rhc.coffea runs only on workers with the notebook's)."""
    return {
        "python": ".".join(map(str, sys.version_info[:3])),
        "cloudpickle": cloudpickle.__version__,
        "rhc": __version__,
        "format": str(FORMAT_VERSION),
        "coffea": installed_version("coffea"),
    }


def installed_version(distribution: str) -> str:
    """The version of an installed distribution, read from its metadata without importing it
    (a worker must not pay coffea's import to say which it has); "" if it is not installed."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return ""


def compat_tag(advertised: dict[str, str]) -> str:
    """The compatibility class: pickles cross only between equal Python minors and cloudpickle
    majors, so each class has its own task stream and no worker ever sees a task it cannot load."""
    python_minor = ".".join(advertised["python"].split(".")[:2])
    cloudpickle_major = advertised["cloudpickle"].split(".")[0]
    return f"py{python_minor}-cloudpickle{cloudpickle_major}-format{advertised['format']}"


def incompatibility(mine: dict[str, str], theirs: dict[str, str]) -> str | None:
    """Why a worker advertising `theirs` cannot run tasks pickled here, or None if it can."""
    if compat_tag(mine) == compat_tag(theirs):
        return None
    return (
        f"it runs Python {theirs['python']} with cloudpickle {theirs['cloudpickle']} "
        f"(rhc {theirs['rhc']}), this process Python {mine['python']} with cloudpickle "
        f"{mine['cloudpickle']} (rhc {mine['rhc']}): functions pickled by cloudpickle load only on "
        "the same Python minor version and cloudpickle major version"
    )


_H = TypeVar("_H", bound="_Header")


class _Header:
    """A message that travels as a signed header (JSON)."""

    def header(self) -> dict:
        return dict(vars(self))  # its fields are plain values: asdict's deep copy costs 30x

    @classmethod
    def from_header(cls: type[_H], header: dict) -> _H:
        return cls(**header)


@dataclass(frozen=True)
class TaskBatch(_Header):
    """The signed header of a batch of tasks; the arguments travel pickled in the body."""

    namespace: str
    job: str
    batch: int
    first: int
    count: int
    function: str
    max_attempts: int
    result_ttl: float
    not_after: float
    """Expiry (epoch seconds): a captured entry cannot outlive its job's marks of batches run."""
    timeout: float | None = None
    reduce: bool = False

    @property
    def tasks(self) -> range:
        return range(self.first, self.first + self.count)


@dataclass(frozen=True)
class Failure:
    """Why one task failed."""

    task: int
    kind: str
    error_type: str
    message: str
    traceback: str = ""
    argument: str = ""
    """The repr of the task's argument, cut to ARGUMENT_KEPT characters (for people to read:
    the notebook raises with the argument itself)."""


ARGUMENT_KEPT = 300


@dataclass(frozen=True)
class ResultMessage:
    """The signed header of what a worker reports for a job.

    ``spans`` lists the (first, count) task ranges covered; failed tasks are among them.
    """

    kind: str
    job: str
    worker: str
    batches: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]
    failures: tuple[Failure, ...] = ()
    started: float = 0.0
    finished: float = 0.0
    has_value: bool = True

    def header(self) -> dict:
        return {**vars(self), "failures": [vars(failure) for failure in self.failures]}

    @classmethod
    def from_header(cls, header: dict) -> ResultMessage:
        return cls(
            kind=header["kind"],
            job=header["job"],
            worker=header["worker"],
            batches=tuple(header["batches"]),
            spans=tuple(tuple(span) for span in header["spans"]),
            failures=tuple(Failure(**failure) for failure in header["failures"]),
            started=header["started"],
            finished=header["finished"],
            has_value=header["has_value"],
        )

    @property
    def task_count(self) -> int:
        return sum(count for _, count in self.spans)


def function_header(namespace: str, digest: str) -> dict:
    """The signed header of a job's function, bound to the key it is stored under."""
    return {"kind": FUNCTION, "namespace": namespace, "digest": digest}


@dataclass(frozen=True)
class ControlMessage(_Header):
    """A notice published to every worker of a namespace, signed with the task key."""

    op: str
    job: str
    namespace: str


@dataclass(frozen=True)
class JobStatus(_Header):
    """What a job's sender signs of it: its state, and its total once every task was sent."""

    namespace: str
    job: str
    function: str
    reduce: bool = False
    state: str = RUNNING
    total: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class JobRecord:
    """A job's metadata in its hash; `done` is counted by workers as they store results."""

    function: str
    compat: str
    owner: str
    created: float
    reduce: bool
    state: str = RUNNING
    total: int | None = None
    submitted: int = 0
    done: int = 0
    reason: str = ""
    expected: int | None = None
    """How many tasks its sender expects (the len() of its arguments), for people to see
    before the total is known; None for an iterator."""
    signed: bytes = field(default=b"", repr=False)
    """The JobStatus signed by the sender (JOB_SIGNED), as read: not yet verified."""

    def to_fields(self) -> dict[str, str]:
        values = dict(vars(self))
        del values[JOB_SIGNED]
        values["reduce"] = int(self.reduce)
        values["total"] = "" if self.total is None else self.total
        values["expected"] = "" if self.expected is None else self.expected
        return {key: str(value) for key, value in values.items()}

    @classmethod
    def from_fields(cls, data: dict[bytes, bytes]) -> JobRecord:
        text = {
            key.decode(): value.decode(errors="replace")
            for key, value in data.items()
            if key != JOB_SIGNED.encode()
        }
        return cls(
            function=text["function"],
            compat=text["compat"],
            owner=text["owner"],
            created=float(text["created"]),
            reduce=text["reduce"] == "1",
            state=text[JOB_STATE],
            total=int(text[JOB_TOTAL]) if text.get(JOB_TOTAL) else None,
            submitted=int(text.get(JOB_SUBMITTED, 0)),
            done=int(text.get(JOB_DONE, 0)),
            reason=text.get(JOB_REASON, ""),
            expected=int(text["expected"]) if text.get("expected") else None,
            signed=data.get(JOB_SIGNED.encode(), b""),
        )


@dataclass
class WorkerInfo:
    """What a worker publishes about itself at every heartbeat."""

    name: str
    host: str
    pid: int
    compat: str
    versions: dict[str, str]
    started: float
    heartbeat: float = 0.0
    condor_id: str | None = None
    state: str = "starting"
    job: str | None = None
    task: int | None = None
    taken: int = 0
    done: int = 0
    failed: int = 0
    tasks_per_second: float = 0.0
    cpu_percent: float = 0.0
    rss_mb: float = 0.0
    task_keys: list[str] = field(default_factory=list)
    """The ids of the task keys whose signatures it accepts."""
    secret_id: str = ""
    """Which shared secret it signs results with (serialization.secret_id)."""
    last_error: str = ""
    """The first line of the last warning or error it logged."""
    round_trip: float = 0.0
    """Seconds a round trip to Redis takes from it (its heartbeat's, the least of the last few):
    far from Redis, its batches must be long enough to hide their messages."""
    extra: dict[str, str] = field(default_factory=dict)

    def encode(self) -> str:
        return json.dumps(vars(self))

    @classmethod
    def decode(cls, data: str | bytes) -> WorkerInfo:
        return cls(**json.loads(data))


def merged_member(stream: str, entry_id: str | bytes) -> str:
    """How an entry is named in a worker's merged set: entry ids are unique per stream only."""
    return f"{stream} {entry_id.decode() if isinstance(entry_id, bytes) else entry_id}"


def task_entry(job: str, batch: int, sealed: bytes, redeliveries: int = 0) -> dict[str, object]:
    """The fields of a task stream entry."""
    return dict(zip(TASK_FIELDS, (job, batch, redeliveries, sealed), strict=True))


@dataclass(frozen=True)
class TaskEntry:
    """A task stream entry as read, still sealed."""

    stream: str
    entry_id: bytes
    job: str
    batch: int
    redeliveries: int
    sealed: bytes

    @classmethod
    def parse(cls, stream: str, entry_id: bytes, fields: dict[bytes, bytes]) -> TaskEntry:
        """Read an entry leniently: a malformed one comes out unsealable, so it is rejected
        (and removed) like any forgery rather than crashing the reader."""
        try:
            batch, redeliveries = int(fields[b"batch"]), int(fields[b"redeliveries"])
        except (KeyError, ValueError):
            batch, redeliveries = -1, 0
        return cls(
            stream=stream,
            entry_id=entry_id,
            job=fields.get(b"job", b"").decode(errors="replace"),
            batch=batch,
            redeliveries=redeliveries,
            sealed=fields.get(b"m", b""),
        )
