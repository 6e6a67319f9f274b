# SPDX-License-Identifier: BSD-3-Clause
"""The sending side of a job this process submitted: batches go out while fewer than a window of
them are unfinished (back-pressure: a million-task map streams in bounded memory, and the
batches of concurrent jobs interleave in the shared stream, so each running job is served in
turn); results free their window slots; whatever Redis lost is sent again."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from rhc.errors import BrokerError, JobIncompleteError
from rhc.manager.broker import Broker
from rhc.manager.dispatch import Dispatcher, SentBatch
from rhc.wire.protocol import FLUSH, PARTIAL, PROGRESS, JobRecord, JobStatus, ResultMessage

log = logging.getLogger(__name__)

STALL_CHECK = 10.0
"""Seconds without news after which a job checks that Redis still holds its batches."""

FLUSH_REPEAT = 2.0
"""How often a merged job whose tasks all ran asks workers for their partial results."""

ACTIVITY_REFRESH = 10.0
"""How often a sending job marks itself active, so re-attached jobs know it is alive."""


class Sender:
    """Sends one job's batches through the broker and keeps account of them."""

    def __init__(
        self,
        broker: Broker,
        job_id: str,
        record: JobRecord,
        dispatcher: Dispatcher,
        *,
        sealed_function: bytes,
        affinity: Sequence[str | None] | None,
    ) -> None:
        self._broker = broker
        self._job_id = job_id
        self._record = record
        self.dispatcher = dispatcher
        self._sealed_function = sealed_function
        self._affinity = affinity
        self._ran_on: dict[str, str] = {}  # affinity key -> worker that ran it, for next time
        self.created = False
        self._status = JobStatus(broker.settings.namespace, job_id, record.function, record.reduce)
        self._total_signed = False
        self._counted = 0  # tasks counted as submitted (rhc.wire.activity)
        self._last_news = time.monotonic()
        self._last_flush_request = 0.0
        self._asked_early = False
        self._flushed: set[str] = set()  # workers that stored a partial since the last ask
        self._merged_since_flush = False  # one of them merged another batch since
        self._workers = 0
        self._last_activity = time.monotonic()
        self._losses_seen = broker.losses
        self._recover_soon = False

    @property
    def total(self) -> int | None:
        """The number of tasks, once every argument is cut into batches."""
        return self.dispatcher.total

    @property
    def expected_total(self) -> int | None:
        """The number of tasks: exact once known, the arguments' len() before that."""
        return self.dispatcher.expected_total

    def argument(self, task: int) -> object:
        """The argument of a task still in flight, for error reports."""
        return self.dispatcher.argument(task)

    @property
    def routes(self) -> set[str]:
        """The workers this job sends tasks to directly."""
        return self.dispatcher.routes

    def send(self) -> None:
        """Cut and send what the window allows (and the job itself, the first time), and ask
        for merged results when they are due (every turn of the job's loop comes here first)."""
        dispatcher, registry = self.dispatcher, self._broker.registry
        # once the job exists, what workers claim about themselves can no longer stop it
        workers = self._workers = registry.runnable_count(check=not self.created)
        alive = registry.runnable_names()
        for name in dispatcher.departed_routes(alive):
            self._broker.reroute_departed(name)
        fresh = dispatcher.next_batches(2 * max(workers, 1) + 2, workers, alive)
        if fresh or not self.created:
            self._enqueue(fresh)
        if self._record.reduce and dispatcher.sending_done:
            self._ask_for_partials(time.monotonic())

    def _enqueue(self, batches: list[SentBatch]) -> None:
        total = self.dispatcher.total
        status = None
        if not self.created or (total is not None and not self._total_signed):
            status = replace(self._status, total=total)
        submitted = self.dispatcher.submitted
        self._broker.send(
            self._job_id,
            [(sent.route, sent.fields) for sent in batches],
            submitted=submitted,
            new_tasks=submitted - self._counted,
            total=total,
            created=None if self.created else (self._record, self._sealed_function),
            status=status,
        )
        self.created = True
        self._total_signed = total is not None
        self._counted = submitted

    def heard(self, message: ResultMessage, *, accepted: bool) -> None:
        """A verified result of this job arrived: free the window slots of the batches it
        finished, learn their speed and where their data now is. One refused (a partial result
        overlapping merged ones) means some batch may need sending again."""
        self._last_news = time.monotonic()
        if not accepted:
            self._recover_soon = True
            return
        dispatcher, affinity = self.dispatcher, self._affinity
        if affinity is not None and message.kind != PARTIAL:
            for first, count in message.spans:
                for key in affinity[first : first + count]:
                    if key is not None:
                        self._ran_on[key] = message.worker
        if message.kind != PARTIAL:
            seconds = message.finished - message.started
            dispatcher.observe(message.batches, seconds, message.task_count)
        for number in message.batches:
            if message.kind == PROGRESS:
                dispatcher.processed(number)
            else:
                dispatcher.settle(number)
        if message.kind == PARTIAL:
            self._flushed.add(message.worker)
        elif message.kind == PROGRESS and message.worker in self._flushed:
            self._merged_since_flush = True

    def keep_up(self, receive: Callable[[], None]) -> None:
        """Show the job is alive, and send again what Redis lost; receive() reads the results
        stored meanwhile."""
        now = time.monotonic()
        dispatcher = self.dispatcher
        # often enough that nothing it keeps expires: a third of their time to live
        if now - self._last_activity >= min(ACTIVITY_REFRESH, self._broker.settings.result_ttl / 3):
            self._last_activity = now
            self._broker.mark_active(self._job_id, self._record.function)
        lost_redis = self._broker.losses != self._losses_seen
        if (
            lost_redis
            or self._recover_soon
            or (dispatcher.sent and now - self._last_news > STALL_CHECK)
        ):
            self._recover(lost_redis, receive)

    def _ask_for_partials(self, now: float) -> None:
        """Ask workers for their merged values once no more batches are unfinished than there
        are workers (each on its last): a worker stores its partial right after its last batch,
        not once the notebook has heard of that batch and asked (a round trip through Redis and
        the control channel, about a millisecond, also on a 10-task map). Once all ran: at once
        if a worker merged another batch after storing its partial (it was asked already), and
        every FLUSH_REPEAT while partials are missing (a notice lost, a worker that joined)."""
        in_flight = self.dispatcher.in_flight
        early = not self._asked_early and 0 < in_flight <= self._workers
        again = in_flight == 0 and (
            self._merged_since_flush or now - self._last_flush_request >= FLUSH_REPEAT
        )
        if early or again:
            self._asked_early, self._merged_since_flush = True, False
            self._flushed.clear()
            self._last_flush_request = now
            self._broker.notify(FLUSH, self._job_id)

    def _recover(self, lost_redis: bool, receive: Callable[[], None]) -> None:
        """Send again every batch that has neither a result nor a queue entry."""
        self._losses_seen = self._broker.losses
        self._recover_soon = False
        self._last_news = time.monotonic()
        if lost_redis:
            self._broker.forget_functions()
            self.created = False  # the job hash and function may be gone: write them again
            self._enqueue([])
        entries = self._broker.queued_entries(self._job_id, self.routes)
        receive()  # results stored since the scan settle their batches
        lost = self.dispatcher.lost({entry.batch for entry in entries})
        ran = self._broker.ran(self._job_id, [sent.number for sent in lost]) if lost else []
        if ran:
            raise JobIncompleteError(
                f"job {self._job_id} cannot finish: {len(ran)} batch(es) marked as run (e.g. "
                f"batch {ran[0]}) left no result: removed from Redis before this notebook read "
                "them, or marked by someone with the workers' Redis credentials"
            )
        if lost:
            log.warning(
                "job %s: sending %d batch(es) again that Redis no longer held",
                self._job_id,
                len(lost),
            )
            self._enqueue(lost)

    def finish(self, *, delivered: bool) -> None:
        """Close the job's records: finished (delivered: its caller has the results, which Redis
        no longer keeps), its function's speed, where its data went."""
        speed = self.dispatcher.seconds_per_task
        try:
            status = replace(self._status, total=self.total)
            self._broker.finish(status, speed, delivered=delivered)
            self._broker.remember_routes(self._ran_on)
        except BrokerError as exc:  # every result is in hand: they matter more than records
            log.warning(
                "job %s: all results are in, but Redis refused to close it: %s", self._job_id, exc
            )
