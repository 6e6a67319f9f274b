# SPDX-License-Identifier: BSD-3-Clause
"""The Manager: what the notebook uses to send a function over many arguments to the workers."""

from __future__ import annotations

import html
import socket
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Sequence, Sized

from rhc.config import resolve_settings, user_name
from rhc.errors import ArgumentError, JobNotFoundError
from rhc.manager.batching import BatchSizer
from rhc.manager.broker import Broker
from rhc.manager.dispatch import Dispatcher, JobSpec, RoutedDispatcher
from rhc.manager.job import Job
from rhc.manager.options import JobOptions
from rhc.manager.reattach import read_job, read_record
from rhc.manager.recent import Recent
from rhc.manager.sending import Sender
from rhc.manager.status import WorkerTable
from rhc.wire.protocol import RUNNING, JobRecord, JobStatus, function_header
from rhc.wire.serialization import dumps, sign
from rhc.wire.signing import signing_key, trusted_keys

_SIGNED_FUNCTIONS_KEPT = 16
_CACHED_SPEEDS_KEPT = 64


class Manager:
    """Sends a function and its arguments to the workers through Redis and collects the results.

    Parameters:
      redis_url: ``redis://[:password@]host:port``; otherwise RHC_REDIS_URL, the config file named
        by RHC_CONFIG_FILE, or REDIS_URL in ./config.py.
      secret: shared with the workers, who sign results with it; otherwise RHC_SECRET or the
        config file. Tasks are signed with the task key (task_key in the config file), which
        only the notebook side holds.
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
        self._key = signing_key(self.settings)
        self._trusted = trusted_keys(self.settings)
        self._broker = Broker(self.settings, key=self._key)
        # digest -> the function's envelope (signed once); seconds a task takes from its cache
        self._signed_functions: Recent[str, bytes] = Recent(_SIGNED_FUNCTIONS_KEPT)
        self._cached_speeds: Recent[str, float] = Recent(_CACHED_SPEEDS_KEPT)
        self._senders: weakref.WeakKeyDictionary[Job, Sender] = weakref.WeakKeyDictionary()
        self._owner = _owner()

    def __repr__(self) -> str:
        return f"Manager(url={self.settings.masked_url!r}, namespace={self.settings.namespace!r})"

    def _repr_html_(self) -> str:
        """In a notebook: what it is connected to, and a link to the dashboard if there is one
        (without its token: open the URL `rhc dashboard` or `make run` printed once)."""
        text = html.escape(repr(self))
        url = self.settings.dashboard_url
        if not url:
            return f"<code>{text}</code>"
        return f'<code>{text}</code> · <a href="{html.escape(url)}" target="_blank">dashboard</a>'

    def __enter__(self) -> Manager:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """End this Manager's jobs here. Those whose tasks are all in Redis stay there for
        Manager().job(id) elsewhere; those still sending are cancelled (the rest of their
        arguments exists only in this process)."""
        for job, sender in list(self._senders.items()):
            if job.state == RUNNING and not sender.dispatcher.sending_done:
                job.cancel()
        self._broker.close()

    def remote_map(
        self, function: Callable, iterable: Iterable, *, progress: bool = True, **options: object
    ) -> object:
        """Call function on every item of iterable on the workers; return results in input order.

        Parameters:
          progress: show a progress bar (a widget in Jupyter, text in a terminal).
          options: the options of rhc.manager.JobOptions: timeout, retries, reduce (merge on the
            workers: one merged value comes back), affinity, return_exceptions.

        Raises:
          TaskError: a task failed; it carries the remote traceback and the argument.
          SerializationError, PayloadTooLargeError: the function or an argument cannot travel.
          ArgumentError: an unknown option, or a bad value.
        """
        job = self._create(function, iterable, JobOptions.parse(options, caller="remote_map"))
        return job.results(progress=progress)

    def submit(self, function: Callable, iterable: Iterable, **options: object) -> Job:
        """Like remote_map, without waiting: the returned Job runs in the background.

        Parameters:
          options: the options of rhc.manager.JobOptions, as for remote_map.
        """
        return self._create(function, iterable, JobOptions.parse(options, caller="submit")).start()

    def job(self, job_id: str) -> Job:
        """Re-attach to a job, e.g. after the notebook kernel restarted.

        Raises:
          JobNotFoundError: no such job in this namespace, or its results expired.
        """
        record, reducer = read_job(self._broker, self._trusted, job_id)
        job = Job(
            self._broker,
            record,
            job_id,
            reducer=reducer,
            options=JobOptions(),
            trusted=self._trusted,
        )
        return job.start()

    def cancel(self, job_id: str) -> bool:
        """Cancel a job by its id, whoever sends it (another kernel; the dashboard does this):
        its queued tasks are dropped, running ones interrupted, its waiters raise
        JobCancelledError. Returns False if it had ended already.

        Raises:
          JobNotFoundError: no such job in this namespace, or its record expired.
        """
        record = read_record(self._broker, self._trusted, job_id)
        if record is None:
            raise JobNotFoundError(f"no job {job_id!r} in namespace {self.settings.namespace!r}")
        if record.state != RUNNING:
            return False
        status = JobStatus(
            self.settings.namespace, job_id, record.function, record.reduce, total=record.total
        )
        self._broker.cancel(status, "", routes=())
        return True

    def cached_on(self, keys: Sequence[str]) -> list[str | None]:
        """For each affinity key, the worker that last ran a task with it (where its data is
        cached), or None."""
        return self._broker.routes(list(keys))

    def workers(self) -> WorkerTable:
        """The live workers: name, host, condor id, state, task, counts, rates and versions;
        `.runnable` lists those that can run this notebook's jobs."""
        registry = self._broker.registry
        workers = registry.workers(fresh=True)
        return WorkerTable(workers, registry.compat, registry.runnable_names())

    def _create(self, function: Callable, iterable: Iterable, options: JobOptions) -> Job:
        if not callable(function):
            raise ArgumentError(f"function must be callable, not {type(function).__name__}")
        settings, broker = self.settings, self._broker
        name = getattr(function, "__qualname__", type(function).__name__)
        body = dumps(
            (function, options.reduce),
            what=f"the function {name}",
            limit=settings.max_payload_bytes,
        )
        digest = self._key.content_digest(body)
        broker.registry.runnable_count()  # refuse now if no live worker could load this
        job_id = uuid.uuid4().hex[:16]
        record = JobRecord(
            function=digest,
            compat=broker.registry.compat,
            owner=self._owner,
            created=time.time(),
            reduce=options.reduce is not None,
            expected=len(iterable) if isinstance(iterable, Sized) else None,
        )
        spec = JobSpec(
            namespace=settings.namespace,
            job_id=job_id,
            function=digest,
            reduce=options.reduce is not None,
            timeout=options.timeout,
            max_attempts=options.max_attempts(settings.max_attempts),
            result_ttl=settings.result_ttl,
        )
        sender = Sender(
            broker,
            job_id,
            record,
            self._dispatcher(spec, iterable, options),
            sealed_function=self._signed_function(digest, body),
            affinity=options.affinity,
        )
        job = Job(
            broker,
            record,
            job_id,
            reducer=options.reduce,
            options=options,
            sender=sender,
            trusted=self._trusted,
        )
        self._senders[job] = sender
        return job

    def _signed_function(self, digest: str, body: bytes) -> bytes:
        if digest not in self._signed_functions:
            header = function_header(self.settings.namespace, digest)
            self._signed_functions[digest] = sign(self._key, header, body)
        return self._signed_functions[digest]

    def _dispatcher(self, spec: JobSpec, iterable: Iterable, options: JobOptions) -> Dispatcher:
        """What cuts the arguments into batches: routed by affinity, if the job has one."""
        packing = {
            "key": self._key,
            "max_payload": self.settings.max_payload_bytes,
            "sizer": BatchSizer(
                self._broker.seconds_per_task(spec.function),
                round_trip=self._broker.registry.round_trip(),
            ),
        }
        if options.affinity is None:
            length = len(iterable) if isinstance(iterable, Sized) else None
            return Dispatcher(spec, iter(iterable), length, **packing)
        routes = self._broker.routes(list(options.affinity))
        return RoutedDispatcher(
            spec, list(iterable), routes, cached_speeds=self._cached_speeds, **packing
        )


def _owner() -> str:
    return f"{user_name() or '?'}@{socket.gethostname()}"
