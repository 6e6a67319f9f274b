# SPDX-License-Identifier: BSD-3-Clause
"""The NanoAOD layer's disk cache of the byte ranges read from remote files."""

from __future__ import annotations

import os
import stat

import pytest

from rhc.errors import ConfigurationError
from rhc.nanoaod.locations import locations
from rhc.nanoaod.rangecache import RangeCache
from rhc.nanoaod.source import is_remote

URL = "http://host/f.root"
SIZE = 10_000


def test_a_stored_range_serves_itself_and_any_range_inside_it_but_no_other(tmp_path):
    # Given the bytes 100-300 of a file, stored
    cache = RangeCache(tmp_path / "cache", max_bytes=10_000)
    data = bytes(range(200))
    cache.put(URL, SIZE, 100, data)
    # Then they serve the same range, and a range inside it
    assert cache.get(URL, SIZE, 100, 300) == data
    assert cache.get(URL, SIZE, 150, 160) == data[50:60]
    # But not a range reaching past them, nor the same file at another size (replaced)
    assert cache.get(URL, SIZE, 250, 350) is None
    assert cache.get(URL, SIZE + 1, 100, 300) is None


def test_a_range_to_the_end_of_the_file_serves_a_request_reaching_past_it(tmp_path):
    # uproot asks for more than the file holds when it reads its end
    cache = RangeCache(tmp_path / "cache", max_bytes=10_000)
    cache.put(URL, SIZE, SIZE - 50, b"e" * 50)
    assert cache.get(URL, SIZE, SIZE - 50, SIZE + 400) == b"e" * 50


def test_ranges_another_process_stored_are_found(tmp_path):
    # Given two caches on one directory, as a worker's task processes have
    mine, theirs = (RangeCache(tmp_path / "cache", max_bytes=10_000) for _ in range(2))
    assert mine.get(URL, SIZE, 0, 10) is None
    # When one stores a range, then the other finds it
    theirs.put(URL, SIZE, 0, b"0123456789")
    assert mine.get(URL, SIZE, 2, 5) == b"234"


def test_the_files_least_recently_used_are_evicted_past_the_budget(tmp_path):
    # Given ranges of three files within a 1,000-byte budget, b the least recently used
    cache = RangeCache(tmp_path / "cache", max_bytes=1000)
    for name in "ab":
        cache.put(f"http://host/{name}.root", SIZE, 0, name.encode() * 400)
    (b_folder,) = (p.parent for p in (tmp_path / "cache").glob("*/*") if p.read_bytes()[:1] == b"b")
    os.utime(b_folder, (1, 1))
    assert cache.get("http://host/a.root", SIZE, 0, 400) == b"a" * 400
    # When c's range is stored, then b's went, a's and c's stay
    cache.put("http://host/c.root", SIZE, 0, b"c" * 400)
    assert cache.get("http://host/b.root", SIZE, 0, 400) is None
    assert cache.get("http://host/a.root", SIZE, 0, 400) == b"a" * 400
    assert cache.get("http://host/c.root", SIZE, 0, 400) == b"c" * 400


def test_a_range_larger_than_the_budget_is_not_kept(tmp_path):
    cache = RangeCache(tmp_path / "cache", max_bytes=1000)
    cache.put(URL, SIZE, 0, b"x" * 5000)
    assert cache.get(URL, SIZE, 0, 5000) is None


def test_only_network_urls_count_as_remote():
    assert is_remote("http://host/f.root") and is_remote("root://eos.cern.ch//f.root")
    assert not is_remote("/data/f.root") and not is_remote("file:///data/f.root")


def test_a_file_is_tried_at_its_own_place_then_at_each_redirector():
    redirectors = ["root://first.example//", "root://second.example/"]
    assert locations("root://site.example//store/a.root", redirectors) == [
        "root://site.example//store/a.root",
        "root://first.example//store/a.root",
        "root://second.example//store/a.root",
    ]
    assert locations("/store/a.root", redirectors) == [
        "root://first.example//store/a.root",
        "root://second.example//store/a.root",
    ]
    assert locations("/data/a.root", redirectors) == ["/data/a.root"]
    assert locations("http://host/a.root", redirectors) == ["http://host/a.root"]


def test_the_cache_directory_is_made_for_this_user_alone(tmp_path):
    RangeCache(tmp_path / "cache", max_bytes=1000).put(URL, SIZE, 0, b"m" * 10)
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o700


def test_a_cache_directory_others_may_write_is_refused_before_anything_in_it_is_used(tmp_path):
    # Given a directory other users may write, holding bytes planted as "cached"
    RangeCache(tmp_path / "shared", max_bytes=1000).put(URL, SIZE, 0, b"forged")
    (tmp_path / "shared").chmod(0o777)
    # When a worker's cache is there, then it refuses it, and reads nothing from it
    with pytest.raises(ConfigurationError, match="open to other users \\(mode 0777\\)"):
        RangeCache(tmp_path / "shared", max_bytes=1000).get(URL, SIZE, 0, 6)


def test_a_cache_directory_of_another_user_is_refused(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only root can give a directory to another user")
    other = tmp_path / "theirs"
    other.mkdir(mode=0o700)
    os.chown(other, 12345, 12345)
    with pytest.raises(ConfigurationError, match="belongs to uid 12345"):
        RangeCache(other, max_bytes=1000).get(URL, SIZE, 0, 6)
