# SPDX-License-Identifier: BSD-3-Clause
"""rhc.coffea.Executor: coffea's Runner runs its two phases (each file's metadata, then the
chunks) as rhc jobs, merged on the workers, each item routed to the worker that read its data.

    from coffea import processor
    from coffea.nanoevents import NanoAODSchema
    import rhc.coffea

    executor = rhc.coffea.Executor(Manager())
    runner = processor.Runner(executor=executor, schema=NanoAODSchema, chunksize=100_000)
    output = runner(fileset, treename="Events", processor_instance=MyProcessor())
    executor.last_run.plot_timeline()
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import cloudpickle
import coffea
from coffea.processor import accumulate
from coffea.processor.executor import ExecutorBase, FileMeta, WorkItem

from rhc.coffea.record import PREPROCESSING, PROCESSING, Phase, RunRecord
from rhc.coffea.task import CoffeaTask, Outcome, merge
from rhc.errors import ArgumentError, VersionMismatchError
from rhc.manager import JobOptions, Manager, check_names


@dataclass
class _Fields(ExecutorBase):
    """The executor's settings: all of them constructor arguments, since coffea's copy()
    rebuilds an executor from its __dict__."""

    manager: Manager | None = None
    retries: int = 3
    timeout: float | None = None
    crash_retries: int | None = None
    last_run: RunRecord = field(default_factory=RunRecord, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.manager, Manager):
            raise ArgumentError(f"Executor needs an rhc Manager, not {self.manager!r}")
        if not isinstance(self.retries, int) or self.retries < 0:
            raise ArgumentError(f"retries must be 0 or more, not {self.retries!r}")
        JobOptions(timeout=self.timeout, retries=self.crash_retries)  # refuses bad values


@dataclass(init=False)
class Executor(_Fields):
    """Runs coffea's Runner on rhc workers: `Runner(executor=Executor(manager), ...)`.

    Both phases run as rhc jobs on the manager's workers. Each worker merges what its items
    return with coffea's accumulate, so about one partial result per worker reaches the notebook;
    each item goes to the worker that last read its data (its caches hold it), and idle workers
    take the rest. Workers must have the notebook's coffea: a run is refused before it starts
    when a live worker lacks it, and a worker with another that joins later refuses its items.

    Parameters:
      manager: the rhc Manager whose workers run the items.
      retries: coffea's: how often coffea's Runner retries an item that raises (on the worker);
        with skipbadfiles, a file still failing after them is skipped with a warning.
      timeout: seconds one item may run before rhc stops it (a failed attempt).
      crash_retries: how often rhc runs an item again whose worker process died (segfault,
        out of memory, a killed worker) or timed out; default: rhc's max_attempts - 1.
      status, unit, desc, function_name: coffea's; status shows rhc's progress bar.
      compression: accepted and ignored: rhc compresses what it sends already.
      last_run: how the last run went (phases, spans per item), shared with the copies coffea's
        Runner makes: `executor.last_run.plot_timeline()`, `.summary()`.

    Raises:
      ArgumentError: no Manager, or a bad value.
    """

    def __init__(self, manager: Manager | None = None, **fields: object) -> None:
        names = [setting.name for setting in dataclasses.fields(_Fields)]
        check_names(fields, [name for name in names if name != "manager"], caller="Executor")
        super().__init__(manager=manager, **fields)

    def __call__(
        self, items: Iterable, function: Callable, accumulator: object
    ) -> tuple[object, int]:
        """Run function on every item on the workers; return (the accumulator with every
        item's output merged into it, 0), as coffea's executors do.

        Raises:
          VersionMismatchError: no live worker has this notebook's coffea.
          TaskError: an item's process died or timed out too often, or its worker refused it.
          Exception: what an item raised, as coffea's function raised it, with its causes.
        """
        items = list(items)
        if not items:
            return accumulator, 0
        version = coffea.__version__
        check_workers(self.manager, version)
        started = time.monotonic()
        job = self.manager.submit(
            CoffeaTask(cloudpickle.dumps(function), version),
            list(enumerate(items)),
            reduce=merge,
            affinity=[data_key(item) for item in items],
            timeout=self.timeout,
            retries=self.crash_retries,
        )
        try:
            outcome = job.results(progress=self.status) or Outcome()
        except BaseException:  # an interrupt in the notebook stops the workers too
            job.cancel()
            raise
        self.last_run.add(
            Phase(
                name=PREPROCESSING if isinstance(items[0], FileMeta) else PROCESSING,
                job=job.id,
                items=len(items),
                partials=job.partials or 0,
                seconds=time.monotonic() - started,
                spans=tuple(sorted(outcome.spans, key=lambda span: span.started)),
            )
        )
        for warned in outcome.warned:
            warned.emit()
        if outcome.failure is not None:
            raise outcome.failure.exception(items[outcome.failure.index])
        return accumulate([outcome.value], accumulator), 0


def data_key(item: FileMeta | WorkItem) -> str:
    """The affinity key of an item: the file it reads. Its metadata and its chunks go to the
    worker that read the file before, whose caches hold the file's header and baskets (a first
    read of a remote file costs ten times the next ones); idle workers take chunks all the same."""
    return hashlib.sha256(f"{item.filename}\0{item.treename}".encode()).hexdigest()[:24]


def check_workers(manager: Manager, version: str) -> None:
    """Refuse a run that a live worker could not compute with this notebook's coffea: tasks go to
    any worker of the namespace, and one with another coffea (or none) would fail the items it
    takes. With no live worker, there is nothing to check: a worker that starts later still
    refuses items if its coffea differs.

    Raises:
      VersionMismatchError: naming each coffea the workers have, and what to do.
    """
    workers = manager.workers().runnable
    others: dict[str, list[str]] = defaultdict(list)
    for info in workers:
        theirs = info.versions.get("coffea", "")
        if theirs != version:
            others[theirs].append(info.name)
    if not others:
        return
    found = "; ".join(
        f"{_names(names)} {'has' if len(names) == 1 else 'have'} "
        f"{f'coffea {theirs}' if theirs else 'no coffea'}"
        for theirs, names in others.items()
    )
    some = "no worker" if sum(map(len, others.values())) == len(workers) else "not every worker"
    raise VersionMismatchError(
        f"{some} has this notebook's coffea {version}: {found}. A processor runs only with the "
        f"coffea it was written for, and any worker may take its items: run coffea workers "
        f"(the rhc/worker-coffea image: `rhc condor submit --image rhc/worker-coffea:<version>`, "
        f"or pip install 'coffea=={version}' beside rhc) and stop the others, or run this "
        "notebook with the workers' coffea"
    )


def _names(names: list[str], shown: int = 5) -> str:
    listed = ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if names[shown:] else "")
    return f"{'worker' if len(names) == 1 else 'workers'} {listed}"
