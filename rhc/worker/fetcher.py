# SPDX-License-Identifier: BSD-3-Clause
"""The fetcher thread: keeps at most one task entry in hand, reading only when asked.

Blocking reads happen here so the supervisor's loop can wait on its task process, signals and
control notices all at once, and so the next batch arrives while the current one runs. A worker
idle a while reads with longer blocks: fewer round trips for Redis, no later for a task.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from rhc import defaults
from rhc.wire.protocol import TaskEntry

T = TypeVar("T")


class Fetcher(threading.Thread, Generic[T]):
    """Reads task entries on demand; `wake` tells the supervisor something happened.

    read(block) waits up to `block` seconds for entries, each with what was checked of it
    (rhc.worker.store.TaskStore.read).
    """

    def __init__(
        self, read: Callable[[float], list[tuple[TaskEntry, T]]], wake: Callable[[], None]
    ) -> None:
        super().__init__(name="rhc-fetcher", daemon=True)
        self._read = read
        self._wake = wake
        self._condition = threading.Condition()
        self._entries: deque[tuple[TaskEntry, T]] = deque()
        self._wanted = False
        self._stopped = False
        self.empty_streak = 0
        """Empty reads in a row: how long the worker has had nothing to do."""
        self.error: BaseException | None = None
        self._taker: Callable[[], None] | None = None
        self._hand_over = threading.Lock()

    def want(self) -> None:
        """Ask for one more entry, unless one is already in hand."""
        with self._condition:
            if not self._entries:
                self._wanted = True
                self._condition.notify()

    @property
    def block(self) -> float:
        """How long the next read may wait: longer once the worker has been idle a while."""
        if self.empty_streak < defaults.IDLE_FLUSH_READS:
            return defaults.DEFAULT_READ_BLOCK
        return defaults.IDLE_READ_BLOCK

    def take(self) -> tuple[TaskEntry, T] | None:
        with self._condition:
            return self._entries.popleft() if self._entries else None

    def drain(self) -> list[TaskEntry]:
        """Every entry in hand, for handing back."""
        with self._condition:
            entries = [entry for entry, _ in self._entries]
            self._entries.clear()
            return entries

    @contextlib.contextmanager
    def parked(self, take: Callable[[], None]) -> Iterator[None]:
        """While in this block (its supervisor idle in a wait), entries read are handed over
        by take(), called from this thread before the wake: an idle worker's batch reaches its
        task process without waiting for the supervisor's wake-up. The supervisor touches
        nothing take() uses until the block ends, which waits for a take() under way."""
        with self._hand_over:
            self._taker = take
        try:
            yield
        finally:
            with self._hand_over:
                self._taker = None

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            self._condition.notify()

    def run(self) -> None:
        try:
            while True:
                with self._condition:
                    while not self._stopped and not (self._wanted and not self._entries):
                        self._condition.wait()
                    if self._stopped:
                        return
                entries = self._read(self.block)
                with self._condition:
                    self._entries.extend(entries)
                    if entries:
                        self._wanted = False
                        self.empty_streak = 0
                    else:
                        self.empty_streak += 1
                with self._hand_over:
                    if entries and self._taker is not None:
                        self._taker()
                self._wake()
        except BaseException as exc:  # handed to the supervisor, which decides to exit
            self.error = exc
            self._wake()
