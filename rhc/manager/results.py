# SPDX-License-Identifier: BSD-3-Clause
"""Collecting a job's results in the notebook: each task counted once, whatever arrives twice.

No Redis here: the job loop feeds it verified messages.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterable
from typing import NamedTuple

from rhc.errors import JobIncompleteError, MergeError, TaskError
from rhc.manager.progress import Progress
from rhc.wire.protocol import PARTIAL, PROGRESS, RESULTS, Failure, ResultMessage
from rhc.wire.serialization import loads

_MISSING = object()


class SpanSet:
    """A set of task indices kept as sorted, disjoint [start, stop) intervals."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._stops: list[int] = []
        self.size = 0

    def overlaps(self, start: int, stop: int) -> bool:
        index = bisect.bisect_right(self._starts, start) - 1
        if index >= 0 and self._stops[index] > start:
            return True
        return index + 1 < len(self._starts) and self._starts[index + 1] < stop

    def add(self, start: int, stop: int) -> None:
        """Add [start, stop), which must not overlap what is there."""
        index = bisect.bisect_right(self._starts, start)
        self._starts.insert(index, start)
        self._stops.insert(index, stop)
        self.size += stop - start
        if index + 1 < len(self._starts) and self._starts[index + 1] == stop:
            self._stops[index] = self._stops.pop(index + 1)
            self._starts.pop(index + 1)
        if index > 0 and self._stops[index - 1] == start:
            self._stops[index - 1] = self._stops.pop(index)
            self._starts.pop(index)


class MapResults:
    """Per-task values in input order; the first report of a task wins."""

    def __init__(self) -> None:
        self.values: list[object] = []
        self.failures: dict[int, Failure] = {}
        self.completed: list[int] = []

    @property
    def count(self) -> int:
        return len(self.completed)

    def add(
        self, spans: Iterable[tuple[int, int]], values: list, failures: Iterable[Failure]
    ) -> list[int]:
        """Record a batch's outcome; return the tasks it completed for the first time."""
        failed = {failure.task: failure for failure in failures}
        fresh: list[int] = []
        pending = iter(values)
        for first, count in spans:
            if len(self.values) < first + count:
                self.values.extend([_MISSING] * (first + count - len(self.values)))
            for task in range(first, first + count):
                failure = failed.get(task)
                value = _MISSING if failure is not None else next(pending)
                if self.values[task] is not _MISSING or task in self.failures:
                    continue
                if failure is not None:
                    self.failures[task] = failure
                else:
                    self.values[task] = value
                fresh.append(task)
        self.completed.extend(fresh)
        return fresh

    def value(self, task: int) -> object:
        return self.values[task]


class MergedResult:
    """One value merged from partial results that cover disjoint sets of tasks."""

    def __init__(self, reducer: Callable[[object, object], object]) -> None:
        self._reducer = reducer
        self.covered = SpanSet()
        self.value: object = None
        self.has_value = False
        self.failures: dict[int, Failure] = {}
        self.partials = 0
        """How many partial results were merged: about one per worker."""

    def add(
        self,
        spans: Iterable[tuple[int, int]],
        value: object,
        has_value: bool,
        failures: Iterable[Failure],
    ) -> bool:
        """Merge a partial result; False (and nothing merged) if it overlaps what is merged,
        or itself."""
        spans = sorted(spans)
        if any(self.covered.overlaps(first, first + count) for first, count in spans):
            return False
        if any(a + n > b for (a, n), (b, _) in itertools.pairwise(spans)):
            return False
        for first, count in spans:
            self.covered.add(first, first + count)
        for failure in failures:
            self.failures.setdefault(failure.task, failure)
        self.partials += 1
        if has_value:
            self.value = self._merge(self.value, value) if self.has_value else value
            self.has_value = True
        return True

    def _merge(self, merged: object, value: object) -> object:
        try:
            return self._reducer(merged, value)
        except Exception as exc:  # the user's reduce: any error is theirs to see, with context
            name = getattr(self._reducer, "__qualname__", type(self._reducer).__name__)
            raise MergeError(
                f"the reduce function {name} failed merging two workers' partial results in the "
                f"notebook: {type(exc).__name__}: {exc}"
            ) from exc


class Added(NamedTuple):
    """What recording one message did: taken or refused, and the failures it reported first."""

    accepted: bool
    failures: list[TaskError]


class Collector:
    """Everything one job's workers reported, from verified messages: values in input order or
    one merged value, the failures as TaskErrors, and how far the job is."""

    def __init__(
        self,
        job_id: str,
        reducer: Callable | None,
        argument_of: Callable[[int], object],
        *,
        max_payload: int,
    ) -> None:
        self._job_id = job_id
        self._max_payload = max_payload
        self._argument_of = argument_of
        self.map = MapResults()
        self.merged = MergedResult(reducer) if reducer is not None else None
        self._processed = SpanSet()
        self.errors: dict[int, TaskError] = {}

    def add(self, message: ResultMessage, body: bytes) -> Added:
        """Record a message: a partial result that overlaps merged ones is refused whole."""
        fresh = self._errors_of(message)
        if message.kind == RESULTS:
            values = self._load(body, f"results of job {self._job_id}") if message.has_value else []
            self.map.add(message.spans, values, message.failures)
        elif message.kind == PROGRESS:
            for first, count in message.spans:
                if not self._processed.overlaps(first, first + count):
                    self._processed.add(first, first + count)
        elif message.kind == PARTIAL:
            value = (
                self._load(body, f"merged result of job {self._job_id}")
                if message.has_value
                else None
            )
            if not self.merged.add(message.spans, value, message.has_value, message.failures):
                return Added(accepted=False, failures=[])
        for error in fresh:
            self.errors[error.task] = error
        return Added(accepted=True, failures=fresh)

    def _load(self, body: bytes, what: str) -> object:
        return loads(body, what=what, limit=self._max_payload)

    def _errors_of(self, message: ResultMessage) -> list[TaskError]:
        return [
            TaskError(
                task=failure.task,
                argument=self._argument_of(failure.task),
                kind=failure.kind,
                error_type=failure.error_type,
                message=failure.message,
                remote_traceback=failure.traceback,
                worker=message.worker,
            )
            for failure in message.failures
            if failure.task not in self.errors
        ]

    def progress(self, total: int | None) -> Progress:
        if self.merged is None:
            return Progress(self.map.count, len(self.map.failures), total)
        done = max(self._processed.size, self.merged.covered.size)
        return Progress(done, len(self.merged.failures), total)

    def complete(self, total: int | None) -> bool:
        if total is None:
            return False
        if self.merged is not None:
            return self.merged.covered.size >= total
        return self.map.count >= total

    def value(self) -> object:
        """The results in input order, failed tasks as TaskErrors; or the merged value."""
        if self.merged is not None:
            return self.merged.value
        missing = [task for task, value in enumerate(self.map.values) if value is _MISSING]
        missing = [task for task in missing if task not in self.errors]
        if missing:  # never a placeholder for a result: say what is missing
            raise JobIncompleteError(
                f"job {self._job_id} ended without the results of {len(missing)} task(s), e.g. "
                f"task {missing[0]}"
            )
        if not self.errors:
            return self.map.values
        return [self.errors.get(task, value) for task, value in enumerate(self.map.values)]

    def completed_since(self, seen: int) -> list[tuple[int, object]]:
        """(task, result) of the tasks finished after the first `seen`, in completion order."""
        return [
            (task, self.errors.get(task, self.map.values[task]))
            for task in self.map.completed[seen:]
        ]
