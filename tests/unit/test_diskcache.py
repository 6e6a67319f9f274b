# SPDX-License-Identifier: BSD-3-Clause
"""The NanoAOD layer's disk cache of remote files, over fsspec's in-memory filesystem."""

from __future__ import annotations

import os
import stat

import fsspec
import pytest

from rhc.errors import ConfigurationError
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


def test_the_cache_directory_is_made_for_this_user_alone(tmp_path):
    fsspec.filesystem("memory").pipe("/rhc-test/mine.root", b"m" * 10)
    cache = DiskCache(tmp_path / "cache", max_bytes=1000)
    assert cache.path("memory://rhc-test/mine.root").read_bytes() == b"m" * 10
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o700


def test_a_cache_directory_others_may_write_is_refused_before_anything_in_it_is_used(tmp_path):
    # Given a directory other users may write, holding a file planted as a "cached copy"
    url = "memory://rhc-test/planted.root"
    fsspec.filesystem("memory").pipe("/rhc-test/planted.root", b"genuine")
    planted = DiskCache(tmp_path / "shared", max_bytes=1000)
    planted.path(url).write_bytes(b"forged")
    (tmp_path / "shared").chmod(0o777)
    # When a worker's cache is there, then it refuses it, and reads nothing from it
    with pytest.raises(ConfigurationError, match="open to other users \\(mode 0777\\)"):
        DiskCache(tmp_path / "shared", max_bytes=1000).path(url)


def test_a_cache_directory_of_another_user_is_refused(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only root can give a directory to another user")
    other = tmp_path / "theirs"
    other.mkdir(mode=0o700)
    os.chown(other, 12345, 12345)
    with pytest.raises(ConfigurationError, match="belongs to uid 12345"):
        DiskCache(other, max_bytes=1000).path("memory://rhc-test/any.root")
