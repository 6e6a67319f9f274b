# SPDX-License-Identifier: BSD-3-Clause
"""How many result entries a job reads at once."""

from __future__ import annotations

from rhc.manager.paging import (
    FUNCTIONS_KEPT,
    MOST_ENTRIES_PER_READ,
    PagingByFunction,
    ResultPaging,
)


def entry(size: int) -> tuple[bytes, dict[bytes, bytes]]:
    return (b"1-0", {b"result": bytes(size)})


def test_a_job_reads_one_entry_until_it_has_seen_how_large_they_are():
    assert ResultPaging(budget=100).count == 1


def test_the_count_is_what_the_budget_holds_of_the_largest_entry_seen():
    # Given a budget of 100 bytes
    paging = ResultPaging(budget=100)
    # When entries of 10 and 30 bytes came
    paging.saw([entry(10), entry(30)])
    # Then a read asks for three; a smaller entry later does not raise it again
    assert paging.count == 3
    paging.saw([entry(1)])
    assert paging.count == 3


def test_an_entry_over_the_budget_is_still_read_one_at_a_time():
    paging = ResultPaging(budget=100)
    paging.saw([entry(500)])
    assert paging.count == 1


def test_tiny_entries_are_read_at_most_so_many_at_once():
    paging = ResultPaging(budget=10**9)
    paging.saw([entry(1)])
    assert paging.count == MOST_ENTRIES_PER_READ


def test_an_empty_read_changes_nothing():
    paging = ResultPaging(budget=100)
    paging.saw([])
    assert paging.count == 1


def test_a_functions_next_job_reads_as_many_as_its_last_one_learnt():
    # Given a job of function f that saw entries of 1 kB
    pagings = PagingByFunction()
    pagings.of("f").saw([entry(1000)])
    # Then the next job of f starts from that count, and a job of another function from one
    assert pagings.of("f").count > 1
    assert pagings.of("g").count == 1


def test_only_the_last_functions_are_remembered():
    pagings = PagingByFunction()
    pagings.of("f").saw([entry(1000)])
    for n in range(FUNCTIONS_KEPT):
        pagings.of(f"other-{n}")
    assert pagings.of("f").count == 1


def test_entries_much_larger_than_those_seen_before_lower_the_count():
    # Given a count sized on entries of 10 bytes
    paging = ResultPaging(budget=100)
    paging.saw([entry(10)])
    # When an entry of 50 bytes comes (a merged job's partial after its progress reports)
    paging.saw([entry(50)])
    # Then the next read asks for two
    assert paging.count == 2
