# SPDX-License-Identifier: BSD-3-Clause
"""Turning a job's arguments into signed task batches, and remembering each batch until it is
finished, so the manager always knows what it sent and can send again what Redis lost."""

from __future__ import annotations

import itertools
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from rhc.errors import (
    ARGUMENT_UNAVAILABLE,
    ArgumentError,
    PayloadTooLargeError,
    SerializationError,
)
from rhc.manager.batching import BatchSizer, TaskTime
from rhc.wire.protocol import TaskBatch, task_entry
from rhc.wire.serialization import dumps, loads, sign
from rhc.wire.signing import TaskKey


@dataclass(frozen=True)
class JobSpec:
    """How every task of a job runs."""

    namespace: str
    job_id: str
    function: str
    reduce: bool
    timeout: float | None
    max_attempts: int
    result_ttl: float


@dataclass
class SentBatch:
    """A batch sent and not yet finished: the entry to send again, the arguments to report."""

    number: int
    first: int
    count: int
    fields: dict[str, object]
    arguments: bytes
    route: str | None = None
    processed: bool = False


class Dispatcher:
    """Cuts the argument stream into batches sized by a BatchSizer; no Redis here."""

    def __init__(
        self,
        spec: JobSpec,
        arguments: Iterator,
        length: int | None,
        *,
        key: TaskKey,
        max_payload: int,
        sizer: BatchSizer,
    ) -> None:
        self.spec = spec
        self.sizer = sizer
        self.sent: dict[int, SentBatch] = {}
        self.in_flight = 0
        self.in_flight_by_route: Counter[str | None] = Counter()
        self.total: int | None = None
        self._departed: set[str] = set()
        self._sent_tasks = 0
        self._arguments = arguments
        self._length = length
        self._key = key
        self._max_payload = max_payload
        self._buffer: deque = deque()
        self._next_number = 0
        self._next_task = 0

    @property
    def sending_done(self) -> bool:
        return self.total is not None and not self._buffer

    @property
    def expected_total(self) -> int | None:
        """The number of tasks: exact once the input is exhausted, its len() before that."""
        return self.total if self.total is not None else self._length

    @property
    def submitted(self) -> int:
        return self._sent_tasks

    @property
    def routes(self) -> set[str]:
        """Every worker this job sends tasks to directly (none: all go to the shared stream)."""
        return set()

    def next_batches(self, window: int, workers: int, alive: set[str]) -> list[SentBatch]:
        """Cut batches until `window` are in flight or the arguments run out.

        Raises:
          SerializationError, PayloadTooLargeError: an argument cannot travel; it is named.
        """
        fresh: list[SentBatch] = []
        # One size for the whole round: re-sizing after each batch would split what is left
        # into ever smaller batches instead of one share per worker.
        size = self.sizer.next_size(self._remaining(), workers)
        while self.in_flight < window:
            self._fill(2 * size + 1)
            if not self._buffer:
                break
            arguments = [self._buffer.popleft() for _ in range(min(size, len(self._buffer)))]
            fresh.extend(self._pack(arguments, self._next_task))
            self._next_task += len(arguments)
        return fresh

    def _remaining(self) -> int | None:
        """Tasks still to send: exact once the input is exhausted, else from its len(), if any."""
        if self.total is not None:
            return len(self._buffer)
        if self._length is not None:
            return max(self._length - self._next_task, len(self._buffer))
        return None

    def _fill(self, wanted: int) -> None:
        if self.total is None and len(self._buffer) < wanted:
            self._buffer.extend(itertools.islice(self._arguments, wanted - len(self._buffer)))
            if len(self._buffer) < wanted:
                self.total = self._next_task + len(self._buffer)

    def _pack(self, arguments: Sequence, first: int, route: str | None = None) -> list[SentBatch]:
        what = f"argument {first}" if len(arguments) == 1 else "the arguments"
        try:
            body = dumps(arguments, what=what, limit=self._max_payload)
        except PayloadTooLargeError:
            if len(arguments) == 1:
                raise
            half = len(arguments) // 2
            return self._pack(arguments[:half], first, route) + self._pack(
                arguments[half:], first + half, route
            )
        except SerializationError:
            for offset, argument in enumerate(arguments):  # name the culprit
                dumps(argument, what=f"argument {first + offset}", limit=self._max_payload)
            raise
        number = self._next_number
        fields = self._entry(number, first, len(arguments), body)
        sent = SentBatch(number, first, len(arguments), fields, body, route)
        self.sent[sent.number] = sent
        self._count_in_flight(sent, +1)
        self._next_number += 1
        self._sent_tasks += sent.count
        return [sent]

    def _entry(self, number: int, first: int, count: int, body: bytes) -> dict[str, object]:
        """A batch's task entry, signed now, valid for result_ttl."""
        spec = self.spec
        batch = TaskBatch(
            namespace=spec.namespace,
            job=spec.job_id,
            batch=number,
            first=first,
            count=count,
            function=spec.function,
            max_attempts=spec.max_attempts,
            result_ttl=spec.result_ttl,
            not_after=time.time() + spec.result_ttl,
            timeout=spec.timeout,
            reduce=spec.reduce,
        )
        return task_entry(spec.job_id, number, sign(self._key, batch.header(), body))

    def departed_routes(self, alive: set[str]) -> list[str]:
        """Workers that left while batches were routed to them, each named once per departure
        (one seen alive again may leave again). A batch routed just as its worker deregistered
        lands in a stream nobody reads any more: it must be moved to the shared stream."""
        departed = [
            route
            for route, count in self.in_flight_by_route.items()
            if route and count > 0 and route not in alive and route not in self._departed
        ]
        self._departed = (self._departed - alive) | set(departed)
        return departed

    def _count_in_flight(self, sent: SentBatch, change: int) -> None:
        self.in_flight += change
        self.in_flight_by_route[sent.route] += change

    def processed(self, number: int) -> None:
        """A merged job's batch ran; its result waits, merged, on a worker."""
        sent = self.sent.get(number)
        if sent is not None and not sent.processed:
            sent.processed = True
            self._count_in_flight(sent, -1)

    def observe(self, numbers: Sequence[int], seconds: float, tasks: int) -> None:
        """Learn from batches that ran (`tasks` tasks in `seconds`), before they are settled."""
        self.sizer.observe(seconds, tasks)

    @property
    def seconds_per_task(self) -> float | None:
        """What a task of this function takes, for the next job running it to start from."""
        return self.sizer.seconds_per_task

    def settle(self, number: int) -> None:
        """A batch's result is stored and counted: forget it."""
        sent = self.sent.pop(number, None)
        if sent is not None and not sent.processed:
            self._count_in_flight(sent, -1)

    def lost(self, queued: set[int]) -> list[SentBatch]:
        """Batches neither finished nor in any queue: to send again, signed anew."""
        missing = [sent for number, sent in self.sent.items() if number not in queued]
        for sent in missing:
            sent.fields = self._entry(sent.number, sent.first, sent.count, sent.arguments)
            if sent.processed:
                sent.processed = False
                self._count_in_flight(sent, +1)
        return missing

    def argument(self, task: int) -> object:
        """The argument of a task still in flight, for error reports."""
        for sent in self.sent.values():
            if sent.first <= task < sent.first + sent.count:
                arguments = loads(sent.arguments, what="arguments", limit=self._max_payload)
                return arguments[task - sent.first]
        return ARGUMENT_UNAVAILABLE


