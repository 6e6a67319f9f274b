# SPDX-License-Identifier: BSD-3-Clause
"""Running batches in the task process to their end.

Two batches are in the task process at once: the one running and the next, queued in its pipe,
so it goes from batch to batch without waiting for the supervisor. A death of the task process,
or a task over its timeout, is one failed attempt of the task it was running; the task process
restarts, and the batches go on without the tasks that used up their attempts.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from rhc import defaults
from rhc.errors import SignatureError
from rhc.wire.protocol import Failure, ResultMessage, TaskBatch, TaskEntry
from rhc.worker.store import Ran
from rhc.worker.taskprocess import StartFailed, TaskProcess
from rhc.worker.trust import Trust

log = logging.getLogger(__name__)

PIPELINE = 2
"""Batches in the task process at once: the running one and the next."""

PREFETCH_HORIZON = 0.5
"""Fetch the next batch this long before the running one should end: early enough to hide the
read, late enough that a long task is not hoarded while another worker sits idle."""

_MAX_CACHED_FUNCTIONS = 32


@dataclass
class Outcome:
    """What running one batch produced: pickled values (None for merged jobs) and failures."""

    body: bytes | None
    failures: list[Failure]
    started: float
    finished: float
    counts: dict[str, float] = field(default_factory=dict)
    """What its tasks counted (rhc.get_worker().count)."""

    def message(self, kind: str, batch: TaskBatch, worker: str) -> ResultMessage:
        """What a worker reports of this outcome: per-task values, or progress of a merge."""
        return ResultMessage(
            kind=kind,
            job=batch.job,
            worker=worker,
            batches=(batch.batch,),
            spans=((batch.first, batch.count),),
            failures=tuple(self.failures),
            started=self.started,
            finished=self.finished,
            has_value=self.body is not None,
        )

    def ran(self, batch: TaskBatch, entry: TaskEntry) -> Ran:
        """What its tasks cost: a redelivered entry's tasks all ran again."""
        retried = batch.count if entry.redeliveries else 0
        return Ran(self.finished - self.started, retried, self.counts)


@dataclass
class Run:
    """A batch given to the task process, and what its attempts so far cost."""

    entry: TaskEntry
    batch: TaskBatch
    body: bytes
    seq: int = 0
    skip: set[int] = field(default_factory=set)
    failures: list[Failure] = field(default_factory=list)
    settled: Outcome | None = None
    interrupted: bool = False


def failed_outcome(
    batch: TaskBatch, skip: set[int], kind: str, error_type: str, message: str
) -> Outcome:
    """Every task of batch not in skip failed for one reason."""
    now = time.time()
    tasks = [task for task in batch.tasks if task not in skip]
    return Outcome(None, [Failure(task, kind, error_type, message) for task in tasks], now, now)


class Host(Protocol):
    """What the executor needs from the supervisor while batches run."""

    def wait(self, waitables: list, timeout: float) -> None:
        """Sleep until a waitable is ready, a signal or notice arrives, or timeout passes."""

    def on_wake(self, batches: list[TaskBatch]) -> bool:
        """Called at every wake-up, with the batches in the task process: queue more if there is
        room; True to stop them instead (the worker stops, or a job was cancelled)."""

    def prefetch(self) -> None:
        """The running batch nears its end and nothing is queued behind it: fetch the next."""

    def lost_task_process(self, reason: str) -> None:
        """The task process was replaced (why: `reason`), and with it every value merged in
        it."""


