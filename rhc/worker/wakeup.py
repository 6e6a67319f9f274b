# SPDX-License-Identifier: BSD-3-Clause
"""Waking the supervisor's loop: from its fetcher and heartbeat threads, and from signals (an
eviction's SIGTERM), through a self-pipe that every wait of the loop includes."""

from __future__ import annotations

import contextlib
import multiprocessing.connection
import os
import signal
from collections.abc import Callable


class Wakeup:
    """A self-pipe: set() from any thread or signal handler ends the current wait()."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def set(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a full pipe: it is awake already
            os.write(self._write, b"\0")

    def catch_signals(self, handler: Callable[[int, object], None]) -> None:
        """Handle SIGTERM and SIGINT with handler; each also ends the current wait()."""
        signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, handler)

    def wait(self, waitables: list, timeout: float) -> None:
        """Sleep until a waitable is ready, set() is called, or timeout passes."""
        ready = multiprocessing.connection.wait([*waitables, self._read], timeout)
        if self._read in ready:
            with contextlib.suppress(BlockingIOError):
                while os.read(self._read, 4096):
                    pass
