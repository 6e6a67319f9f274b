# SPDX-License-Identifier: BSD-3-Clause
"""Merging processor outputs: every supported type, the untouched right side, and the errors."""

from __future__ import annotations

import copy
import functools
import itertools

import hist
import numpy as np
import pytest

from rhc.nanoaod.accumulate import accumulate, add


def _mass_hist(*values: float) -> hist.Hist:
    h = hist.Hist.new.Reg(10, 50, 400, name="mass").Weight()
    h.fill(mass=list(values))
    return h


def _assert_same_hist(left: hist.Hist, right: hist.Hist) -> None:
    assert left.axes == right.axes
    np.testing.assert_array_equal(left.values(flow=True), right.values(flow=True))
    np.testing.assert_array_equal(left.variances(flow=True), right.variances(flow=True))


def test_none_is_the_identity_on_either_side():
    assert add(None, 3) == 3
    assert add(3, None) == 3
    assert add(None, None) is None


def test_adding_to_none_copies_so_later_merges_leave_the_original_alone():
    # Given a value merged into None
    b = {"counts": np.array([1, 2])}
    merged = add(None, b)
    # When more is merged into the result in place
    add(merged, {"counts": np.array([10, 10])})
    # Then the original value is unchanged
    np.testing.assert_array_equal(b["counts"], [1, 2])


def test_python_and_numpy_numbers_add():
    assert add(1, 2) == 3
    assert add(1.5, 2) == 3.5
    assert add(np.int64(4), 5) == 9
    assert add(np.float32(0.5), np.float64(0.25)) == 0.75


def test_arrays_add_elementwise_in_place():
    a = np.array([1.0, 2.0, 3.0])

    merged = add(a, np.array([10.0, 20.0, 30.0]))

    assert merged is a
    np.testing.assert_array_equal(merged, [11.0, 22.0, 33.0])


def test_an_int_array_plus_a_float_array_keeps_the_fractions():
    merged = add(np.array([1, 2]), np.array([0.5, 0.5]))

    np.testing.assert_array_equal(merged, [1.5, 2.5])


def test_a_read_only_array_is_not_written_to():
    # Given an array that cannot be written, as one decoded from a buffer may be
    a = np.frombuffer(np.array([1.0, 2.0]).tobytes())
    assert not a.flags.writeable

    merged = add(a, np.array([1.0, 1.0]))

    np.testing.assert_array_equal(merged, [2.0, 3.0])
    np.testing.assert_array_equal(a, [1.0, 2.0])


def test_arrays_of_different_shapes_are_refused_naming_both_shapes():
    with pytest.raises(ValueError, match=r"\(3,\) and \(2, 2\)"):
        add(np.zeros(3), np.zeros((2, 2)))


def test_histograms_add_bin_contents_and_variances():
    # Given two weighted histograms
    a = hist.Hist.new.Reg(4, 0, 4, name="x").Weight()
    a.fill(x=[0.5, 1.5], weight=[2.0, 3.0])
    b = hist.Hist.new.Reg(4, 0, 4, name="x").Weight()
    b.fill(x=[0.5, 3.5], weight=[4.0, 1.0])

    # When they are merged
    merged = add(a, b)

    # Then contents add, and so do the variances (sums of squared weights)
    np.testing.assert_array_equal(merged.values(), [6.0, 3.0, 0.0, 1.0])
    np.testing.assert_array_equal(merged.variances(), [20.0, 9.0, 0.0, 1.0])


def test_histograms_with_different_axes_are_refused():
    a = hist.Hist.new.Reg(10, 0, 1, name="x").Weight()
    b = hist.Hist.new.Reg(5, 0, 1, name="x").Weight()

    with pytest.raises(ValueError, match="incompatible histograms"):
        add(a, b)


def test_histograms_with_different_storages_are_refused():
    a = hist.Hist.new.Reg(10, 0, 1, name="x").Weight()
    b = hist.Hist.new.Reg(10, 0, 1, name="x").Double()

    with pytest.raises(ValueError, match="incompatible histograms"):
        add(a, b)


def test_growing_category_axes_merge_their_categories():
    # Given histograms filled for different datasets on a growing category axis
    a = hist.Hist.new.StrCat([], growth=True, name="dataset").Reg(2, 0, 2, name="x").Double()
    b = a.copy()
    a.fill(dataset="DoubleMuon", x=0.5)
    b.fill(dataset="DY", x=1.5)

    merged = add(a, b)

    assert list(merged.axes["dataset"]) == ["DoubleMuon", "DY"]
    assert merged["DY", 1] == 1.0


def test_dicts_merge_key_wise_keeping_every_key_of_both():
    merged = add({"a": 1, "shared": 2}, {"shared": 3, "b": 4})

    assert merged == {"a": 1, "shared": 5, "b": 4}


