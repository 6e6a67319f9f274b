# SPDX-License-Identifier: BSD-3-Clause
"""Turning a job's arguments into signed task batches, and remembering each batch until it is
finished, so the manager always knows what it sent and can send again what Redis lost."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from rhc.batching import BatchSizer
from rhc.errors import ARGUMENT_UNAVAILABLE, PayloadTooLargeError, SerializationError
from rhc.protocol import TaskBatch, task_entry
from rhc.serialization import dumps, loads, seal


@dataclass(frozen=True)
class JobSpec:
    """How every task of a job runs."""

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
    processed: bool = False


class Dispatcher:
    """Cuts the argument stream into batches sized by a BatchSizer; no Redis here."""

    def __init__(
        self,
        spec: JobSpec,
        arguments: Iterator,
        length: int | None,
        *,
        secret: bytes,
        max_payload: int,
        sizer: BatchSizer,
    ) -> None:
        self.spec = spec
        self.sizer = sizer
        self.sent: dict[int, SentBatch] = {}
        self.in_flight = 0
        self.total: int | None = None
        self._arguments = arguments
        self._length = length
        self._secret = secret
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
        return self._next_task

    def next_batches(self, window: int, workers: int) -> list[SentBatch]:
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
            fresh.extend(self._pack(arguments))
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

    def _pack(self, arguments: list) -> list[SentBatch]:
        first = self._next_task
        what = f"argument {first}" if len(arguments) == 1 else "the arguments"
        try:
            body = dumps(arguments, what=what, limit=self._max_payload)
        except PayloadTooLargeError:
            if len(arguments) == 1:
                raise
            half = len(arguments) // 2
            return self._pack(arguments[:half]) + self._pack(arguments[half:])
        except SerializationError:
            for offset, argument in enumerate(arguments):  # name the culprit
                dumps(argument, what=f"argument {first + offset}", limit=self._max_payload)
            raise
        spec = self.spec
        batch = TaskBatch(
            job=spec.job_id,
            batch=self._next_number,
            first=first,
            count=len(arguments),
            function=spec.function,
            max_attempts=spec.max_attempts,
            result_ttl=spec.result_ttl,
            timeout=spec.timeout,
            reduce=spec.reduce,
        )
        fields = task_entry(spec.job_id, batch.batch, seal(self._secret, batch.header(), body))
        sent = SentBatch(batch.batch, first, batch.count, fields, body)
        self.sent[sent.number] = sent
        self.in_flight += 1
        self._next_number += 1
        self._next_task += batch.count
        return [sent]

    def processed(self, number: int) -> None:
        """A merged job's batch ran; its result waits, merged, on a worker."""
        sent = self.sent.get(number)
        if sent is not None and not sent.processed:
            sent.processed = True
            self.in_flight -= 1

    def settle(self, number: int) -> None:
        """A batch's result is stored and counted: forget it."""
        sent = self.sent.pop(number, None)
        if sent is not None and not sent.processed:
            self.in_flight -= 1

    def lost(self, queued: set[int]) -> list[SentBatch]:
        """Batches neither finished nor in any queue: to send again."""
        missing = [sent for number, sent in self.sent.items() if number not in queued]
        for sent in missing:
            if sent.processed:
                sent.processed = False
                self.in_flight += 1
        return missing

    def argument(self, task: int) -> object:
        """The argument of a task still in flight, for error reports."""
        for sent in self.sent.values():
            if sent.first <= task < sent.first + sent.count:
                return loads(sent.arguments, what="arguments")[task - sent.first]
        return ARGUMENT_UNAVAILABLE