class Executor:
    """Runs batches in a TaskProcess on behalf of a Host."""

    def __init__(
        self,
        child: TaskProcess,
        host: Host,
        *,
        trust: Trust,
        fetch_function: Callable[[str], bytes | None],
    ) -> None:
        self.child = child
        self._host = host
        self._trust = trust
        self._fetch_function = fetch_function
        self._runs: deque[Run] = deque()
        self._sequence = itertools.count()
        self._attempts: Counter[tuple[str, int | None]] = Counter()
        self._functions: dict[str, bytes] = {}
        self._speed: dict[str, float] = {}

    @property
    def busy(self) -> bool:
        return bool(self._runs)

    @property
    def has_room(self) -> bool:
        return len(self._runs) < PIPELINE

    @property
    def current_job(self) -> str | None:
        return self._runs[0].batch.job if self._runs else None

    def submit(self, run: Run) -> None:
        """Queue a batch in the task process, behind the one running."""
        run.seq = next(self._sequence)
        if not self._runs and not self.child.is_alive:  # it died idle: no task is charged
            reason = self.child.exit_reason()
            log.warning("the task process died between batches (%s): starting another", reason)
            self._restart(reason)
        self._send(run)
        self._runs.append(run)

    def next_outcome(self) -> tuple[Run, Outcome | None]:
        """Wait until the oldest batch ends; its outcome, or None if it was interrupted."""
        run = self._runs[0]
        if run.settled is not None or run.interrupted:
            self._runs.popleft()
            return run, run.settled
        prefetch_at = self._prefetch_time(run) if self.has_room else None
        interrupt_deadline: float | None = None
        while True:
            deadline = self._task_deadline()
            timers = [t for t in (deadline, prefetch_at, interrupt_deadline) if t is not None]
            timeout = max(0.0, min(timers) - time.monotonic()) if timers else 1.0
            self._host.wait(self.child.waitables, min(timeout, 1.0))
            reply = self._poll()
            if reply is not None:
                self._runs.popleft()
                return run, self._outcome(run, reply)
            now = time.monotonic()
            if interrupt_deadline is not None and now >= interrupt_deadline:
                # it ignored the interrupt: whatever it held is lost with it
                self._restart("the task process ignored an interrupt and was killed")
                for queued in self._runs:
                    queued.interrupted = True
                self._runs.popleft()
                return run, None
            if not self.child.is_alive or (deadline is not None and now >= deadline):
                self._after_death(timed_out=self.child.is_alive)
                if run.settled is not None:
                    self._runs.popleft()
                    return run, run.settled
                continue
            if prefetch_at is not None and now >= prefetch_at:
                self._host.prefetch()
                prefetch_at = None
            if interrupt_deadline is None and self._host.on_wake(
                [queued.batch for queued in self._runs]
            ):
                self.child.interrupt()
                interrupt_deadline = time.monotonic() + defaults.DEFAULT_INTERRUPT_GRACE

    def ask(self, message: tuple) -> tuple | None:
        """Send a request to the task process when no batch is in it; None if it died."""
        assert not self._runs, "ask() only between batches"
        self.child.send(message)
        while (reply := self._poll()) is None:
            if not self.child.is_alive:
                reason = self.child.exit_reason()
                log.warning("%s while answering %r", reason, message[0])
                self._restart(reason)
                return None
            self._host.wait(self.child.waitables, 1.0)
        return reply

    def _outcome(self, run: Run, reply: tuple) -> Outcome | None:
        if reply[0] == "interrupted":
            return None
        _, body, child_failures, started, finished, counts = reply
        self._forget_attempts(run.batch)
        failures = sorted(run.failures + child_failures, key=lambda failure: failure.task)
        outcome = Outcome(body, failures, started, finished, counts)
        self._record_speed(run.batch, outcome)
        return outcome

    def _after_death(self, *, timed_out: bool) -> None:
        """Count the failed attempt, restart the task process, and send its batches again."""
        task = self.child.current_task()[0]
        run = next((r for r in self._runs if r.seq == self.child.current_run), self._runs[0])
        batch = run.batch
        if timed_out:
            kind, reason = "timeout", f"the task exceeded its {batch.timeout:g} s timeout"
        else:
            kind, reason = "crashed", self.child.exit_reason()
        self._restart(reason)
        key = (batch.job, task)
        self._attempts[key] += 1
        attempt = self._attempts[key]
        what = f"task {task}" if task is not None else f"loading batch {batch.batch}"
        log.warning(
            "job %s, %s: %s (attempt %d of %d)",
            batch.job,
            what,
            reason,
            attempt,
            batch.max_attempts,
        )
        if attempt >= batch.max_attempts:
            del self._attempts[key]
            error_type = "TaskTimeout" if kind == "timeout" else "TaskProcessDied"
            message = f"{reason} (attempt {attempt} of {batch.max_attempts})"
            doomed = [task] if task is not None else [t for t in batch.tasks if t not in run.skip]
            run.failures.extend(Failure(t, kind, error_type, message) for t in doomed)
            run.skip.update(doomed)
            if len(run.skip) == batch.count:
                now = time.time()
                run.settled = Outcome(None, sorted(run.failures, key=lambda f: f.task), now, now)
        for queued in self._runs:
            if queued.settled is None:
                self._send(queued)

    def _send(self, run: Run) -> None:
        problem = self._load_function(run.batch.function)
        if problem:
            run.settled = failed_outcome(
                run.batch, run.skip, "unloadable", "FunctionUnavailable", problem
            )
            run.settled.failures[:0] = run.failures
            return
        self.child.send(("run", run.seq, run.batch.header(), run.body, frozenset(run.skip)))

    def _restart(self, reason: str) -> None:
        self._host.lost_task_process(reason)
        try:
            self.child.restart()
        except StartFailed:  # the worker stops: what it holds is handed back, not run again
            for run in self._runs:
                run.interrupted = True
            raise

    def _poll(self) -> tuple | None:
        try:
            if self.child.connection.poll():
                return self.child.receive()
        except (EOFError, OSError):
            pass  # it died: the caller sees that through is_alive
        return None

    def _task_deadline(self) -> float | None:
        task, started = self.child.current_task()
        if task is None:
            return None
        run = next((r for r in self._runs if r.seq == self.child.current_run), None)
        if run is None or run.batch.timeout is None:
            return None
        return started + run.batch.timeout

    def _prefetch_time(self, run: Run) -> float | None:
        per_task = self._speed.get(run.batch.function)
        if per_task is None:
            return None  # a function never run here: its length is unknown, so take nothing yet
        return time.monotonic() + max(0.0, per_task * run.batch.count - PREFETCH_HORIZON)

    def _record_speed(self, batch: TaskBatch, outcome: Outcome) -> None:
        per_task = (outcome.finished - outcome.started) / batch.count
        previous = self._speed.pop(batch.function, None)
        self._speed[batch.function] = per_task if previous is None else (previous + per_task) / 2
        if len(self._speed) > 64:
            self._speed.pop(next(iter(self._speed)))

    def _forget_attempts(self, batch: TaskBatch) -> None:
        if self._attempts:
            for task in (None, *batch.tasks):
                self._attempts.pop((batch.job, task), None)

    def _load_function(self, digest: str) -> str | None:
        """Make sure the task process holds the function; return why not if it cannot."""
        if digest in self.child.functions:
            return None
        body = self._functions.get(digest)
        if body is None:
            sealed = self._fetch_function(digest)
            if sealed is None:
                return f"function {digest} is not in Redis (expired, or lost by a Redis restart)"
            try:
                body = self._trust.function(digest, sealed)
            except SignatureError as exc:
                log.error("function %s failed verification and was not loaded: %s", digest, exc)
                return f"the stored function failed signature verification: {exc}"
            if len(self._functions) >= _MAX_CACHED_FUNCTIONS:
                self._functions.pop(next(iter(self._functions)))
            self._functions[digest] = body
        self.child.send(("function", digest, body))
        self.child.functions.add(digest)
        return None
