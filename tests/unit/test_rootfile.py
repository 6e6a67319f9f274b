# SPDX-License-Identifier: BSD-3-Clause
"""Results written to ROOT files with uproot and read back with it: names, a histogram per
category, tables of numbers, and what cannot be saved."""

from __future__ import annotations

import logging

import hist
import numpy as np
import pytest
import uproot

from rhc.errors import ArgumentError
from rhc.nanoaod import NothingToSaveError
from rhc.nanoaod.dimuon import mass_histogram
from rhc.nanoaod.rootfile import save


def filled_mass() -> hist.Hist:
    """A weighted mass histogram of two datasets, with under- and overflow entries."""
    histogram = mass_histogram(["DY", "data"])
    histogram.fill(dataset="DY", mass=[20.0, 91.2, 91.5, 500.0], weight=[0.5, 2.0, -1.0, 3.0])
    histogram.fill(dataset="data", mass=[60.0, 450.0], weight=1.0)
    return histogram


def test_a_dataset_axis_becomes_one_th1_per_dataset_with_its_flow_bins(tmp_path):
    # Given a weighted histogram of two datasets with entries below and above its range
    histogram = filled_mass()
    # When it is saved
    path = tmp_path / "out.root"
    names = save({"mass": histogram}, path)
    # Then each dataset is a TH1D of its own, equal bin for bin, flow bins and sums of squares
    # too (uproot would write one TH2 and lose the flow bins of the mass axis)
    assert names == ["mass/DY", "mass/data"]
    with uproot.open(path) as root_file:
        for dataset in ("DY", "data"):
            written, wanted = root_file[f"mass/{dataset}"], histogram[dataset, :]
            assert written.classname == "TH1D"
            assert np.array_equal(written.values(flow=True), wanted.values(flow=True))
            assert np.array_equal(written.variances(flow=True), wanted.variances(flow=True))
            assert written.to_hist().axes[0].label == wanted.axes[0].label
        assert root_file["mass/DY"].values(flow=True)[[0, -1]].tolist() == [0.5, 3.0]


def test_nested_dicts_become_directories_and_odd_characters_in_names_become_underscores(tmp_path):
    # Given histograms in nested dicts, under a key a CMS dataset name with slashes
    plain = hist.Hist.new.Reg(4, 0, 4, name="pt").Double()
    plain.fill([0.5, 3.5, 3.5])
    value = {"met": {"pt": plain}, "/DYJets/Run2;1/NANOAODSIM": {"pt": plain}}
    # When saved
    names = save(value, tmp_path / "out.root")
    # Then the keys are joined with "/", and "/" or ";" inside a key turned into "_"
    assert names == ["met/pt", "DYJets_Run2_1_NANOAODSIM/pt"]
    with uproot.open(tmp_path / "out.root") as root_file:
        assert root_file["met/pt"].values().tolist() == [1, 0, 0, 2]
        assert root_file.classnames()["met;1"] == "TDirectory"


def test_a_dict_of_numbers_becomes_a_histogram_with_a_labelled_bin_per_key(tmp_path):
    save({"sumw": {"DY": 1.5e6, "data": 40}}, tmp_path / "out.root")

    with uproot.open(tmp_path / "out.root") as root_file:
        sumw = root_file["sumw"]
        assert sumw.axis().labels() == ["DY", "data"]
        assert sumw.values().tolist() == [1.5e6, 40.0]


def test_a_category_overflow_is_kept_as_a_labelled_bin_or_an_overflow_histogram(tmp_path):
    # Given category axes with overflow bins (uproot writes such an axis a bin off, losing them)
    counts = hist.Hist.new.IntCat([1, 2], name="n").Double()
    counts.fill([1, 3, 3])
    by_channel = hist.Hist.new.StrCat(["ee"], name="channel").Reg(2, 0, 2, name="x").Double()
    by_channel.fill(["ee", "mumu"], [0.5, 1.5])
    # When saved
    names = save({"counts": counts, "x": by_channel}, tmp_path / "out.root")
    # Then nothing is lost
    assert names == ["counts", "x/ee", "x/overflow"]
    with uproot.open(tmp_path / "out.root") as root_file:
        assert root_file["counts"].axis().labels() == ["1", "2", "overflow"]
        assert root_file["counts"].values().tolist() == [1, 0, 2]
        assert root_file["x/overflow"].values().tolist() == [0, 1]


def test_a_single_histogram_is_saved_under_its_name(tmp_path):
    histogram = hist.Hist.new.Reg(2, 0, 2).Double()
    assert save(histogram, tmp_path / "a.root") == ["histogram"]
    histogram.name = "mll"
    assert save(histogram, tmp_path / "b.root") == ["mll"]


def test_values_that_are_not_histograms_are_left_out_and_logged(tmp_path, caplog):
    # Given a result holding a histogram and things that are not histograms nor numbers
    value = {"mass": filled_mass(), "files": ["a.root"], "masses": np.arange(3)}
    # When saved
    with caplog.at_level(logging.INFO, logger="rhc.nanoaod.rootfile"):
        names = save(value, tmp_path / "out.root")
    # Then the histograms are written and the rest is named in the log
    assert names == ["mass/DY", "mass/data"]
    assert "files, masses" in caplog.text


@pytest.mark.parametrize("value", [None, 42, [1, 2], {"files": ["a.root"]}, {}])
def test_a_result_with_nothing_to_save_is_refused_and_writes_no_file(tmp_path, value):
    with pytest.raises(NothingToSaveError, match="holds no histogram"):
        save(value, tmp_path / "out.root")
    assert not (tmp_path / "out.root").exists()


def test_two_entries_of_the_same_name_or_a_histogram_uproot_cannot_write_are_refused(tmp_path):
    plain = hist.Hist.new.Reg(2, 0, 2).Double()
    with pytest.raises(ArgumentError, match="'a_b'"):
        save({"a/b": plain, "a;b": plain}, tmp_path / "out.root")
    four = hist.Hist.new.Reg(2, 0, 1).Reg(2, 0, 1).Reg(2, 0, 1).Reg(2, 0, 1).Double()
    with pytest.raises(ArgumentError, match="cannot write 'four'"):
        save({"four": four}, tmp_path / "out.root")
    assert not (tmp_path / "out.root").exists()
