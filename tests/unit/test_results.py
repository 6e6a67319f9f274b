# SPDX-License-Identifier: BSD-3-Clause
"""Collecting results: each task counted once, in input order, whatever arrives twice."""

from __future__ import annotations

import operator

import pytest

from rhc.errors import MergeError
from rhc.manager.results import MapResults, MergedResult, SpanSet
from rhc.wire.protocol import Failure


def failure(task: int, message: str = "boom") -> Failure:
    return Failure(task=task, kind="exception", error_type="ValueError", message=message)


# --- SpanSet ------------------------------------------------------------------------------------


def test_a_span_set_overlaps_only_what_it_holds():
    spans = SpanSet()
    spans.add(10, 20)
    spans.add(30, 40)

    assert spans.overlaps(15, 16) and spans.overlaps(5, 11) and spans.overlaps(19, 31)
    assert spans.overlaps(0, 100) and spans.overlaps(39, 45)
    assert not spans.overlaps(0, 10) and not spans.overlaps(20, 30) and not spans.overlaps(40, 50)
    assert spans.size == 20


def test_an_empty_span_set_overlaps_nothing():
    assert not SpanSet().overlaps(0, 10)
    assert SpanSet().size == 0


def test_adjacent_spans_merge_into_one():
    # Given two spans with a gap between them
    spans = SpanSet()
    spans.add(0, 5)
    spans.add(10, 15)
    # When the gap is filled
    spans.add(5, 10)
    # Then one span remains (internals inspected: merging is what keeps lookups cheap)
    assert (spans._starts, spans._stops) == ([0], [15])
    assert spans.size == 15
    assert spans.overlaps(14, 15) and not spans.overlaps(15, 16)


def test_spans_added_out_of_order_stay_sorted_and_disjoint():
    spans = SpanSet()
    for start in (40, 0, 20):
        spans.add(start, start + 5)

    assert (spans._starts, spans._stops) == ([0, 20, 40], [5, 25, 45])
    assert not spans.overlaps(5, 20) and spans.overlaps(24, 26)
    assert spans.size == 15


# --- MapResults ---------------------------------------------------------------------------------


def test_map_results_keep_input_order_whatever_order_batches_arrive_in():
    results = MapResults()

    assert results.add([(3, 3)], ["d", "e", "f"], []) == [3, 4, 5]
    assert results.add([(0, 3)], ["a", "b", "c"], []) == [0, 1, 2]

    assert results.values == ["a", "b", "c", "d", "e", "f"]
    assert results.count == 6


def test_a_batch_reported_twice_counts_once_and_the_first_report_wins():
    results = MapResults()
    results.add([(0, 2)], ["first", "first"], [])

    # When the same batch is reported again, by a worker presumed dead
    fresh = results.add([(0, 2)], ["second", "second"], [])

    assert fresh == []
    assert results.count == 2
    assert results.values == ["first", "first"]


def test_a_report_overlapping_a_previous_one_adds_only_the_new_tasks_at_their_place():
    results = MapResults()
    results.add([(0, 2)], [0, 10], [])

    fresh = results.add([(1, 3)], [-10, 20, 30], [])

    assert fresh == [2, 3]
    assert results.values == [0, 10, 20, 30]


def test_failures_are_recorded_and_values_of_the_other_tasks_stay_aligned():
    results = MapResults()

    fresh = results.add([(0, 3)], ["a", "c"], [failure(1)])

    assert fresh == [0, 1, 2]
    assert results.value(0) == "a" and results.value(2) == "c"
    assert results.failures == {1: failure(1)}
    assert results.count == 3


def test_a_later_success_does_not_replace_a_first_failure_nor_the_reverse():
    results = MapResults()
    results.add([(0, 1)], [], [failure(0, "first")])
    results.add([(1, 1)], ["ok"], [])

    assert results.add([(0, 2)], ["late", "late"], [failure(1, "late")]) == []

    assert results.failures == {0: failure(0, "first")}
    assert results.value(1) == "ok"
    assert results.count == 2


# --- MergedResult -------------------------------------------------------------------------------


def test_disjoint_partials_are_merged_with_the_reducer():
    merged = MergedResult(operator.add)

    assert merged.add([(0, 5)], 10, True, [])
    assert merged.add([(10, 5), (5, 5)], 32, True, [failure(7)])

    assert merged.value == 42 and merged.has_value
    assert merged.covered.size == 15
    assert merged.failures == {7: failure(7)}


def test_a_reduce_failing_in_the_notebook_says_which_function_failed_and_why():
    merged = MergedResult(operator.add)
    assert merged.add([(0, 5)], "five", True, [])

    with pytest.raises(MergeError) as caught:
        merged.add([(5, 5)], 5, True, [])

    assert str(caught.value).startswith(
        "the reduce function add failed merging two workers' partial results in the notebook: "
        "TypeError: can only concatenate str"
    )


def test_a_partial_overlapping_what_is_merged_is_refused_and_changes_nothing():
    calls = []

    def reducer(a, b):
        calls.append((a, b))
        return a + b

    merged = MergedResult(reducer)
    merged.add([(0, 10)], 100, True, [])

    assert merged.add([(20, 5), (9, 2)], 1, True, [failure(20)]) is False

    assert merged.value == 100
    assert merged.covered.size == 10
    assert merged.failures == {}
    assert calls == []
    # And the tasks it covered can still be merged from a disjoint report
    assert merged.add([(10, 15)], 1, True, [])
    assert merged.value == 101 and calls == [(100, 1)]
    # And only the partials taken in are counted
    assert merged.partials == 2


def test_a_partial_without_a_value_covers_its_tasks_without_calling_the_reducer():
    def reducer(a, b):
        raise AssertionError("the reducer must not see a missing value")

    merged = MergedResult(reducer)

    assert merged.add([(0, 3)], None, False, [failure(0), failure(1), failure(2)])
    assert merged.add([(3, 1)], "only", True, [])

    assert merged.value == "only" and merged.has_value
    assert merged.covered.size == 4
    assert sorted(merged.failures) == [0, 1, 2]


def test_a_partial_whose_spans_overlap_each_other_is_refused():
    merged = MergedResult(operator.add)
    assert merged.add([(0, 5), (3, 5)], 1, True, []) is False
    assert merged.covered.size == 0 and not merged.has_value
