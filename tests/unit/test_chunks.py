# SPDX-License-Identifier: BSD-3-Clause
"""Cutting filesets into chunks, on the real samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from rhc.config import samples_directory
from rhc.nanoaod import chunks
from rhc.nanoaod.chunks import BadFilesError, Chunk, datasets, make_chunks
from rhc.nanoaod.locations import open_file


@pytest.fixture(scope="module")
def samples() -> dict[str, str]:
    found = {path.name: str(path) for path in samples_directory().glob("*.root")}
    assert len(found) == 3, f"the NanoAOD samples are missing from {samples_directory()}"
    return found


def test_files_are_cut_into_chunks_of_chunksize_without_an_empty_trailing_one(samples):
    # Given a 40-event file cut into 20-event chunks: exactly two, no empty third
    chunking = make_chunks([samples["nano_dy.root"]], 20)
    assert [(c.entry_start, c.entry_stop) for c in chunking.chunks] == [(0, 20), (20, 40)]
    # And 15-event chunks leave a shorter last one
    chunking = make_chunks([samples["nano_dy.root"]], 15)
    assert [c.events for c in chunking.chunks] == [15, 15, 10]
    assert chunking.events == 40


def test_datasets_keep_their_names_and_a_plain_list_is_one_dataset(samples):
    fileset = {
        "dy": [samples["nano_dy.root"]],
        "ttbar": [samples["nanoAOD_2015_CMS_Open_Data_ttbar.root"]],
    }
    chunking = make_chunks(fileset, 100)
    assert [(c.dataset, c.events) for c in chunking.chunks] == [
        ("dy", 40),
        ("ttbar", 100),
        ("ttbar", 100),
    ]
    assert datasets(["a.root", "b.root"]) == {"default": ["a.root", "b.root"]}
    assert datasets("a.root") == {"default": ["a.root"]}


def test_a_chunk_is_hashable_and_its_key_names_its_data():
    one = Chunk("d", "f.root", 0, 10)
    assert one == Chunk("d", "f.root", 0, 10) and len({one, Chunk("d", "f.root", 0, 10)}) == 1
    assert one.key == Chunk("other dataset", "f.root", 0, 10).key  # the same data
    assert one.key != Chunk("d", "f.root", 10, 20).key != Chunk("d", "g.root", 0, 10).key


def test_missing_branches_and_files_are_bad_files_with_reasons(samples, tmp_path):
    with pytest.raises(BadFilesError) as caught:
        make_chunks([samples["nano_dy.root"], str(tmp_path / "gone.root")], branches=["Muon_nope"])
    reasons = {bad.file: bad.reason for bad in caught.value.bad_files}
    assert reasons[samples["nano_dy.root"]] == "no branch 'Muon_nope' in 'Events'"
    assert reasons[str(tmp_path / "gone.root")] == "file not found"


def test_skipping_bad_files_keeps_the_good_ones(samples, tmp_path):
    (tmp_path / "text.root").write_text("not ROOT at all")
    chunking = make_chunks(
        [samples["nano_dy.root"], str(tmp_path / "text.root")], 100, skip_bad_files=True
    )
    assert [c.file for c in chunking.chunks] == [samples["nano_dy.root"]]
    assert [bad.file for bad in chunking.bad_files] == [str(tmp_path / "text.root")]


def test_nonsense_arguments_are_refused():
    with pytest.raises(ValueError, match="chunksize"):
        make_chunks(["a.root"], 0)
    with pytest.raises(ValueError, match="no files"):
        make_chunks({"empty": []})


def test_a_rerun_opens_no_local_file_again_unless_it_changed(samples, tmp_path, monkeypatch):
    # Given a copy of a sample, cut into chunks once
    one, other = (
        Path(samples[name])
        for name in ("nano_dimuon.root", "nanoAOD_2015_CMS_Open_Data_ttbar.root")
    )
    path = tmp_path / "copy.root"
    path.write_bytes(one.read_bytes())
    first = make_chunks([str(path)], 10)
    opened = []
    monkeypatch.setattr(chunks, "open_file", lambda *a: opened.append(a) or open_file(*a))
    # When the same file is cut again
    again = make_chunks([str(path)], 10)
    # Then it is not opened: its count is remembered
    assert again == first and not opened
    # And when another file takes its place, that one is opened and counted
    path.unlink()
    path.write_bytes(other.read_bytes())
    replaced = make_chunks([str(path)], 10)
    assert len(opened) == 1
    assert replaced.events == make_chunks([str(other)], 10).events != first.events
