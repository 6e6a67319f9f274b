# SPDX-License-Identifier: BSD-3-Clause
"""Running a processor over a fileset: chunk, execute on the workers (merging there first),
accumulate, postprocess. Also the same loop in this process, to debug or to compare."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rhc.nanoaod.chunks import (
    DEFAULT_CHUNKSIZE,
    DEFAULT_TREE,
    BadFile,
    Chunking,
    Fileset,
    make_chunks,
)
from rhc.nanoaod.processor import (
    ChunkReport,
    ChunkTask,
    EventsFunction,
    Processor,
    RunOutput,
    merge_outputs,
)
from rhc.nanoaod.reading import Reader
from rhc.nanoaod.timeline import Summary, TaskSpan, plot_timeflow, summarize

if TYPE_CHECKING:
    from rhc.manager import Manager


@dataclass(frozen=True)
class RunResult:
    """A run's final value, a report per chunk processed, and the files left out."""

    value: object
    chunks: list[ChunkReport]
    bad_files: list[BadFile]

    @property
    def events(self) -> int:
        return sum(report.chunk.events for report in self.chunks)

    @property
    def bytes_read(self) -> int:
        """Bytes read from storage (not from the workers' memory caches)."""
        return sum(report.bytes_read for report in self.chunks)

    def spans(self) -> list[TaskSpan]:
        return [TaskSpan(r.worker, r.started, r.finished, r.chunk.events) for r in self.chunks]

    def summary(self) -> Summary:
        """Workers, wall time, efficiency, mean task time and gap, events/s."""
        return summarize(self.spans())

    def plot_timeline(self, path: str | Path | None = None) -> tuple:
        """One bar per chunk, a row per worker; saved as PNG to path if given."""
        return plot_timeflow(self.spans(), path)


def run(
    manager: Manager,
    processor: Processor | Callable,
    fileset: Fileset,
    *,
    chunksize: int = DEFAULT_CHUNKSIZE,
    branches: Sequence[str] | None = None,
    tree: str = DEFAULT_TREE,
    skip_bad_files: bool = False,
    **options: object,
) -> RunResult:
    """Process every chunk of fileset on the workers; see Manager.run."""
    task, chunking = _plan(processor, fileset, chunksize, branches, tree, skip_bad_files)
    chunks = chunking.chunks
    output = manager.remote_map(
        task, chunks, reduce=merge_outputs, affinity=[chunk.key for chunk in chunks], **options
    )
    return _result(processor, output or RunOutput(), chunking.bad_files)


def run_locally(
    processor: Processor | Callable,
    fileset: Fileset,
    *,
    chunksize: int = DEFAULT_CHUNKSIZE,
    branches: Sequence[str] | None = None,
    tree: str = DEFAULT_TREE,
    skip_bad_files: bool = False,
) -> RunResult:
    """The same run as a loop in this process: to debug a processor, or as a baseline."""
    task, chunking = _plan(processor, fileset, chunksize, branches, tree, skip_bad_files)
    reader = Reader()  # files stay open from chunk to chunk, as on a worker
    outputs = (task(chunk, reader) for chunk in chunking.chunks)
    output = functools.reduce(merge_outputs, outputs, RunOutput())
    return _result(processor, output, chunking.bad_files)


def _plan(
    processor: Processor | Callable,
    fileset: Fileset,
    chunksize: int,
    branches: Sequence[str] | None,
    tree: str,
    skip_bad_files: bool,
) -> tuple[ChunkTask, Chunking]:
    """The task to map and the chunks to map it over (bad files found on the way)."""
    task = chunk_task(processor, branches, skip_bad_files)
    chunking = make_chunks(
        fileset, chunksize, tree=tree, branches=task.branches, skip_bad_files=skip_bad_files
    )
    return task, chunking


def chunk_task(
    processor: Processor | Callable, branches: Sequence[str] | None, skip_bad_files: bool
) -> ChunkTask:
    """The task a run maps over chunks, for a Processor or a plain function.

    A plain function gets the events of `branches`, or the chunk itself without them.
    """
    if isinstance(processor, Processor):
        return ChunkTask(processor.process, tuple(branches or processor.branches), skip_bad_files)
    if not callable(processor):
        raise TypeError(f"a processor must be a Processor or a function, not {processor!r}")
    if branches:
        return ChunkTask(EventsFunction(processor), tuple(branches), skip_bad_files)
    return ChunkTask(processor, (), skip_bad_files)


def _result(processor: object, output: RunOutput, bad_files: list[BadFile]) -> RunResult:
    value = output.value
    if isinstance(processor, Processor):
        value = processor.postprocess(value)
    seen = {(bad.dataset, bad.file): bad for bad in [*bad_files, *output.bad_files]}
    chunks = sorted(output.reports, key=lambda report: report.chunk)
    return RunResult(value, chunks, list(seen.values()))
