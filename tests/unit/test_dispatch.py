# SPDX-License-Identifier: BSD-3-Clause
"""Routed dispatch: a worker out of its own tasks takes another's only when that is quicker."""

from __future__ import annotations

import pytest

from rhc.manager.batching import BatchSizer
from rhc.manager.dispatch import JobSpec, RoutedDispatcher, SentBatch
from rhc.wire.signing import TaskKey, new_task_key

CACHED, UNCACHED = 0.1, 0.5
"""Seconds a task takes on the worker that cached its data, and elsewhere: long enough that
every batch holds one task."""
ALIVE = {"a", "b"}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def key() -> TaskKey:
    return TaskKey(new_task_key())


FUNCTION = "f" * 32


def routed(
    key: TaskKey,
    clock: Clock,
    *,
    a: int,
    b: int,
    earlier: float | None,
    cached_speeds: dict[str, float] | None = None,
) -> RoutedDispatcher:
    """`a` tasks cached on worker a, then `b` on worker b, for a function that took `earlier`
    seconds a task in earlier jobs (None: never run)."""
    spec = JobSpec("ns", "job", FUNCTION, False, None, 3, 60.0)
    routes = ["a"] * a + ["b"] * b
    return RoutedDispatcher(
        spec,
        list(range(a + b)),
        routes,
        key=key,
        max_payload=2**20,
        sizer=BatchSizer(earlier),
        cached_speeds=cached_speeds,
        clock=clock,
    )


def finish(dispatcher: RoutedDispatcher, batches: list[SentBatch], seconds: float) -> None:
    for sent in batches:
        dispatcher.observe([sent.number], seconds * sent.count, sent.count)
        dispatcher.settle(sent.number)


def stolen(batches: list[SentBatch]) -> list[int]:
    """The tasks of the batches sent to the shared stream."""
    return [task for s in batches if s.route is None for task in range(s.first, s.first + s.count)]


def run_b_dry(dispatcher: RoutedDispatcher, clock: Clock) -> list[SentBatch]:
    """Both workers run their first two tasks from their caches; b has one more of its own.
    What is sent next."""
    first = dispatcher.next_batches(6, 2, ALIVE)
    assert {sent.route for sent in first} == ALIVE and not stolen(first)
    clock.now += 2 * CACHED
    finish(dispatcher, first, CACHED)
    return dispatcher.next_batches(6, 2, ALIVE)


def test_a_worker_out_of_tasks_leaves_a_short_queue_to_its_owner(key):
    # Given a re-run: a function whose tasks took 0.5 s uncached before, 3 tasks cached on b
    # and 6 on a, whose cached tasks take 0.1 s
    clock = Clock()
    dispatcher = routed(key, clock, a=6, b=3, earlier=UNCACHED)
    # When b has run its own and a has 2 in hand and 2 queued (0.2 s of work)
    following = run_b_dry(dispatcher, clock)
    # Then b takes none of a's: a gets to them sooner than b would read them
    assert not stolen(following)
    assert sorted(sent.route for sent in following) == ["a", "a", "b"]


def test_a_worker_out_of_tasks_takes_from_the_back_of_a_long_queue(key):
    # Given the same, with 12 tasks cached on a: 8 queued after its 2 in hand (0.8 s of work)
    clock = Clock()
    dispatcher = routed(key, clock, a=12, b=3, earlier=UNCACHED)
    following = run_b_dry(dispatcher, clock)
    # Then b takes from the back of a's queue
    assert stolen(following) == [11]


def test_a_worker_out_of_tasks_takes_from_an_owner_that_finished_nothing_for_long(key):
    # Given a's short queue, as in the first test
    clock = Clock()
    dispatcher = routed(key, clock, a=6, b=3, earlier=UNCACHED)
    assert not stolen(run_b_dry(dispatcher, clock))
    # When a finishes nothing for as long as an uncached task takes
    clock.now += UNCACHED
    # Then b takes a's last task
    assert stolen(dispatcher.next_batches(6, 2, ALIVE)) == [5]


def test_without_a_time_for_uncached_tasks_an_idle_worker_takes_what_is_left(key):
    # Given a function never run before (a first run reads everything uncached)
    clock = Clock()
    dispatcher = routed(key, clock, a=6, b=3, earlier=None)
    # Then b takes a's last task as soon as it runs out of its own
    assert stolen(run_b_dry(dispatcher, clock)) == [5]


def test_a_rerun_that_found_everything_cached_remembers_the_uncached_time(key):
    # Given a re-run whose tasks all ran from their workers' caches
    clock = Clock()
    dispatcher = routed(key, clock, a=6, b=3, earlier=UNCACHED)
    run_b_dry(dispatcher, clock)
    assert dispatcher.sizer.seconds_per_task < UNCACHED
    # Then the time it leaves for the next run is a task's without its cache
    assert dispatcher.seconds_per_task == UNCACHED


def test_a_first_rerun_sends_each_worker_its_own_tasks_several_to_a_batch(key):
    # Given a function whose tasks took 35 ms in an earlier job, none of them from a cache
    speeds: dict[str, float] = {}
    # When a re-run sends 100 tasks cached on each worker
    dispatcher = routed(key, Clock(), a=100, b=100, earlier=0.035, cached_speeds=speeds)
    # Then each worker's first two batches last about the 50 ms target if the cache makes a
    # task 6x faster (9 x 5.8 ms), not one task each
    assert [sent.count for sent in dispatcher.next_batches(6, 2, ALIVE)] == [9, 9, 9, 9]
    # And that guess is remembered nowhere: neither as a cached time nor as the uncached one
    assert speeds == {} and dispatcher.seconds_per_task == 0.035


def test_a_rerun_sizes_each_workers_own_batches_for_its_cached_time_from_the_start(key):
    # Given an earlier job that ran 1 ms tasks from the workers' caches (0.5 s without)
    speeds: dict[str, float] = {}
    earlier = routed(key, Clock(), a=2, b=2, earlier=UNCACHED, cached_speeds=speeds)
    finish(earlier, earlier.next_batches(6, 2, ALIVE), 0.001)
    assert speeds == {FUNCTION: pytest.approx(0.001)}
    # When a re-run sends 40 tasks cached on each worker
    dispatcher = routed(key, Clock(), a=40, b=40, earlier=UNCACHED, cached_speeds=speeds)
    first = dispatcher.next_batches(6, 2, ALIVE)
    # Then each worker's first batches hold many of its tasks, not one each
    assert [sent.count for sent in first] == [20, 20, 20, 20]
    assert [sent.route for sent in first] == ["a", "a", "b", "b"]


def test_a_departed_workers_batch_run_elsewhere_counts_as_uncached(key):
    # Given a's batches routed to it, and a gone: they are moved to the shared stream
    speeds: dict[str, float] = {}
    dispatcher = routed(key, Clock(), a=2, b=2, earlier=UNCACHED, cached_speeds=speeds)
    first = dispatcher.next_batches(6, 2, ALIVE)
    assert dispatcher.departed_routes({"b"}) == ["a"]
    # When one of them runs on b, without a's cache
    moved = next(sent for sent in first if sent.route == "a")
    dispatcher.observe([moved.number], 2 * UNCACHED, 1)
    # Then its time is taken for an uncached task's, not remembered as a cached one
    assert speeds == {}
    assert dispatcher.seconds_per_task == pytest.approx(0.7 * UNCACHED + 0.3 * 2 * UNCACHED)
