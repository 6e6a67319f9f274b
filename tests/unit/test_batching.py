# SPDX-License-Identifier: BSD-3-Clause
"""Batch sizes: many tiny tasks per message, one long task per message, every worker fed."""

from __future__ import annotations

import pytest

from rhc.manager.batching import BatchSizer


def test_a_function_of_unknown_duration_is_sent_one_task_per_batch():
    sizer = BatchSizer()

    assert sizer.next_size(None, workers=4) == 1
    assert sizer.next_size(10_000, workers=4) == 1


def test_tiny_tasks_go_in_large_batches_capped_by_max_tasks():
    assert BatchSizer(1e-6).next_size(None, workers=4) == 4096
    assert BatchSizer(1e-6, max_tasks=100).next_size(None, workers=4) == 100
    assert BatchSizer(0.0, max_tasks=100).next_size(None, workers=4) == 100


def test_the_batch_fills_the_target_duration():
    # 1 ms tasks and a 50 ms target: 50 tasks per batch
    assert BatchSizer(0.001).next_size(None, workers=4) == 50
    assert BatchSizer(0.001, target_seconds=0.2).next_size(None, workers=4) == 200
    # 10.2 ms tasks: five make 51 ms, nearer the target than four (41 ms: a quarter more batches)
    assert BatchSizer(0.0102).next_size(None, workers=4) == 5


def test_tasks_known_to_be_quicker_than_the_mean_get_batches_of_their_own_size():
    # 50 ms tasks on average, but these take 1 ms (their data is cached on their worker)
    sizer = BatchSizer(0.05)
    assert sizer.next_size(None, workers=4) == 1
    assert sizer.next_size(None, workers=4, seconds_per_task=0.001) == 50
    assert sizer.next_size(40, workers=4, seconds_per_task=0.001) == 5


def test_long_tasks_go_one_per_batch():
    assert BatchSizer(1.0).next_size(None, workers=4) == 1
    assert BatchSizer(1.0).next_size(1000, workers=4) == 1


def test_near_the_end_batches_shrink_so_every_worker_gets_about_two():
    sizer = BatchSizer(0.001)
    # Given 40 tasks left for 4 workers: 10 each would take 10 ms, not negligible
    # Then each batch holds half a worker's share (two batches each) rather than the usual 50
    assert sizer.next_size(40, workers=4) == 5
    # And far from the end the usual size applies
    assert sizer.next_size(1_000_000, workers=4) == 50


def test_near_the_end_negligible_shares_are_split_once_per_worker():
    # 1,000 tasks of 10 us for 4 workers: 250 each takes 2.5 ms, too little to unbalance anything
    assert BatchSizer(1e-5).next_size(1000, workers=4) == 250


def test_what_is_left_too_little_to_share_goes_in_one_batch():
    # 100 tasks of 10 us take 1 ms in all: splitting them would cost more messages than it saves
    assert BatchSizer(1e-5).next_size(100, workers=4) == 100
    # But never more than a batch may carry
    assert BatchSizer(1e-7, max_tasks=64).next_size(100, workers=4) == 64


def test_no_workers_yet_counts_as_one():
    assert BatchSizer(0.001).next_size(40, workers=0) == 20


def test_an_unknown_remaining_count_does_not_shrink_batches():
    sizer = BatchSizer(0.001)

    assert sizer.next_size(None, workers=20) == 50


def test_observing_batches_moves_the_estimate():
    # Given no estimate, the first observation sets it
    sizer = BatchSizer()
    sizer.observe(seconds=2.0, tasks=4)
    assert sizer.seconds_per_task == pytest.approx(0.5)
    assert sizer.next_size(None, workers=1) == 1
    # When a batch runs faster, the estimate moves part of the way towards it
    sizer.observe(seconds=1.0, tasks=10)
    assert sizer.seconds_per_task == pytest.approx(0.7 * 0.5 + 0.3 * 0.1)
    # And after many fast batches it settles on their speed, and batches grow to match
    for _ in range(100):
        sizer.observe(seconds=0.001, tasks=10)
    assert sizer.seconds_per_task == pytest.approx(0.0001)
    assert sizer.next_size(None, workers=1) in (499, 500)


def test_observing_an_empty_batch_changes_nothing():
    sizer = BatchSizer(0.25)

    sizer.observe(seconds=10.0, tasks=0)

    assert sizer.seconds_per_task == 0.25


def test_workers_far_from_redis_get_batches_of_several_round_trips():
    # Given 10 ms tasks and workers 50 ms (a round trip) away from Redis
    far = BatchSizer(0.01, round_trip=0.05)
    # Then a batch holds 4 round trips of work, not the usual 50 ms: its messages hide behind it
    assert far.next_size(None, workers=4) == 20
    assert BatchSizer(0.01, round_trip=0.0001).next_size(None, workers=4) == 5


def test_a_large_pool_gets_batches_long_enough_for_redis_and_the_notebook_to_keep_up():
    # Given half-second tasks, far from the end of the job
    sizer = BatchSizer(0.5)
    # Then 20 workers get one task per batch, and 2,000 get 4 s batches: 500 batches a second
    assert sizer.next_size(None, workers=20) == 1
    assert sizer.next_size(None, workers=2000) == 8
    # And near the end, every one of them still gets about two batches of what is left
    assert sizer.next_size(4000, workers=2000) == 1