def test_nested_dicts_of_histograms_merge_at_every_level():
    # Given per-dataset outputs, as a processor returns them
    a = {"DY": {"mass": _mass_hist(91.0), "events": 10}, "cutflow": {"all": 10}}
    b = {"DY": {"mass": _mass_hist(91.0, 120.0), "events": 5}, "TT": {"events": 7}}

    merged = add(a, b)

    assert set(merged) == {"DY", "TT", "cutflow"}
    assert merged["DY"]["events"] == 15
    assert merged["DY"]["mass"].sum().value == 3.0
    assert merged["TT"] == {"events": 7}
    assert merged["cutflow"] == {"all": 10}


def test_lists_concatenate_and_sets_unite():
    assert add([1, 2], [3]) == [1, 2, 3]
    assert add({"a", "b"}, {"b", "c"}) == {"a", "b", "c"}
    assert add(frozenset({1}), {2}) == {1, 2}


def test_the_right_side_is_never_modified():
    # Given a right side holding every mutable type
    b = {
        "mass": _mass_hist(91.0),
        "counts": np.array([1, 2, 3]),
        "files": ["f1.root"],
        "runs": {1},
        "nested": {"x": 1},
    }
    before = copy.deepcopy(b)
    a = {
        "mass": _mass_hist(120.0),
        "counts": np.array([1, 1, 1]),
        "files": ["f0.root"],
        "runs": {2},
    }

    # When it is merged into a left side, and then more is merged into the result
    merged = add(a, b)
    add(merged, copy.deepcopy(before))

    # Then it is exactly as it was
    _assert_same_hist(b["mass"], before["mass"])
    np.testing.assert_array_equal(b["counts"], before["counts"])
    assert b["files"] == before["files"]
    assert b["runs"] == before["runs"]
    assert b["nested"] == before["nested"]


def test_adding_a_value_to_itself_doubles_it():
    h = _mass_hist(91.0, 91.0, 200.0)
    expected_values = 2 * h.values()
    expected_variances = 2 * h.variances()
    merged = add(h, h)
    np.testing.assert_array_equal(merged.values(), expected_values)
    np.testing.assert_array_equal(merged.variances(), expected_variances)

    array = np.array([1, 2])
    np.testing.assert_array_equal(add(array, array), [2, 4])

    d = {"n": 1, "inner": {"m": np.array([1.0])}}
    merged = add(d, d)
    assert merged["n"] == 2
    np.testing.assert_array_equal(merged["inner"]["m"], [2.0])

    items = [1]
    assert add(items, items) == [1, 1]


def test_unmergeable_values_name_both_types():
    with pytest.raises(TypeError, match="cannot merge str and str"):
        add("a", "b")
    with pytest.raises(TypeError, match="cannot merge float and ndarray"):
        add(1.0, np.zeros(2))


def test_errors_inside_dicts_name_the_key_path():
    a = {"muons": {"mass": {"bins": 1}}}
    b = {"muons": {"mass": 2.0}}

    with pytest.raises(TypeError, match=r"cannot merge dict and float at \['muons'\]\['mass'\]"):
        add(a, b)


def test_shape_errors_inside_dicts_name_the_key_path_too():
    with pytest.raises(ValueError, match=r"at \['counts'\]"):
        add({"counts": np.zeros(2)}, {"counts": np.zeros(3)})


def test_accumulate_of_nothing_is_the_start():
    assert accumulate([]) is None
    start = {"n": 0}
    assert accumulate(iter(()), start) is start


def test_accumulate_folds_every_item_without_modifying_them():
    items = [{"n": 1, "h": _mass_hist(91.0)}, {"n": 2, "h": _mass_hist(91.0)}, {"n": 3}]

    total = accumulate(items)

    assert total["n"] == 6
    assert total["h"].sum().value == 2.0
    assert items[0]["h"].sum().value == 1.0


def test_add_reduces_histograms_to_the_same_result_in_any_order():
    # Given the outputs of four tasks
    outputs = [
        {"mass": _mass_hist(60.0, 91.0), "n": 2},
        {"mass": _mass_hist(91.0), "n": 1},
        {"mass": _mass_hist(350.0, 399.0, 500.0), "n": 3},
        {"mass": _mass_hist(), "n": 0},
    ]
    # When they are reduced in every order, each from fresh copies
    results = [
        functools.reduce(add, copy.deepcopy(list(order)))
        for order in itertools.permutations(outputs)
    ]

    # Then every order gives the same histogram and count
    for result in results:
        _assert_same_hist(result["mass"], results[0]["mass"])
        assert result["n"] == 6
    assert results[0]["mass"].values(flow=True).sum() == 6.0
