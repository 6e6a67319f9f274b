# SPDX-License-Identifier: BSD-3-Clause
"""Writes a caller need not wait for: a finished job's records (finished, delivered, its
function's speed) reach Redis from a thread of their own a moment later, not in a round trip
that a notebook's small map would wait for. They go in order, several in one round trip; what
reads them back waits for them (`wait`), and closing the manager sends what is left."""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable

import redis

from rhc.errors import RhcError

log = logging.getLogger(__name__)

Write = Callable[[redis.client.Pipeline], None]
"""Adds its commands to a pipeline."""

GATHER = 0.05
"""Seconds the first held-back write waits for others to share its round trip."""

AT_EXIT = 5.0
"""Seconds an exiting process waits for what is held back: not a lost Redis's whole reconnect
timeout."""


class DeferredWrites:
    """Writes held back and sent, in the order added, by one thread.

    Parameters:
      send: sends writes in one pipeline (retrying through a lost connection).
    """

    def __init__(self, send: Callable[[list[Write]], None]) -> None:
        self._send = send
        self._writes: list[Write] = []
        self._added = self._sent = 0
        self._urgent = self._closed = False
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, write: Write) -> None:
        with self._condition:
            self._writes.append(write)
            self._added += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="rhc-writes", daemon=True)
                self._thread.start()
                atexit.register(self._at_exit)
            self._condition.notify_all()

    def wait(self) -> None:
        """Return once every write added so far reached Redis (or failed, logged)."""
        with self._condition:
            target = self._added
            self._urgent = self._sent < target
            self._condition.notify_all()
            self._condition.wait_for(lambda: self._sent >= target)

    def close(self, timeout: float | None = None) -> None:
        """Send what is held back, and stop the thread (a later write starts another); wait
        at most timeout seconds for it."""
        with self._condition:
            thread = self._thread
            if thread is None:
                return
            self._closed = True
            self._condition.notify_all()
        thread.join(timeout)
        atexit.unregister(self._at_exit)

    def _at_exit(self) -> None:
        self.close(AT_EXIT)

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._writes or self._closed)
                if not self._writes:  # closed: a later write starts another thread
                    self._thread, self._closed = None, False
                    return
                self._condition.wait_for(lambda: self._urgent or self._closed, timeout=GATHER)
                writes, self._writes, self._urgent = self._writes, [], False
            try:
                self._send(writes)
            except RhcError as exc:  # the results are in hand already: records matter less
                log.warning("could not record %d finished job(s) in Redis: %s", len(writes), exc)
            except Exception:  # a bug: logged, and the writes after it still go
                log.exception("could not record %d finished job(s) in Redis", len(writes))
            with self._condition:
                self._sent += len(writes)
                self._condition.notify_all()
