# SPDX-License-Identifier: BSD-3-Clause
"""Control notices for a worker: the heartbeat thread receives them, the supervisor's loop acts on
them, and the jobs cancelled stay known long enough to drop work re-queued after them."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable

from rhc.wire.protocol import ControlMessage

CANCELLED_MEMORY = 3600.0
"""How long a worker remembers that a job was cancelled: re-queued work may outlive its job."""


class Controls:
    """Notices handed from the heartbeat thread to the supervisor, and the cancelled jobs."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._notices: queue.SimpleQueue[ControlMessage] = queue.SimpleQueue()
        self._cancelled: dict[str, float] = {}

    def deliver(self, message: ControlMessage) -> None:
        """Called by the heartbeat thread: queue the notice and wake the supervisor."""
        self._notices.put(message)
        self._wake()

    def take(self) -> list[ControlMessage]:
        """The notices delivered since the last call, in order."""
        taken = []
        while True:
            try:
                taken.append(self._notices.get_nowait())
            except queue.Empty:
                return taken

    def cancel(self, job: str) -> None:
        now = time.monotonic()
        self._cancelled = {
            known: when for known, when in self._cancelled.items() if now - when < CANCELLED_MEMORY
        }
        self._cancelled[job] = now

    def is_cancelled(self, job: str) -> bool:
        return job in self._cancelled
