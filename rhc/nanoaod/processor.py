# SPDX-License-Identifier: BSD-3-Clause
"""What a physicist writes — a processor of one chunk's events — and the task that runs it on a
worker: read the chunk through the caches, process it, report on it."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import awkward as ak

from rhc.errors import NotInWorkerError
from rhc.nanoaod.accumulate import add
from rhc.nanoaod.chunks import BadFile, Chunk
from rhc.nanoaod.reading import FileReadError, Reader, current_reader
from rhc.worker import WorkerContext, get_worker


class Processor(ABC):
    """Turns one chunk's events into something mergeable: a number, a numpy array, a hist.Hist,
    or a dict of those. Results of all chunks are merged with rhc.nanoaod.accumulate.add.

    Processors must be stateless and picklable: one instance is shipped to every worker and
    called for many chunks, in any order, and possibly twice for the same chunk.
    """

    branches: Sequence[str] = ()
    """The branches process() reads; their arrays arrive as fields of `events`. A file without
    one of them is a bad file."""

    optional_branches: Sequence[str] = ()
    """Branches process() reads where a file has them, such as `genWeight` (simulation has it,
    collision data does not): a file without one is not a bad file, and `events` lacks that
    field for its chunks (test with `name in events.fields`)."""

    @abstractmethod
    def process(self, events: ak.Array, chunk: Chunk) -> object:
        """The result of one chunk."""

    def postprocess(self, merged: object) -> object:
        """Turn the merged result of all chunks into the final one (e.g. sums into means)."""
        return merged


@dataclass(frozen=True)
class ChunkReport:
    """What processing one chunk took, for the timeline and the events/s summary."""

    chunk: Chunk
    worker: str
    started: float
    finished: float
    bytes_read: int


@dataclass
class RunOutput:
    """The merged output of some chunks: the value, a report per chunk, the bad files met."""

    value: object = None
    reports: list[ChunkReport] = field(default_factory=list)
    bad_files: list[BadFile] = field(default_factory=list)


def merge_outputs(a: RunOutput, b: RunOutput) -> RunOutput:
    """The reducer of a run: workers merge chunk outputs with it, then the notebook does."""
    a.value = add(a.value, b.value)
    a.reports += b.reports
    a.bad_files += b.bad_files
    return a


@dataclass(frozen=True)
class ChunkTask:
    """The function a run maps over its chunks.

    With branches, `process(events, chunk)` gets them as one record array, with those of
    `optional_branches` that the chunk's file has; without any, the function gets the chunk
    alone and reads what it wants (rhc.nanoaod.read). A file that cannot be opened is tried at
    each of `redirectors` in turn.
    """

    process: Callable
    branches: tuple[str, ...]
    skip_bad_files: bool
    redirectors: tuple[str, ...] = ()
    optional_branches: tuple[str, ...] = ()
    chunksize: int = 0
    """The run's entries per chunk: not used to read, but part of the task, so that the time per
    task the Manager remembers for a function (to size batches) is never another chunk size's."""

    def __call__(self, chunk: Chunk, reader: Reader | None = None) -> RunOutput:
        started = time.time()
        read_bytes = 0
        try:
            if self.branches or self.optional_branches:
                reader = reader or current_reader()
                branches = self.branches
                if self.optional_branches:
                    found = reader.available(chunk, self.optional_branches, self.redirectors)
                    branches += tuple(name for name in found if name not in branches)
                events, read_bytes = reader.read(chunk, branches, self.redirectors)
                value = self.process(events, chunk)
            else:
                value = self.process(chunk)
        except FileReadError as exc:
            if not self.skip_bad_files:
                raise
            return RunOutput(bad_files=[BadFile(chunk.dataset, chunk.file, exc.reason)])
        worker = _worker()
        if worker is not None:  # for the dashboard: events/s and bytes read, per job
            worker.count("events", chunk.events)
            worker.count("bytes_read", read_bytes)
        name = worker.name if worker is not None else "local"
        report = ChunkReport(chunk, name, started, time.time(), read_bytes)
        return RunOutput(value=value, reports=[report])


@dataclass(frozen=True)
class EventsFunction:
    """A plain function of events, in the shape ChunkTask calls."""

    function: Callable[[ak.Array], object]

    def __call__(self, events: ak.Array, chunk: Chunk) -> object:
        return self.function(events)


def _worker() -> WorkerContext | None:
    """The worker running this chunk, or None when it runs in the notebook (run_locally)."""
    try:
        return get_worker()
    except NotInWorkerError:
        return None
