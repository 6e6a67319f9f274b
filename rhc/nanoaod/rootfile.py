# SPDX-License-Identifier: BSD-3-Clause
"""Writing a result's histograms to a ROOT file with uproot, for ROOT or uproot to read back.

How entries are named:
- nested dict keys join with "/", which ROOT reads as directories: {"mass": h, "met": {"pt": g}}
  is written as `mass` and `met/pt`; a result that is one histogram is written as its name, or
  `histogram`;
- a histogram with category axes (Dimuon's dataset axis) becomes one histogram per category,
  one path level per category axis: `mass/DY`, `mass/data`, titled "Dataset: DY". uproot 5.7
  would write it as one TH2 with labelled bins, but drops the under- and overflow of the other
  axes there; and ROOT users expect a histogram per sample. Content in a category axis's
  overflow bin is written as `.../overflow` (or as a last bin labelled "overflow" when the
  category axis is the only one);
- a dict of numbers (Dimuon's sumw) becomes one TH1D with a labelled bin per key: `sumw`;
- "/" and ";" inside a key or a category become "_" (ROOT reads them as a directory and a
  cycle), and the histogram's title keeps the category as it was.
Anything else (lists, arrays, single numbers) is left out, and logged.
"""

from __future__ import annotations

import itertools
import logging
import numbers
from collections.abc import Iterator, Mapping
from os import PathLike

import boost_histogram as bh
import hist
import numpy as np
import uproot

from rhc.errors import ArgumentError, RhcError

log = logging.getLogger(__name__)

_Name = tuple[str, ...]


class NothingToSaveError(RhcError):
    """Raised when a result holds no histogram, and no dict of numbers, to write to a file."""


def save(value: object, path: str | PathLike[str]) -> list[str]:
    """Write the histograms and the dicts of numbers in `value` to a new ROOT file at `path`
    (replacing a file there), named as the module says.

    Returns:
      The names written, in the order of `value`: `uproot.open(path)[name]` reads each back.

    Raises:
      NothingToSaveError: `value` holds nothing that can be written; no file is written.
      ArgumentError: two entries would have the same name, or uproot cannot write a
        histogram (more than three axes besides categories); no file is written.
    """
    entries: dict[str, object] = {}
    skipped: list[str] = []
    for name, item in _savable(value, (), skipped):
        if name in entries:
            raise ArgumentError(f"two entries of the result would both be written as {name!r}")
        try:
            entries[name] = uproot.to_writable(item)
        except (TypeError, ValueError) as exc:
            raise ArgumentError(f"cannot write {name!r} to a ROOT file: {exc}") from exc
    if not entries:
        raise NothingToSaveError(
            f"nothing to write to {path}: the result ({type(value).__name__}) holds no histogram "
            "and no dict of numbers; save() writes hist.Hist values, in dicts or not"
        )
    if skipped:
        log.info("not written to %s, neither histograms nor numbers: %s", path, ", ".join(skipped))
    with uproot.recreate(path) as root_file:
        for name, item in entries.items():
            root_file[name] = item
    return list(entries)


def _savable(value: object, name: _Name, skipped: list[str]) -> Iterator[tuple[str, object]]:
    """(name, histogram) for everything in value that can be written."""
    if isinstance(value, bh.Histogram):
        histogram = value if isinstance(value, hist.Hist) else hist.Hist(value)
        yield from _split(histogram, name or (histogram.name or "histogram",))
    elif isinstance(value, Mapping) and value and all(map(_is_number, value.values())):
        yield "/".join(name or ("values",)), _table(value, name[-1] if name else "values")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _savable(item, (*name, _component(key)), skipped)
    else:
        skipped.append("/".join(name) or type(value).__name__)


def _split(histogram: hist.Hist, name: _Name) -> Iterator[tuple[str, hist.Hist]]:
    """The histogram, or one per category when it has category axes besides others."""
    axes = list(histogram.axes)
    split = [i for i, axis in enumerate(axes) if _is_category(axis)]
    if len(split) == len(axes):  # categories only: the last stays, as labelled bins
        split.pop()
    if not split:
        yield "/".join(name), _labelled(histogram)
        return
    kept = [axis for i, axis in enumerate(axes) if i not in split]
    view = histogram.view(flow=True)
    for bins in itertools.product(*(range(_bins(axes[i])) for i in split)):
        index: list[object] = [slice(None)] * len(axes)
        labels, titles = [], []
        for i, at in zip(split, bins, strict=True):
            index[i] = at
            labels.append(str(axes[i].value(at)) if at < len(axes[i]) else "overflow")
            titles.append(f"{axes[i].label}: {labels[-1]}")
        piece = hist.Hist(*kept, storage=histogram.storage_type(), name=", ".join(titles))
        piece.view(flow=True)[...] = view[tuple(index)]
        overflow = any(at == len(axes[i]) for i, at in zip(split, bins, strict=True))
        if overflow and not np.any(piece.values(flow=True)):
            continue  # an empty overflow category is no news
        yield "/".join((*name, *map(_component, labels))), _labelled(piece)


def _labelled(histogram: hist.Hist) -> hist.Hist:
    """The histogram, with a category axis that has an overflow bin (its only axis, if any)
    turned into labelled bins: uproot 5.7 writes such an axis shifted by one bin, losing the
    overflow."""
    axis = histogram.axes[0]
    if histogram.ndim != 1 or not _is_category(axis) or not axis.traits.overflow:
        return histogram
    labels = [*map(str, axis), "overflow"]
    relabelled = hist.Hist(
        hist.axis.StrCategory(labels, name=axis.name, label=axis.label),
        storage=histogram.storage_type(),
        name=histogram.name,
    )
    relabelled.view()[...] = histogram.view(flow=True)
    return relabelled


def _table(numbers_by_key: Mapping, title: str) -> hist.Hist:
    """A dict of numbers as a histogram with a labelled bin per key."""
    keys = [str(key) for key in numbers_by_key]
    table = hist.Hist(hist.axis.StrCategory(keys, name="key"), storage=hist.storage.Double())
    table.name = title
    table.view()[...] = np.array([float(number) for number in numbers_by_key.values()])
    return table


def _bins(axis: bh.axis.Axis) -> int:
    """The bins of a category axis, its overflow included (category axes have no underflow)."""
    return len(axis) + int(axis.traits.overflow)


def _is_category(axis: bh.axis.Axis) -> bool:
    return isinstance(axis, (bh.axis.StrCategory, bh.axis.IntCategory))


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _component(key: object) -> str:
    """A key or category as one level of a ROOT name."""
    return str(key).strip("/").replace("/", "_").replace(";", "_") or "_"
