# SPDX-License-Identifier: BSD-3-Clause
"""What runs on the workers for rhc.coffea.Executor: coffea's function on one item, once the
worker's coffea is checked to be the notebook's, and what it gave as an Outcome.

An Outcome carries the item's accumulator, its span on the timeline, the warnings it raised
(coffea reports a skipped bad file with one) and the exception it raised, if it did: workers
merge outcomes with merge() before the notebook does, so one value per worker travels, and the
exception travels as a value, pickled, to be raised again in the notebook with its type and
causes (coffea's Runner tells skippable errors by their types).
"""

from __future__ import annotations

import time
import traceback
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Sized
from dataclasses import dataclass, field
from itertools import pairwise

import cloudpickle
import coffea
from coffea.processor import accumulate

from rhc.errors import NotInWorkerError, RhcError, VersionMismatchError, short_repr
from rhc.nanoaod.timeline import TaskSpan
from rhc.worker import MemoryCache, get_worker

MAX_WARNINGS = 100
"""Distinct warnings an outcome keeps (each with its count): NanoAODSchema warns per chunk."""

MAX_CAUSES = 16
"""Exceptions of a chain (the raised one and its causes) kept."""


class RemoteExceptionError(RhcError):
    """Raised in the notebook in place of an exception a worker could not send back (it could
    not be pickled, or not unpickled): its type, message and the worker's traceback."""


@dataclass(frozen=True)
class Warned:
    """A warning raised on a worker, where it was raised, to be raised again in the notebook."""

    category: type[Warning]
    message: str
    filename: str
    lineno: int

    def emit(self) -> None:
        warnings.warn_explicit(self.message, self.category, self.filename, self.lineno)


@dataclass(frozen=True)
class ItemFailure:
    """The exception an item raised on a worker: pickled with each of its causes (pickle keeps
    no __cause__), and the worker's traceback."""

    index: int
    worker: str
    chain: tuple[bytes, ...]
    traceback: str

    @classmethod
    def of(cls, index: int, worker: str, exc: Exception) -> ItemFailure:
        chain, current = [], exc
        while isinstance(current, BaseException) and len(chain) < MAX_CAUSES:
            chain.append(_pickled(current))
            current = current.__cause__
        frames = exc.__traceback__
        if frames is not None and frames.tb_next is not None:
            frames = frames.tb_next  # the frame that called coffea's function is ours
        remote = "".join(traceback.format_exception(type(exc), exc, frames))
        return cls(index, worker, tuple(chain), remote)

    def exception(self, item: object) -> BaseException:
        """The exception as it was raised on the worker, its causes linked again, with a note
        saying where it was raised, on which item, and the worker's traceback."""
        chain = [_unpickled(data, self.traceback) for data in self.chain]
        for outer, inner in pairwise(chain):
            outer.__cause__ = inner
        error = chain[0]
        if hasattr(error, "add_note"):  # Python 3.11+; str(): coffea's FileMeta names its file
            error.add_note(
                f"raised on rhc worker {self.worker} by item {short_repr(item, render=str)}\n"
                f"Remote traceback:\n{self.traceback.rstrip()}"
            )
        return error


@dataclass
class Outcome:
    """What some items gave on the workers, merged: coffea's accumulator (None if nothing was
    returned), a span per item run, the distinct warnings raised with their counts, and the
    first failure (by item index)."""

    value: object = None
    spans: list[TaskSpan] = field(default_factory=list)
    warned: Counter[Warned] = field(default_factory=Counter)
    failure: ItemFailure | None = None


def merge(a: Outcome, b: Outcome) -> Outcome:
    """The reduce of the executor's jobs: accumulators merge with coffea's accumulate, as
    coffea's own executors merge them."""
    a.value = accumulate([b.value], a.value)
    a.spans += b.spans
    for warned, count in b.warned.items():
        if warned in a.warned or len(a.warned) < MAX_WARNINGS:
            a.warned[warned] += count
    if b.failure is not None and (a.failure is None or b.failure.index < a.failure.index):
        a.failure = b.failure
    return a


@dataclass(eq=False)
class CoffeaTask:
    """coffea's function (the closure Runner made, pickled) applied to (index, item) on a
    worker, which must have the coffea of the notebook it came from, or it refuses.

    The function is unpickled only once the version is checked: under another coffea it might
    not load, or worse, load and compute something else.
    """

    function: bytes
    coffea_version: str
    run: str = field(default_factory=lambda: uuid.uuid4().hex)
    """Makes each job's task its own: a worker keeps a loaded task by its digest, and what
    _loaded says of one job (an item failed) must not carry over to the next."""
    _loaded: dict = field(default_factory=dict, init=False, repr=False)
    """Worker side: the function once unpickled, and whether an item of this job failed here."""

    def __call__(self, argument: tuple[int, object]) -> Outcome:
        index, item = argument
        worker = _worker_name()
        self._check_version(worker)
        if self._loaded.get("failed"):
            return Outcome()  # an item failed here already, so the run fails: spend no more
        function = self._function()
        started = time.time()
        failure = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                value = function(item)
            except Exception as exc:  # the user's processor or coffea: raised in the notebook
                self._loaded["failed"] = True
                value, failure = None, ItemFailure.of(index, worker, exc)
        # coffea's function returns None for an item whose bad file it skipped
        events = len(item) if isinstance(item, Sized) and value is not None else 0
        warned = Counter(
            Warned(record.category, str(record.message), record.filename, record.lineno)
            for record in caught
        )
        span = TaskSpan(worker, started, time.time(), events)
        return Outcome(value, [span], Counter(dict(warned.most_common(MAX_WARNINGS))), failure)

    def _check_version(self, worker: str) -> None:
        if coffea.__version__ != self.coffea_version:
            raise VersionMismatchError(
                f"worker {worker} has coffea {coffea.__version__}, and this job comes from a "
                f"notebook with coffea {self.coffea_version}: the worker refuses to run it, as "
                "a processor may compute something else under another coffea. Start workers "
                f"from an environment with coffea {self.coffea_version}"
            )

    def _function(self) -> Callable:
        if "function" not in self._loaded:
            self._loaded["function"] = cloudpickle.loads(self.function)
        return self._loaded["function"]


def worker_cache() -> MemoryCache | None:
    """For coffea's Runner(cachestrategy=rhc.coffea.worker_cache): NanoEvents keeps the column
    buffers it reads in the worker's memory cache (rhc.get_worker().cache, within its budget),
    and the executor sends each chunk back to the worker that read it: a second run over the
    same chunks reads and decompresses none of them again. None outside a worker."""
    try:
        return get_worker().cache
    except NotInWorkerError:
        return None


def _worker_name() -> str:
    try:
        return get_worker().name
    except NotInWorkerError:
        return "local"


def _pickled(exc: BaseException) -> bytes:
    """The exception pickled, if it also unpickles (an exception whose __init__ takes other
    arguments than its args pickles, and fails to load); otherwise what stands in for it."""
    try:
        data = cloudpickle.dumps(exc)
        cloudpickle.loads(data)
        return data
    except Exception:  # anything pickle raises for an object it cannot rebuild
        return cloudpickle.dumps(RemoteExceptionError(f"{type(exc).__qualname__}: {exc}"))


def _unpickled(data: bytes, remote: str) -> BaseException:
    try:
        return cloudpickle.loads(data)
    except Exception as exc:  # e.g. its module is missing in the notebook
        return RemoteExceptionError(f"an exception that cannot be loaded here ({exc}):\n{remote}")
