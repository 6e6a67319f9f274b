# SPDX-License-Identifier: BSD-3-Clause
"""The NanoAOD layer's disk cache of remote files, over fsspec's in-memory filesystem."""

from __future__ import annotations

import os

import fsspec

from rhc.nanoaod.diskcache import DiskCache, is_remote


def test_the_disk_cache_fetches_once_and_evicts_the_least_recently_used(tmp_path):
    # Given three 400-byte remote files and a 1,000-byte budget
    memory = fsspec.filesystem("memory")
    for name in "abc":
        memory.pipe(f"/rhc-test/{name}.root", name.encode() * 400)
    cache = DiskCache(tmp_path / "cache", max_bytes=1000)
    urls = [f"memory://rhc-test/{name}.root" for name in "abc"]
    # When a and b are fetched, a used again, then c fetched
    first = cache.path(urls[0])
    assert first.read_bytes() == b"a" * 400 and cache.bytes_fetched == 400
    cache.path(urls[1])
    assert cache.path(urls[0]) == first and cache.bytes_fetched == 800  # no second fetch
    os.utime(cache.path(urls[1]), (1, 1))  # b is now the least recently used
    cache.path(urls[2])
    # Then b was evicted to stay within budget, a and c kept
    assert cache.holds(urls[0]) and cache.holds(urls[2]) and not cache.holds(urls[1])


def test_a_file_larger_than_the_disk_budget_is_not_cached(tmp_path):
    fsspec.filesystem("memory").pipe("/rhc-test/big.root", b"x" * 5000)
    cache = DiskCache(tmp_path / "cache", max_bytes=1000)
    assert cache.path("memory://rhc-test/big.root") is None
    assert not list((tmp_path / "cache").iterdir())


def test_only_network_urls_count_as_remote():
    assert is_remote("http://host/f.root") and is_remote("root://eos.cern.ch//f.root")
    assert not is_remote("/data/f.root") and not is_remote("file:///data/f.root")
