# SPDX-License-Identifier: BSD-3-Clause
"""Reading chunks: the worker's memory cache is the only place arrays are kept."""

from __future__ import annotations

import pytest

from rhc.nanoaod.chunks import Chunk
from rhc.nanoaod.reading import Reader
from rhc.worker import MemoryCache

BRANCHES = ["Muon_pt", "Muon_eta"]


@pytest.fixture
def chunk(samples: list[str]) -> Chunk:
    """All 40 events of a sample whose muon baskets lie past what opening the file reads."""
    return Chunk(
        "default", next(path for path in samples if path.endswith("nano_dimuon.root")), 0, 40
    )


def test_a_chunk_the_memory_cache_did_not_keep_is_read_from_storage_again(chunk):
    # Given a reader whose memory cache keeps nothing (its budget is one byte)
    reader = Reader(MemoryCache(max_bytes=1))
    # When it reads the same chunk twice
    events, first = reader.read(chunk, BRANCHES)
    again, second = reader.read(chunk, BRANCHES)
    # Then both reads went to storage: no cache outside the memory cache's budget kept the arrays
    assert first > 0
    assert second == first
    assert again.to_list() == events.to_list()


def test_a_chunk_the_memory_cache_kept_is_not_read_from_storage(chunk):
    # Given a reader whose memory cache has room
    memory = MemoryCache(max_bytes=10_000_000)
    reader = Reader(memory)
    events, first = reader.read(chunk, BRANCHES)
    # When it reads the same chunk again
    again, second = reader.read(chunk, BRANCHES)
    # Then the arrays came from the memory cache alone
    assert first > 0
    assert second == 0
    assert memory.hits == len(BRANCHES)
    assert again.to_list() == events.to_list()
