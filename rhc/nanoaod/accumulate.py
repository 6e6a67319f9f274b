# SPDX-License-Identifier: BSD-3-Clause
"""Merging processor outputs: pure functions, so workers and the manager fold results the same way.

Nothing here touches Redis or files (coffea's ``accumulator.py`` keeps the same line): a value
merged on a worker and one merged on the manager go through the same ``add``.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Iterable
from typing import Any

import boost_histogram as bh
import numpy as np

from rhc.errors import ArgumentError

__all__ = ["accumulate", "add"]

_Path = tuple[Any, ...]


def add(a: Any, b: Any) -> Any:
    """Merge ``b`` into ``a`` and return the result.

    ``a`` may be modified in place and should not be used afterwards (the caller owns it);
    ``b`` is never modified, and no part of it is shared with the result in a way a later
    ``add`` could modify. ``None`` (or a key missing from one dict) is the identity on either
    side, whatever the other value is. Dicts merge key-wise, numbers
    and arrays and histograms add, lists concatenate (in merge order) and sets unite.

    Raises:
      TypeError: if the two values cannot be merged; the message names both types and, inside
        dicts, the key path.
      ValueError: if two arrays differ in shape or two histograms in axes or storage.
    """
    return _add(a, b, ())


def accumulate(items: Iterable[Any], start: Any = None) -> Any:
    """Fold ``add`` over ``items``; ``start`` (modified in place) if there are none."""
    result = start
    for item in items:
        result = _add(result, item, ())
    return result


def _add(a: Any, b: Any, path: _Path) -> Any:
    if b is None:
        return a
    if a is None:
        # A deep copy, so that merging more into the result later cannot reach into ``b``.
        return copy.deepcopy(b)
    if a is b and isinstance(a, (dict, list, set, np.ndarray, bh.Histogram)):
        # Merging a value into itself in place would read what it is writing.
        b = copy.deepcopy(b)
    if _is_number(a) and _is_number(b):
        return a + b
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return _add_arrays(a, b, path)
    if isinstance(a, bh.Histogram) and isinstance(b, bh.Histogram):
        try:
            a += b
        except (ValueError, TypeError) as error:
            raise ArgumentError(
                f"cannot merge incompatible histograms{_at(path)}: {error}"
            ) from error
        return a
    if isinstance(a, dict) and isinstance(b, dict):
        for key, value in b.items():
            a[key] = _add(a.get(key), value, (*path, key))
        return a
    if isinstance(a, list) and isinstance(b, list):
        a.extend(b)
        return a
    if isinstance(a, (set, frozenset)) and isinstance(b, (set, frozenset)):
        if isinstance(a, set):
            a |= b
            return a
        return a | b
    raise ArgumentError(
        f"cannot merge {type(a).__name__} and {type(b).__name__}{_at(path)}: results must be "
        "numbers, numpy arrays, histograms, or dicts, lists or sets of them"
    )


def _add_arrays(a: np.ndarray, b: np.ndarray, path: _Path) -> np.ndarray:
    if a.shape != b.shape:
        raise ArgumentError(f"cannot merge arrays of shapes {a.shape} and {b.shape}{_at(path)}")
    # In place only when it loses nothing: an int array plus a float array becomes a float
    # array, and an array decoded from a buffer may be read-only.
    if a.flags.writeable and np.result_type(a, b) == a.dtype:
        np.add(a, b, out=a)
        return a
    return a + b


def _is_number(value: object) -> bool:
    # numbers.Number covers numpy scalars too; numpy booleans are left out on purpose, since
    # they add as a logical or rather than as counts.
    return isinstance(value, numbers.Number)


def _at(path: _Path) -> str:
    return " at " + "".join(f"[{key!r}]" for key in path) if path else ""
