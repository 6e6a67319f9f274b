# SPDX-License-Identifier: BSD-3-Clause
"""Which workers can run this notebook's jobs, from what they advertise."""

from __future__ import annotations

import pytest

from rhc.errors import SecretMismatchError
from rhc.manager.registry import MAX_ROUND_TRIP, WorkerRegistry
from rhc.wire.protocol import WorkerInfo
from tests.conftest import live_worker_info


def registry_of(*infos: WorkerInfo) -> WorkerRegistry:
    return WorkerRegistry(
        lambda: list(infos), namespace="ns", heartbeat_ttl=10, key_id="k1", secret_id="s1"
    )


def worker(name: str, task_keys: list[str], secret_id: str = "s1") -> WorkerInfo:
    return live_worker_info(name, task_keys=task_keys, secret_id=secret_id)


def test_workers_that_trust_the_key_and_share_the_secret_can_run_its_jobs():
    registry = registry_of(
        worker("a", ["k0", "k1"]), worker("b", ["k2"]), worker("c", ["k1"], "s2")
    )

    assert registry.runnable_count() == 1
    assert registry.runnable_names() == {"a"}


def test_before_a_job_exists_distrust_refuses_it_and_after_only_counts_nobody():
    registry = registry_of(worker("a", ["k2"]))

    with pytest.raises(SecretMismatchError, match="trusts task keys k2"):
        registry.runnable_count()
    # a job already running is not stopped by what workers claim (a forged registry entry)
    assert registry.runnable_count(check=False) == 0


def test_batches_are_sized_for_the_slowest_round_trip_and_a_forged_one_is_capped():
    near, far = worker("near", ["k1"]), worker("far", ["k1"])
    near.round_trip, far.round_trip = 0.0002, 0.05
    assert registry_of(near, far).round_trip() == 0.05
    far.round_trip = 100.0  # a worker's claim, in a registry its credentials can write
    assert registry_of(near, far).round_trip() == MAX_ROUND_TRIP
