# SPDX-License-Identifier: BSD-3-Clause
"""The Redis key schema: every key rhc uses, built by one class.

Keys, all under ``rhc:<namespace>:``::

    tasks:<compat>         stream  task batches any worker of one compatibility class may take;
                                   consumer group "workers" (one consumer per worker)
    worker:<name>:tasks    stream  task batches routed to one worker (cache affinity); same group
    worker:<name>:alive    string  a worker's heartbeat; expires after the heartbeat TTL
    worker:<name>:merged   set     entries (merged_member) the worker ran and merged into a partial
                                   result, acknowledged only once it stores that partial
    workers                hash    worker name -> WorkerInfo (JSON)
    reaper                 string  lock held by the one worker sweeping dead workers
    fn:<digest>            string  a job's function, sealed, content addressed: stored once
    fnstats                hash    function digest -> mean task seconds measured last time
    jobs                   zset    running job id -> its sender's last sign of life
    jobs:recent            zset    job id -> creation time in integer milliseconds: the latest
                                   jobs, running or ended, for the dashboard; capped
    affinity               hash    data key (e.g. a chunk's) -> worker that last processed it
    job:<id>               hash    JobRecord fields, including the `done` counter, and `signed`:
                                   the JobStatus its sender signed (all a reader trusts)
    job:<id>:results       stream  sealed ResultMessages; deleted once delivered to the caller
    ran:<id>               hash    batch number -> the worker that ran it and stored its result:
                                   a batch is never run twice. Workers may only add (HSETNX)
    control                pubsub  ControlMessage, signed: cancel a job, flush its partial results
    counters               hash    what the namespace did, for metrics (rhc.wire.activity): tasks
                                   submitted (by senders), started, succeeded, failed, retried and
                                   their runtimes (by workers, in the pipelines they already send)
    job:<id>:spans         stream  a job's batches as run: worker, start, end, tasks (its timeline);
                                   capped, expires with the job's results
    failures               stream  the latest failed tasks: job, task, error, traceback, argument;
                                   capped
    departures             stream  the latest workers that left or lost their task process, and
                                   why; capped
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    """Builds every Redis key of one namespace."""

    namespace: str

    @property
    def prefix(self) -> str:
        return f"rhc:{self.namespace}:"

    def task_stream(self, compat: str) -> str:
        return f"{self.prefix}tasks:{compat}"

    def worker_stream(self, worker: str) -> str:
        return f"{self.prefix}worker:{worker}:tasks"

    def alive(self, worker: str) -> str:
        return f"{self.prefix}worker:{worker}:alive"

    def merged(self, worker: str) -> str:
        return f"{self.prefix}worker:{worker}:merged"

    @property
    def workers(self) -> str:
        return f"{self.prefix}workers"

    @property
    def reaper_lock(self) -> str:
        return f"{self.prefix}reaper"

    def function(self, digest: str) -> str:
        return f"{self.prefix}fn:{digest}"

    @property
    def function_stats(self) -> str:
        return f"{self.prefix}fnstats"

    @property
    def jobs(self) -> str:
        return f"{self.prefix}jobs"

    @property
    def recent_jobs(self) -> str:
        return f"{self.prefix}jobs:recent"

    @property
    def affinity(self) -> str:
        return f"{self.prefix}affinity"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def results(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}:results"

    def ran(self, job_id: str) -> str:
        return f"{self.prefix}ran:{job_id}"

    @property
    def control(self) -> str:
        return f"{self.prefix}control"

    @property
    def counters(self) -> str:
        return f"{self.prefix}counters"

    def spans(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}:spans"

    @property
    def failures(self) -> str:
        return f"{self.prefix}failures"

    @property
    def departures(self) -> str:
        return f"{self.prefix}departures"
