# SPDX-License-Identifier: BSD-3-Clause
"""Running a processor over a fileset: chunk, execute on the workers (merging there first),
accumulate, postprocess. Also the same loop in this process, to debug or to compare."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

from rhc.errors import ArgumentError
from rhc.manager import JobOptions, Manager, check_names
from rhc.nanoaod.chunks import (
    DEFAULT_CHUNKSIZE,
    DEFAULT_TREE,
    BadFile,
    Chunk,
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
from rhc.nanoaod.rootfile import save
from rhc.nanoaod.timeline import Summary, TaskSpan, plot_timeflow, summarize


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

    def save(self, path: str | Path) -> list[str]:
        """Write the value's histograms (one per dataset where they have a dataset axis:
        `mass/DY`) and dicts of numbers (`sumw`) to a new ROOT file, read back with
        `uproot.open(path)["mass/DY"]`; see rhc.nanoaod.rootfile for the names.

        Returns:
          The names written.

        Raises:
          NothingToSaveError: the value holds no histogram and no dict of numbers.
        """
        return save(self.value, path)


@dataclass(frozen=True)
class RunOptions:
    """How a fileset is cut into chunks and read: the options run and run_locally share.

    Parameters:
      chunksize: entries per chunk, the unit of work.
      branches: the branches a plain function of events reads (a Processor names its own).
      tree: the tree to read.
      skip_bad_files: leave out files that cannot be read, listing them in the result,
        instead of raising.
      redirectors: XRootD redirectors (root://host/) to try a root:// file, or a CMS logical
        file name (/store/...), at in turn when it cannot be opened; run() takes the
        `xrootd_redirectors` setting when none are given.
    """

    chunksize: int = DEFAULT_CHUNKSIZE
    branches: Sequence[str] | None = None
    tree: str = DEFAULT_TREE
    skip_bad_files: bool = False
    redirectors: Sequence[str] = ()

    @classmethod
    def split(
        cls, options: Mapping[str, object], *, caller: str, job_options: Sequence[str] = ()
    ) -> tuple[RunOptions, dict[str, object]]:
        """These options out of `options`, and the rest: those of the job (`job_options`).

        Raises:
          ArgumentError: an option that is neither (named, with the ones that exist).
        """
        names = tuple(field.name for field in fields(cls))
        check_names(options, (*names, *job_options), caller=caller)
        own = {name: value for name, value in options.items() if name in names}
        return cls(**own), {name: options[name] for name in options if name not in own}


JOB_OPTIONS = tuple(name for name in JobOptions.names() if name not in ("reduce", "affinity"))
"""The job options a run takes from its caller: it merges and routes chunks itself."""


def run(
    manager: Manager,
    processor: Processor | Callable,
    fileset: Fileset,
    *,
    progress: bool = True,
    **options: object,
) -> RunResult:
    """Run a processor over a fileset on the workers of `manager`, merging on them first.

    Parameters:
      processor: a rhc.nanoaod.Processor, or a function of the events of `branches` (or of
        a rhc.nanoaod.Chunk when no branches are named).
      fileset: {dataset: [paths or URLs]}, or a list of them.
      progress: show a progress bar.
      options: those of RunOptions (chunksize, branches, tree, skip_bad_files), and the job's
        timeout, retries and return_exceptions (rhc.manager.JobOptions).

    Returns:
      RunResult: the value, a report per chunk, the bad files; its summary() and
      plot_timeline() show how the run went.
    """
    plan, job_options = RunOptions.split(options, caller="run", job_options=JOB_OPTIONS)
    if not plan.redirectors:
        plan = replace(plan, redirectors=manager.settings.xrootd_redirectors)
    task, chunking = _plan(processor, fileset, plan)
    chunks = _by_worker(
        chunking.chunks, manager.cached_on([chunk.key for chunk in chunking.chunks])
    )
    output = manager.remote_map(
        task,
        chunks,
        progress=progress,
        reduce=merge_outputs,
        affinity=[chunk.key for chunk in chunks],
        **job_options,
    )
    return _result(processor, output or RunOutput(), chunking.bad_files)


def run_locally(processor: Processor | Callable, fileset: Fileset, **options: object) -> RunResult:
    """The same run as a loop in this process: to debug a processor, or as a baseline.

    Parameters:
      options: those of RunOptions, as for run.
    """
    plan, _ = RunOptions.split(options, caller="run_locally")
    task, chunking = _plan(processor, fileset, plan)
    reader = Reader()  # files stay open from chunk to chunk, as on a worker
    outputs = (task(chunk, reader) for chunk in chunking.chunks)
    output = functools.reduce(merge_outputs, outputs, RunOutput())
    return _result(processor, output, chunking.bad_files)


def _by_worker(chunks: list[Chunk], workers: list[str | None]) -> list[Chunk]:
    """The chunks each worker cached, next to one another (in their order otherwise): a batch
    is a run of consecutive tasks, so a re-run can send a worker several of its chunks at once
    rather than one per message."""
    order = sorted(range(len(chunks)), key=lambda index: workers[index] or "")
    return [chunks[index] for index in order]


def _plan(
    processor: Processor | Callable, fileset: Fileset, plan: RunOptions
) -> tuple[ChunkTask, Chunking]:
    """The task to map and the chunks to map it over (bad files found on the way)."""
    task = replace(
        chunk_task(processor, plan.branches, plan.skip_bad_files),
        redirectors=tuple(plan.redirectors),
        chunksize=plan.chunksize,
    )
    chunking = make_chunks(
        fileset,
        plan.chunksize,
        tree=plan.tree,
        branches=task.branches,
        skip_bad_files=plan.skip_bad_files,
        redirectors=plan.redirectors,
    )
    return task, chunking


def chunk_task(
    processor: Processor | Callable, branches: Sequence[str] | None, skip_bad_files: bool
) -> ChunkTask:
    """The task a run maps over chunks, for a Processor or a plain function.

    A plain function gets the events of `branches`, or the chunk itself without them. Only the
    required branches make a file bad when it lacks them (make_chunks checks them), not a
    Processor's optional_branches.
    """
    if isinstance(processor, Processor):
        return ChunkTask(
            processor.process,
            tuple(branches or processor.branches),
            skip_bad_files,
            optional_branches=tuple(processor.optional_branches),
        )
    if not callable(processor):
        raise ArgumentError(f"a processor must be a Processor or a function, not {processor!r}")
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
