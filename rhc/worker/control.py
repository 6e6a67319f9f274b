# SPDX-License-Identifier: BSD-3-Clause
"""Control notices for a worker: the heartbeat thread receives them, the supervisor's loop acts on
them, and the jobs cancelled stay known long enough to drop work re-queued after them."""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable

from rhc.errors import SignatureError
from rhc.wire.protocol import ControlMessage
from rhc.worker.trust import Trust

log = logging.getLogger(__name__)

CANCELLED_MEMORY = 3600.0
"""How long a worker remembers that a job was cancelled: re-queued work may outlive its job."""


class Controls:
    """Notices handed from the heartbeat thread to the supervisor, and the cancelled jobs."""

    def __init__(self, wake: Callable[[], None], trust: Trust) -> None:
        self._wake = wake
        self._trust = trust
        self._notices: queue.SimpleQueue[ControlMessage] = queue.SimpleQueue()
        self._cancelled: dict[str, float] = {}

    def deliver(self, data: bytes) -> None:
        """Called by the heartbeat thread: verify the notice, queue it and wake the supervisor.
        One not signed by the notebook side's task key, or for another namespace, is dropped:
        Redis access alone must not stop a job."""
        try:
            message = self._trust.control(data)
        except SignatureError as exc:
            log.error("ignored a control notice that failed verification: %s", exc)
            return
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
