# SPDX-License-Identifier: BSD-3-Clause
"""The task process's own code: it loads the functions and runs the batches its supervisor
sends (the messages are rhc.worker.taskprocess's), one task after another, and keeps the merged
values of reduced jobs until they are asked for."""

from __future__ import annotations

import ctypes
import importlib
import signal
import sys
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from rhc.errors import SerializationError
from rhc.wire.protocol import ARGUMENT_KEPT, Failure, TaskBatch
from rhc.wire.serialization import dumps_result, loads
from rhc.worker import context
from rhc.worker.allocator import FAULTED_IN_BYTES, fault_in, keep_freed_memory
from rhc.worker.cache import MemoryCache
from rhc.worker.identity import memory_headroom_bytes

IDLE = -1.0
"""The task index in the shared progress while no task runs."""

_MAX_FUNCTIONS = 32


class TaskInterrupted(BaseException):
    """Raised inside a running task when the supervisor must stop it (the worker is stopping,
    or the job was cancelled). A BaseException, so user code's `except Exception` lets it pass."""


def main(connection: Connection, progress: ctypes.Array, config: dict) -> None:
    """The task process's life: preload, say it is ready, then serve until the pipe closes."""
    _die_with_parent()
    keeps_memory = keep_freed_memory()
    # The supervisor decides when tasks stop: a Ctrl-C or SIGTERM for the whole process group
    # must not kill a task half-way behind its back.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    runner = Runner(connection, progress, config)
    signal.signal(signal.SIGUSR1, runner.on_interrupt)
    _preload(config["preload"])
    if keeps_memory:  # a quarter of the free memory at most: workers starting together share it
        fault_in(min(config["cache_bytes"], FAULTED_IN_BYTES, memory_headroom_bytes() // 4))
    connection.send(("ready",))
    runner.serve()


WARM_UP_HOOK = "rhc_warm_up"
"""A preloaded module's function of no arguments that the task process calls once, before any
task: the first calls of its libraries (lazy imports, caches) are paid at start, not by the
first task of every cold run. Only a hook the module (or its package) defines counts, not one
it imported from elsewhere."""


def _preload(modules: list[str]) -> None:
    """Import what tasks will need (e.g. uproot and awkward: half a second) before any task,
    and warm them up."""
    for name in modules:
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # a worker without an optional module still serves the rest
            print(f"rhc task process: cannot preload {name}: {exc}", file=sys.stderr)
            continue
        warm_up = getattr(module, WARM_UP_HOOK, None)
        owner = getattr(warm_up, "__module__", None) or ""
        if callable(warm_up) and (owner == name or owner.startswith(f"{name}.")):
            try:
                warm_up()
            except (Exception, SystemExit):  # slower first tasks, but the worker serves
                print(f"rhc task process: the warm-up of {name} failed:", file=sys.stderr)
                traceback.print_exc()


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: a closed pipe still ends the serve() loop


class Runner:
    """Serves the supervisor's messages: one batch at a time, its tasks one after another."""

    def __init__(self, connection: Connection, progress: ctypes.Array, config: dict) -> None:
        self.connection = connection
        self.progress = progress
        self.max_payload = config["max_payload_bytes"]
        self.functions: dict[str, tuple[Callable, Callable | None] | Exception] = {}
        self.merged: dict[str, object] = {}
        self.running = False
        self.interrupted = False
        self.context = context.WorkerContext(
            name=config["name"],
            host=config["host"],
            namespace=config["namespace"],
            condor_id=config["condor_id"],
            cache=MemoryCache(config["cache_bytes"]),
            cache_dir=Path(config["cache_dir"]),
            disk_cache_bytes=config["disk_cache_bytes"],
        )
        context.activate(self.context)

    def on_interrupt(self, signum: int, frame: object) -> None:
        self.interrupted = True
        if self.running:
            raise TaskInterrupted

    def serve(self) -> None:
        while True:
            try:
                message = self.connection.recv()
            except (EOFError, OSError):
                return
            op = message[0]
            if op == "function":
                self.load_function(message[1], message[2])
            elif op == "run":
                self.progress[2] = message[1]
                self.connection.send(self.run(message[2], message[3], message[4]))
            elif op == "flush":
                self.connection.send(self.flush(message[1]))
            elif op == "forget":
                self.merged.pop(message[1], None)
            elif op == "resume":
                self.interrupted = False

    def load_function(self, digest: str, body: bytes) -> None:
        if len(self.functions) >= _MAX_FUNCTIONS:
            self.functions.pop(next(iter(self.functions)))
        try:
            self.functions[digest] = loads(body, what="the job's function", limit=self.max_payload)
        except SerializationError as exc:
            self.functions[digest] = exc

    def run(self, header: dict, body: bytes, skip: frozenset[int]) -> tuple:
        if self.interrupted:
            return ("interrupted",)
        batch = TaskBatch.from_header(header)
        started = time.time()
        self.context.counts = {}
        loaded = self.functions.get(batch.function, KeyError("function not sent"))
        try:
            if isinstance(loaded, Exception):
                raise loaded
            function, reducer = loaded
            what = f"the arguments of tasks {batch.first}-{batch.tasks[-1]}"
            arguments = loads(body, what=what, limit=self.max_payload)
        except (SerializationError, KeyError) as exc:
            failures = [
                _failure(task, "unloadable", exc) for task in batch.tasks if task not in skip
            ]
            return ("done", None, failures, started, time.time(), {})
        self.running = True
        try:
            done, values, failures = self._call_each(batch, function, reducer, arguments, skip)
        except TaskInterrupted:
            return ("interrupted",)
        finally:
            self.running = False
            self.progress[0] = IDLE
        if reducer is None:
            body = self._pack_values(done, values, failures)
        else:
            body = None
            if done:
                self._merge_batch(batch.job, reducer, values[0], done, failures)
        return ("done", body, failures, started, time.time(), self.context.counts)

    def _call_each(
        self,
        batch: TaskBatch,
        function: Callable,
        reducer: Callable | None,
        arguments: list,
        skip: frozenset[int],
    ) -> tuple[list[int], list, list[Failure]]:
        done: list[int] = []
        values: list = []
        failures: list[Failure] = []
        progress = self.progress
        for task, argument in zip(batch.tasks, arguments, strict=True):
            if task in skip:
                continue
            if self.interrupted:  # the signal came between tasks
                raise TaskInterrupted
            progress[1] = time.monotonic()
            progress[0] = task
            try:
                value = function(argument)
                if reducer is not None:
                    # The batch's own sum, merged into the job's only once the batch is whole:
                    # an interrupted batch leaves no trace and can run again elsewhere.
                    value = reducer(values[0], value) if values else value
                    values[:] = [value]
                else:
                    values.append(value)
            except (Exception, SystemExit, KeyboardInterrupt) as exc:
                failures.append(
                    _failure(
                        task,
                        "exception",
                        exc,
                        user_frames_only=True,
                        argument=_short_repr(argument),
                    )
                )
                continue
            done.append(task)
        return done, values, failures

    def _pack_values(self, done: list[int], values: list, failures: list[Failure]) -> bytes:
        try:
            return dumps_result(values, what="results", limit=self.max_payload)
        except SerializationError:
            pass
        kept = []
        for task, value in zip(done, values, strict=True):
            try:
                dumps_result(value, what=f"the result of task {task}", limit=self.max_payload)
                kept.append(value)
            except SerializationError as exc:
                failures.append(_failure(task, "exception", exc))
        failures.sort(key=lambda failure: failure.task)
        return dumps_result(kept, what="results", limit=self.max_payload)

    def _merge_batch(
        self, job: str, reducer: Callable, value: object, done: list[int], failures: list[Failure]
    ) -> None:
        if job not in self.merged:
            self.merged[job] = value
            return
        try:
            self.merged[job] = reducer(self.merged[job], value)
        except Exception as exc:
            failures.extend(_failure(task, "exception", exc) for task in done)

    def flush(self, job: str) -> tuple:
        if job not in self.merged:
            return ("partial", job, None, None)
        value = self.merged.pop(job)
        try:
            return (
                "partial",
                job,
                dumps_result(value, what="merged result", limit=self.max_payload),
                None,
            )
        except SerializationError as exc:
            return ("partial", job, None, str(exc))


def _failure(
    task: int,
    kind: str,
    exc: BaseException,
    *,
    user_frames_only: bool = False,
    argument: str = "",
) -> Failure:
    frames = exc.__traceback__
    if user_frames_only and frames is not None and frames.tb_next is not None:
        frames = frames.tb_next  # the frame that called the user's function is ours, not theirs
    remote = "".join(traceback.format_exception(type(exc), exc, frames))
    return Failure(
        task=task,
        kind=kind,
        error_type=type(exc).__name__,
        message=str(exc),
        traceback=remote,
        argument=argument,
    )


def _short_repr(value: object) -> str:
    """The start of a value's repr; a repr that raises is named, not raised."""
    try:
        text = repr(value)
    except Exception as exc:  # the user's __repr__: its error is not the task's
        text = f"<{type(value).__name__}: repr raised {type(exc).__name__}>"
    return text if len(text) <= ARGUMENT_KEPT else text[: ARGUMENT_KEPT - 1] + "…"
