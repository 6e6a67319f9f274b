# SPDX-License-Identifier: BSD-3-Clause
"""The reference analysis's selection, whatever shape its columns arrive in."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot

from rhc.nanoaod.dimuon import BRANCHES, dimuon_pairs
from rhc.nanoaod.generate import generate_physics


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> ak.Array:
    path = generate_physics(tmp_path_factory.mktemp("dimuon") / "z.root", 20_000, seed=3)
    with uproot.open(path) as file:
        return file["Events"].arrays(list(BRANCHES))


def test_a_slice_of_the_events_gives_the_pairs_of_its_events(events):
    # Given events from the 1,001st on: their lists start part-way into the flat buffers
    index, masses = dimuon_pairs(events)
    tail = events[1000:]
    assert np.asarray(tail.Muon_pt.layout.offsets)[0] > 0
    # When the pairs of the slice are selected
    tail_index, tail_masses = dimuon_pairs(tail)
    # Then they are the whole's pairs from that event on, numbered from the slice's start
    kept = index >= 1000
    assert kept.sum() > 1000
    assert np.array_equal(tail_index, index[kept] - 1000)
    assert np.array_equal(tail_masses, masses[kept])


def test_every_other_event_gives_the_pairs_of_those_events(events):
    # Given every other event: columns that are no longer one list of numbers with offsets
    index, masses = dimuon_pairs(events)
    even = events[::2]
    assert not isinstance(even.Muon_pt.layout, ak.contents.ListOffsetArray)
    # When their pairs are selected
    even_index, even_masses = dimuon_pairs(even)
    # Then they are the pairs of the even events
    kept = index % 2 == 0
    assert np.array_equal(even_index, index[kept] // 2)
    assert np.array_equal(even_masses, masses[kept])
