# SPDX-License-Identifier: BSD-3-Clause
"""The task process: a long-lived child that runs user functions for the worker supervisor
(its own code is rhc.worker.runner); this is the supervisor's handle on it.

A crash there (segfault, os._exit, the OOM killer) takes only that process; the supervisor sees it
die, counts an attempt against the task it was running, and starts a new one. The supervisor
reads which task is running from shared memory, so no message per task crosses the pipe.

Messages from the supervisor: ("function", digest, body), ("run", seq, header, body, skip),
("flush", job), ("forget", job), ("resume",). Replies, in order: ("done", body, failures,
started, finished, counts) or ("interrupted",) for each run, ("partial", job, body, error) for a
flush.

The supervisor queues the next run while one is running, so the task process goes from batch
to batch without waiting for it. An interrupt (SIGUSR1) stops the running task and turns every
run queued behind it into ("interrupted",), until the ("resume",) sent after the signal.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
from multiprocessing.connection import Connection

from rhc.errors import RhcError
from rhc.worker.runner import IDLE, main

log = logging.getLogger(__name__)

START_TRIES = 3
"""Replacements started in a row before the worker gives up: one killed as it starts (the OOM
killer, an admin) is replaced; one that dies every time (a preloaded module that crashes) ends
the worker, which hands back its tasks. The first task process gets one try: a worker whose
task process cannot start never shows itself."""


class StartFailed(RhcError):
    """The task process died before it was ready."""


class TaskProcess:
    """The supervisor's handle on its task process."""

    def __init__(self, config: dict) -> None:
        self._config = config
        self._context = multiprocessing.get_context("spawn")
        # [task index or -1, its monotonic start time, the run's sequence number]: written by the
        # child before every task.
        self._progress = self._context.RawArray("d", 3)
        self.process: multiprocessing.process.BaseProcess | None = None
        self.connection: Connection | None = None
        self.functions: set[str] = set()

    def start(self) -> None:
        self._progress[0] = IDLE
        self._progress[2] = -1
        parent, child = self._context.Pipe()
        self.process = self._context.Process(
            target=main, args=(child, self._progress, self._config), name="rhc-task", daemon=True
        )
        self.process.start()
        child.close()
        self.connection = parent
        self.functions = set()
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Wait for ("ready",): sent once the modules to preload are imported, so no task waits
        for them.

        Raises:
          StartFailed: it died before (see START_TRIES).
        """
        while not self.connection.poll(1.0):
            if not self.process.is_alive():
                raise self._start_failed()
        try:
            message = self.receive()
        except (EOFError, OSError):  # it died as it would have answered
            self.process.join(5.0)
            raise self._start_failed() from None
        if message != ("ready",):
            raise RhcError(f"the task process sent {message!r} instead of being ready")

    def _start_failed(self) -> StartFailed:
        return StartFailed(f"{self.exit_reason()} while starting (see the log above)")

    def restart(self) -> None:
        """Kill it and start another, up to START_TRIES times if they die while starting."""
        for tries_left in reversed(range(START_TRIES)):
            self.kill()
            try:
                self.start()
                return
            except StartFailed as exc:
                if not tries_left:
                    raise
                log.warning("%s: starting another", exc)

    def send(self, message: tuple) -> None:
        """Send a message; to a dead task process, nothing: its death is seen where its runs
        are awaited (Executor.next_outcome), which sends them again to the next one."""
        with contextlib.suppress(OSError):
            self.connection.send(message)

    def receive(self) -> tuple:
        return self.connection.recv()

    @property
    def waitables(self) -> list:
        return [self.connection, self.process.sentinel]

    @property
    def is_alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def current_task(self) -> tuple[int | None, float]:
        """The task running now and when it started (time.monotonic), or (None, 0) between tasks."""
        index, started = self._progress[0], self._progress[1]
        return (None, 0.0) if index < 0 else (int(index), started)

    @property
    def current_run(self) -> int:
        """The sequence number of the run the task process started last."""
        return int(self._progress[2])

    def interrupt(self) -> None:
        """Stop the running task and the runs queued behind it (each replies "interrupted")."""
        if self.is_alive:
            os.kill(self.process.pid, signal.SIGUSR1)
            self.send(("resume",))

    def kill(self) -> None:
        if self.process is None:
            return
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.connection.close()

    def stop(self, timeout: float) -> None:
        """Close the pipe (the child exits when it sees that), then kill it if it lingers."""
        if self.process is None:
            return
        self.connection.close()
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()

    def exit_reason(self) -> str:
        code = self.process.exitcode
        if code == -signal.SIGKILL:
            return "the task process was killed by signal SIGKILL (out of memory, or killed)"
        if code is not None and code < 0:
            return f"the task process was killed by signal {signal.Signals(-code).name}"
        return f"the task process exited with code {code}"
