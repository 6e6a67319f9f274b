# SPDX-License-Identifier: BSD-3-Clause
"""How many result entries a job reads at once: about as many as fit a budget of bytes.

Results pile up in Redis while no notebook reads them (a kernel busy elsewhere, or one that
re-attaches to a job hours later). Read all at once, thousands of entries of megabytes each
would take gigabytes in one reply: in the notebook, and in Redis's output buffer, where it
counts against maxmemory: Redis refuses the workers' writes meanwhile. The count follows the
largest entry seen so far: entries much larger than those before them (a merged job's partials
after its progress reports) can still come several at once.
"""

from __future__ import annotations

import threading

from rhc import defaults
from rhc.manager.recent import Recent

MOST_ENTRIES_PER_READ = 10_000
"""The most result entries one read asks for, however small they are."""

FUNCTIONS_KEPT = 64
"""The functions whose result sizes a manager remembers across their jobs."""


class ResultPaging:
    """The count of the next result read: one until an entry was seen, then as many as the
    budget holds of the largest entry seen so far."""

    def __init__(self, budget: int | None = None) -> None:
        self._budget = defaults.RESULT_BYTES_PER_READ if budget is None else budget
        self._largest = 0
        self._lock = threading.Lock()  # concurrent jobs of one function share it
        self.count = 1

    def saw(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        largest = max((sum(map(len, fields.values())) for _, fields in entries), default=0)
        with self._lock:
            self._largest = max(self._largest, largest)
            if self._largest:
                self.count = max(1, min(MOST_ENTRIES_PER_READ, self._budget // self._largest))


class PagingByFunction:
    """Each function's ResultPaging, kept across its jobs: a map run again starts from what its
    results weighed before, not from one entry a read (a round trip more per job)."""

    def __init__(self) -> None:
        self._kept: Recent[str, ResultPaging] = Recent(FUNCTIONS_KEPT)
        self._lock = threading.Lock()  # jobs are made from any of the caller's threads

    def of(self, function: str) -> ResultPaging:
        with self._lock:
            paging = self._kept.get(function) or ResultPaging()
            self._kept[function] = paging  # now the most recently used
            return paging
