# SPDX-License-Identifier: BSD-3-Clause
"""The Manager: what the notebook uses to send a function over many arguments to the workers."""

from __future__ import annotations

import getpass
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Sequence, Sized

from rhc.batching import BatchSizer
from rhc.broker import Broker
from rhc.config import resolve_settings
from rhc.dispatch import Dispatcher, JobSpec, RoutedDispatcher
from rhc.errors import JobNotFoundError
from rhc.job import Job
from rhc.protocol import JobRecord
from rhc.serialization import content_digest, dumps, loads, seal, unseal
from rhc.status import WorkerTable


class Manager:
    """Sends a function and its arguments to the workers through Redis and collects the results.

    Parameters:
      redis_url: ``redis://[:password@]host:port``; otherwise RHC_REDIS_URL, the config file named
        by RHC_CONFIG_FILE, or REDIS_URL in ./config.py.
      secret: shared with the workers, to sign tasks and results; otherwise RHC_SECRET or the
        config file.
      namespace: jobs and workers are per namespace; defaults to the user name.
      settings: other settings of rhc.config.Settings (heartbeat_ttl, max_payload_bytes, ...).

    Raises:
      ConfigurationError, BrokerConnectionError, BrokerAuthenticationError: with what to fix.
    """

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        secret: str | bytes | None = None,
        namespace: str | None = None,
        **settings: object,
    ) -> None:
        self.settings = resolve_settings(
            redis_url=redis_url, secret=secret, namespace=namespace, **settings
        )
        self._broker = Broker(self.settings)

    def __repr__(self) -> str:
        return f"Manager(url={self.settings.masked_url!r}, namespace={self.settings.namespace!r})"

    def __enter__(self) -> Manager:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._broker.client.close()

    def remote_map(
        self,
        function: Callable,
        iterable: Iterable,
        *,
        timeout: float | None = None,
        retries: int | None = None,
        reduce: Callable[[object, object], object] | None = None,
        affinity: Sequence[str | None] | None = None,
        progress: bool = True,
        return_exceptions: bool = False,
    ) -> object:
        """Call function on every item of iterable on the workers; return results in input order.

        Parameters:
          timeout: seconds one task may run before it is stopped and counted as a failed attempt.
          retries: how often a task whose process died or timed out is tried again
            (default: max_attempts - 1). A task that raises is not retried.
          reduce: a function merging two results (associative and commutative, e.g.
            operator.add); workers merge first, and one merged value comes back.
          affinity: for each item, a key naming the data it reads (e.g. a chunk of a file), or
            None. An item goes to the worker that last ran its key, whose caches hold the data;
            idle workers still take such items rather than wait.
          progress: show a progress bar (a widget in Jupyter, text in a terminal).
          return_exceptions: put a TaskError in place of each failed task's result instead of
            raising the first one.

        Raises:
          TaskError: a task failed; it carries the remote traceback and the argument.
          SerializationError, PayloadTooLargeError: the function or an argument cannot travel.
        """
        job = self._create(
            function,
            iterable,
            timeout=timeout,
            retries=retries,
            reduce=reduce,
            affinity=affinity,
            return_exceptions=return_exceptions,
        )
        return job.results(progress=progress)

    def submit(self, function: Callable, iterable: Iterable, **options: object) -> Job:
        """Like remote_map (with its options, but progress), without waiting: the returned Job
        runs in the background."""
        return self._create(function, iterable, **options).start()

    def job(self, job_id: str) -> Job:
        """Re-attach to a job, e.g. after the notebook kernel restarted.

        Raises:
          JobNotFoundError: no such job in this namespace, or its results expired.
        """
        broker = self._broker
        raw = broker.call(
            lambda: broker.client.hgetall(broker.keys.job(job_id)), doing="reading the job"
        )
        if not raw:
            raise JobNotFoundError(
                f"no job {job_id!r} in namespace {self.settings.namespace!r}: a wrong id, or its "
                f"results expired ({self.settings.result_ttl:.0f} s after it ended)"
            )
        record = JobRecord.from_fields(raw)
        reducer = None
        if record.reduce:
            sealed = broker.call(
                lambda: broker.client.get(broker.keys.function(record.function)),
                doing="reading the job's function",
            )
            if sealed is None:
                raise JobNotFoundError(
                    f"job {job_id}'s function expired: its result cannot be merged"
                )
            _, body = unseal(self.settings.secret, sealed)
            _, reducer = loads(body, what="the job's function")
        return Job(broker, record, job_id, reducer=reducer).start()

    def run(
        self,
        processor: object,
        fileset: object,
        *,
        chunksize: int = 100_000,
        branches: Sequence[str] | None = None,
        skip_bad_files: bool = False,
        **options: object,
    ) -> object:
        """Run a NanoAOD processor over a fileset on the workers, merging on them first.

        Parameters:
          processor: a rhc.nanoaod.Processor, or a function of the events of `branches` (or of
            a rhc.nanoaod.Chunk when no branches are named).
          fileset: {dataset: [paths or URLs]}, or a list of them.
          chunksize: entries per chunk, the unit of work.
          skip_bad_files: leave out files that cannot be read, listing them in the result,
            instead of raising.
          options: timeout, retries, progress, as for remote_map.

        Returns:
          rhc.nanoaod.RunResult: the value, a report per chunk, the bad files; its summary()
          and plot_timeline() show how the run went.
        """
        from rhc.nanoaod.runner import run

        return run(
            self,
            processor,
            fileset,
            chunksize=chunksize,
            branches=branches,
            skip_bad_files=skip_bad_files,
            **options,
        )

    def workers(self) -> WorkerTable:
        """The live workers: name, host, condor id, state, task, counts, rates and versions."""
        return WorkerTable(self._broker.workers(fresh=True), self._broker.compat)

    def _create(
        self,
        function: Callable,
        iterable: Iterable,
        *,
        timeout: float | None = None,
        retries: int | None = None,
        reduce: Callable | None = None,
        affinity: Sequence[str | None] | None = None,
        return_exceptions: bool = False,
    ) -> Job:
        if not callable(function):
            raise TypeError(f"function must be callable, not {type(function).__name__}")
        if reduce is not None and not callable(reduce):
            raise TypeError(f"reduce must be callable, not {type(reduce).__name__}")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be positive seconds, not {timeout!r}")
        if retries is not None and retries < 0:
            raise ValueError(f"retries must be 0 or more, not {retries!r}")
        settings = self.settings
        name = getattr(function, "__qualname__", type(function).__name__)
        body = dumps(
            (function, reduce), what=f"the function {name}", limit=settings.max_payload_bytes
        )
        digest = content_digest(settings.secret, body)
        sealed = seal(settings.secret, {"kind": "function"}, body)
        broker = self._broker
        broker.runnable_workers()  # refuse now if no live worker could load this
        job_id = uuid.uuid4().hex[:16]
        record = JobRecord(
            function=digest,
            compat=broker.compat,
            owner=_owner(),
            created=time.time(),
            reduce=reduce is not None,
        )
        spec = JobSpec(
            job_id=job_id,
            function=digest,
            reduce=reduce is not None,
            timeout=timeout,
            max_attempts=settings.max_attempts if retries is None else retries + 1,
            result_ttl=settings.result_ttl,
        )
        packing = {
            "secret": settings.secret,
            "max_payload": settings.max_payload_bytes,
            "sizer": BatchSizer(broker.seconds_per_task(digest)),
        }
        if affinity is None:
            length = len(iterable) if isinstance(iterable, Sized) else None
            dispatcher = Dispatcher(spec, iter(iterable), length, **packing)
        else:
            routes = broker.routes(list(affinity))
            dispatcher = RoutedDispatcher(spec, list(iterable), routes, **packing)
        return Job(
            broker,
            record,
            job_id,
            reducer=reduce,
            dispatcher=dispatcher,
            sealed_function=sealed,
            return_exceptions=return_exceptions,
            affinity=affinity,
        )


def _owner() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "?"
    return f"{user}@{socket.gethostname()}"
