# SPDX-License-Identifier: BSD-3-Clause
"""When a worker stores the values it merged for a job: asked by the job's manager, or late."""

from __future__ import annotations

from rhc.wire.protocol import TaskBatch, TaskEntry
from rhc.worker.merging import Mergings
from rhc.worker.store import Ran


def merge(mergings: Mergings, job: str, number: int) -> None:
    batch = TaskBatch("tests", job, number, 10 * number, 10, "f", 3, 60.0, 0.0, reduce=True)
    entry = TaskEntry("stream", f"{number}-0".encode(), job, number, 0, b"")
    mergings.add(entry, batch, [], 0.0, 1.0, Ran(1.0))


def test_a_request_that_comes_while_the_jobs_batch_still_runs_makes_its_merge_due_at_once():
    # Given a worker asked for a job's partial before it merged anything of that job
    mergings = Mergings(flush_interval=3600.0)
    mergings.want("job")
    assert mergings.due() == []
    # When the batch it was running is merged, it is due at once, not after the interval
    merge(mergings, "job", 0)
    assert mergings.due() == ["job"]
    # Then, once stored, a later batch of the job waits for the next request
    mergings.take("job")
    merge(mergings, "job", 1)
    assert mergings.due() == []


def test_a_request_for_one_job_leaves_the_others_merging():
    mergings = Mergings(flush_interval=3600.0)
    merge(mergings, "asked", 0)
    merge(mergings, "other", 0)
    mergings.want("asked")
    assert mergings.due() == ["asked"]
