# SPDX-License-Identifier: BSD-3-Clause
"""The worker's in-process cache: least recently used out first, within a byte budget."""

from __future__ import annotations

from rhc.worker.cache import MemoryCache, size_of


class Array:
    """Stands for a numpy array: what counts is its `nbytes`, not its Python object size."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes


def test_sizes_are_counted_in_payload_bytes():
    assert size_of(b"x" * 1000) == 1000
    assert size_of(bytearray(300)) == 300
    assert size_of(memoryview(b"x" * 50)) == 50
    assert size_of(Array(10**9)) == 10**9


def test_the_least_recently_used_value_is_evicted_past_the_budget():
    cache = MemoryCache(max_bytes=100)
    cache["a"] = b"a" * 40
    cache["b"] = b"b" * 40
    # Given "a" was used after "b"
    assert cache.get("a") == b"a" * 40
    # When a third value pushes the cache over its budget
    cache["c"] = b"c" * 40
    # Then "b" goes, and the rest stays within the budget
    assert "b" not in cache
    assert "a" in cache and "c" in cache
    assert cache.bytes == 80 and len(cache) == 2


def test_one_large_value_evicts_as_many_old_ones_as_needed():
    cache = MemoryCache(max_bytes=100)
    for key in "abcd":
        cache[key] = b"x" * 25

    cache["big"] = b"y" * 70

    assert list(key for key in "abcd" if key in cache) == ["d"]
    assert cache.bytes == 95


def test_a_value_larger_than_the_whole_budget_is_not_kept():
    cache = MemoryCache(max_bytes=100)
    cache["small"] = b"s" * 10
    cache["key"] = b"old" * 10

    cache["key"] = b"x" * 101

    assert "key" not in cache
    assert cache.get("small") == b"s" * 10
    assert cache.bytes == 10


def test_replacing_a_value_counts_only_the_new_one():
    cache = MemoryCache(max_bytes=100)
    cache["key"] = b"x" * 60

    cache["key"] = b"y" * 70

    assert cache.get("key") == b"y" * 70
    assert cache.bytes == 70 and len(cache) == 1


def test_hits_and_misses_are_counted():
    cache = MemoryCache(max_bytes=100)
    cache["key"] = b"value"

    assert cache.get("key") == b"value"
    assert cache.get("key") == b"value"
    assert cache.get("absent") is None
    assert cache.get("absent", "fallback") == "fallback"

    assert (cache.hits, cache.misses) == (2, 2)


def test_pop_and_clear_keep_the_byte_count_right():
    cache = MemoryCache(max_bytes=100)
    cache["a"] = b"a" * 30
    cache["b"] = b"b" * 20

    assert cache.pop("a") == b"a" * 30
    assert cache.pop("a") is None
    assert cache.bytes == 20 and len(cache) == 1

    cache.clear()
    assert cache.bytes == 0 and len(cache) == 0
    # And the full budget is available again
    cache["c"] = b"c" * 100
    assert "c" in cache and cache.bytes == 100
