# SPDX-License-Identifier: BSD-3-Clause
"""A worker's memory cache: values kept across tasks within a byte budget. It lives as long as
the worker's task process, so a second run over the same data finds it already here."""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Hashable


def size_of(value: object) -> int:
    """Bytes an object holds: `nbytes` for arrays, sys.getsizeof otherwise."""
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    return sys.getsizeof(value)


class MemoryCache:
    """Keeps values across tasks, evicting the least recently used past a byte budget.

    A value larger than the whole budget is not kept.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, default: object = None) -> object:
        item = self._items.get(key)
        if item is None:
            self.misses += 1
            return default
        self.hits += 1
        self._items.move_to_end(key)
        return item[0]

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __setitem__(self, key: Hashable, value: object) -> None:
        self.pop(key)
        size = size_of(value)
        if size > self.max_bytes:
            return
        self._items[key] = (value, size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, (_, evicted) = self._items.popitem(last=False)
            self.bytes -= evicted

    def pop(self, key: Hashable) -> object:
        item = self._items.pop(key, None)
        if item is None:
            return None
        self.bytes -= item[1]
        return item[0]

    def clear(self) -> None:
        self._items.clear()
        self.bytes = 0
