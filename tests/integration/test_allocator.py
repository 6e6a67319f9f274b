# SPDX-License-Identifier: BSD-3-Clause
"""A worker's task process reuses the memory its tasks freed, instead of faulting it in anew."""

from __future__ import annotations

from rhc import Manager
from tests import fixtures


def test_a_task_reuses_memory_that_earlier_allocations_freed(cluster):
    # Given a worker
    cluster.start_workers(1)
    # When a task fills and frees arrays of 1, 8 and 16 MB, 20 times each
    faults = Manager().remote_map(fixtures.faults_per_allocation, [1, 8, 16], progress=False)
    # Then no page is faulted in again: the freed memory is reused (glibc's defaults faulted
    # 9 to 26 pages an allocation here, and a pad at the heap's top alone 930 at 8 MB)
    assert max(faults) < 1, faults


def test_a_fresh_workers_first_task_keeps_new_memory_on_pages_already_in_memory(cluster):
    # Given a worker just started
    cluster.start_workers(1)
    # When its first task makes 100 MB of buffers and keeps them (a cold run's cached arrays)
    faults = Manager().remote_map(fixtures.faults_keeping, [100], progress=False)
    # Then they land on heap its task process faulted in when it started, where they faulted
    # 25,600 fresh pages in
    assert faults[0] < 1000, faults
