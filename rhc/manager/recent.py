# SPDX-License-Identifier: BSD-3-Clause
"""What a manager remembers per function across its jobs, bounded: a notebook may define
functions without end (each lambda is one), but only its recent ones come back."""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Recent(dict[K, V]):
    """A dict of at most `kept` keys: setting one makes it the newest, the oldest go first."""

    def __init__(self, kept: int) -> None:
        super().__init__()
        self._kept = kept

    def __setitem__(self, key: K, value: V) -> None:
        self.pop(key, None)
        super().__setitem__(key, value)
        while len(self) > self._kept:
            del self[next(iter(self))]
