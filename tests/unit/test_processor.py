# SPDX-License-Identifier: BSD-3-Clause
"""Processors in this process (run_locally): required branches make a file bad when missing,
optional ones arrive where the file has them and are simply absent elsewhere."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import pytest

from rhc.nanoaod import BadFilesError, Chunk, Processor, run_locally


class WeightSeen(Processor):
    """Reports, per file, whether its events came with a genWeight field."""

    branches = ("MET_pt",)
    optional_branches = ("genWeight", "MET_pt")  # one of them required as well: read once

    def process(self, events: ak.Array, chunk: Chunk) -> dict:
        return {chunk.file: {"genWeight" in events.fields}}


class NeedsWeight(WeightSeen):
    branches = ("MET_pt", "genWeight")
    optional_branches = ()


def data_and_simulation(samples: list[str]) -> tuple[str, str]:
    """Collision data (no genWeight) and a simulated sample (with one)."""
    named = {Path(path).name: path for path in samples}
    return named["nano_dimuon.root"], named["nano_dy.root"]


def test_an_optional_branch_arrives_where_the_file_has_it_and_is_absent_elsewhere(samples):
    # Given collision data (no genWeight) and simulation (with one)
    data, simulation = data_and_simulation(samples)
    # When a processor that reads genWeight where it can runs over both
    result = run_locally(WeightSeen(), {"data": [data], "DY": [simulation]}, chunksize=15)
    # Then neither file is bad, and only the simulated events have the field
    assert result.bad_files == [] and result.events == 80
    assert result.value == {data: {False}, simulation: {True}}


def test_a_required_branch_missing_from_a_file_still_makes_it_a_bad_file(samples):
    data, simulation = data_and_simulation(samples)

    with pytest.raises(BadFilesError, match="no branch 'genWeight'"):
        run_locally(NeedsWeight(), [data, simulation])
    skipped = run_locally(NeedsWeight(), [data, simulation], skip_bad_files=True)
    assert [bad.file for bad in skipped.bad_files] == [data]
    assert skipped.value == {simulation: {True}}