ROUTED_DEPTH = 2
"""Batches queued for one worker at a time: the one it runs and the next; the rest wait here,
free to go to whichever worker runs out of its own."""

ASSUMED_CACHE_SPEEDUP = 6
"""Until a batch of a worker's own tasks has come back, such a task is taken to run this many
times faster than without its cache: the middle of what a NanoAOD re-run gains by reading from
memory what the first run read and decompressed (5-7x in benchmarks/nanoaod.py), so that there
its first batches last about the target, as later ones do. A second run then goes out in a few
batches a worker, not one task a message; where the cache helps less, each worker's first
ROUTED_DEPTH such batches last up to about this many times the target (a little more, for
rounding to whole tasks)."""


class RoutedDispatcher(Dispatcher):
    """For a known list of tasks that each prefer a worker (the one that cached their data):
    a worker's tasks go to its own stream, the others to the shared one, and a worker with
    nothing left of its own takes work that others would reach only later, if they would reach
    it later than it can run it without their cache.

    Parameters:
      cached_speeds: seconds a task took from its worker's cache, by function, from earlier
        jobs and updated by this one: a re-run's own batches are sized for it from the start.
      clock: monotonic seconds, to tell how long a worker has finished nothing.
    """

    def __init__(
        self,
        spec: JobSpec,
        arguments: Sequence,
        routes: Sequence[str | None],
        *,
        key: TaskKey,
        max_payload: int,
        sizer: BatchSizer,
        cached_speeds: dict[str, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if len(routes) != len(arguments):
            raise ArgumentError(f"{len(routes)} routes for {len(arguments)} tasks")
        super().__init__(
            spec, iter(()), len(arguments), key=key, max_payload=max_payload, sizer=sizer
        )
        self.total = len(arguments)
        self._tasks = arguments
        self._queues: dict[str | None, deque[list[int]]] = {None: deque()}
        # a task run by the worker that cached its data, and one run elsewhere: first taken to
        # be the function's time in earlier jobs (a first run reads everything uncached)
        self._cached_speeds = {} if cached_speeds is None else cached_speeds
        self._cached = TaskTime(self._cached_speeds.get(spec.function))
        self._uncached = TaskTime(sizer.seconds_per_task)
        self._clock = clock
        self._heard_from: dict[str, float] = {}
        self._started = clock()
        for route, group in itertools.groupby(range(len(routes)), key=routes.__getitem__):
            tasks = list(group)
            self._queues.setdefault(route, deque()).append([tasks[0], tasks[-1] + 1])

    @property
    def sending_done(self) -> bool:
        return not any(self._queues.values())

    @property
    def routes(self) -> set[str]:
        """Every worker this job sent (or will send) tasks to."""
        return {route for route in (*self._queues, *self.in_flight_by_route) if route}

    def next_batches(self, window: int, workers: int, alive: set[str]) -> list[SentBatch]:
        for route in [r for r in self._queues if r is not None and r not in alive]:
            self._queues[None].extend(self._queues.pop(route))  # its worker is gone
        remaining = self.total - self._sent_tasks
        size = self.sizer.next_size(remaining, workers)
        own = self.sizer.next_size(remaining, workers, seconds_per_task=self._own_task_time())
        fresh: list[SentBatch] = []
        for route, queue in self._queues.items():
            depth = window if route is None else ROUTED_DEPTH
            while queue and self.in_flight < window and self.in_flight_by_route[route] < depth:
                fresh += self._cut(queue, route, own if route else size, from_front=True)
        hungry = workers - sum(1 for route, queue in self._queues.items() if route and queue)
        while self.in_flight < window and self.in_flight_by_route[None] < hungry:
            donor = max(
                ((r, q) for r, q in self._queues.items() if r and q),
                default=None,
                key=lambda item: _count(item[1]),
            )
            if donor is None or not self._worth_stealing(donor):
                break
            fresh += self._cut(donor[1], None, size, from_front=False)  # to the shared stream
        return fresh

    def observe(self, numbers: Sequence[int], seconds: float, tasks: int) -> None:
        super().observe(numbers, seconds, tasks)
        routes = {self.sent[number].route for number in numbers if number in self.sent}
        if routes == {None} or routes & self._departed:  # moved off a worker that left
            self._uncached.observe(seconds, tasks)
        elif routes and None not in routes:
            self._cached.observe(seconds, tasks)
            self._cached_speeds[self.spec.function] = self._cached.seconds_per_task
        now = self._clock()
        self._heard_from.update((route, now) for route in routes if route)

    @property
    def seconds_per_task(self) -> float | None:
        """What a task takes without its cache, as on new data or when stolen: a re-run of
        the job that finds its data cached must not take its cached speed for that. The
        cached speed only where no task ran uncached yet (data cached by another function)."""
        if self._uncached.seconds_per_task is None:
            return self.sizer.seconds_per_task
        return self._uncached.seconds_per_task

    def _own_task_time(self) -> float | None:
        """What a task run by the worker that cached its data is taken to take. (The uncached
        time remembered in Redis is a cached one where only cached tasks ran before, under
        another function or another notebook: then these first batches are larger still, until
        the first comes back.)"""
        if self._cached.seconds_per_task is not None:
            return self._cached.seconds_per_task
        if self._uncached.seconds_per_task is None:
            return None  # nothing known: the sizer's own estimate, if any
        return self._uncached.seconds_per_task / ASSUMED_CACHE_SPEEDUP

    def _worth_stealing(self, donor: tuple[str, deque[list[int]]]) -> bool:
        """Whether a task from the back of a worker's queue runs sooner elsewhere: its owner
        would reach it after its queued tasks (at its cached speed), or has finished nothing
        for as long as a task takes without its cache (it is slow, or stuck)."""
        route, queue = donor
        cached, uncached = self._cached.seconds_per_task, self._uncached.seconds_per_task
        if cached is None or uncached is None:
            return True
        silent = self._clock() - self._heard_from.get(route, self._started)
        return _count(queue) * cached >= uncached or silent >= uncached

    def _cut(
        self, queue: deque[list[int]], route: str | None, size: int, *, from_front: bool
    ) -> list[SentBatch]:
        span = queue[0] if from_front else queue[-1]
        count = min(size, span[1] - span[0])
        if from_front:
            first = span[0]
            span[0] += count
        else:
            span[1] -= count
            first = span[1]
        if span[0] == span[1]:
            queue.remove(span)
        return self._pack(self._tasks[first : first + count], first, route)


def _count(queue: deque[list[int]]) -> int:
    """The tasks in a queue of [first, stop) spans."""
    return sum(stop - start for start, stop in queue)
