# SPDX-License-Identifier: BSD-3-Clause
"""How far a job is, and the bar that shows it (a widget in Jupyter, text in a terminal)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from tqdm.auto import tqdm

BAR_DELAY = 0.5
"""Seconds a job runs before its bar appears: a notebook's small maps end sooner, and a bar
that flashes by costs more than the map (tqdm's own `delay` would still build it)."""


@dataclass(frozen=True)
class Progress:
    """How far a job is: tasks done (failed ones included) out of total (None until known)."""

    done: int
    failed: int
    total: int | None

    def __str__(self) -> str:
        total = "?" if self.total is None else self.total
        return f"{self.done}/{total} tasks done, {self.failed} failed"


class ProgressBar:
    """A tqdm bar that follows a job once it has run BAR_DELAY seconds; shows nothing when
    disabled."""

    def __init__(self, enabled: bool, job_id: str) -> None:
        self._enabled = enabled
        self._job_id = job_id
        self._started = time.monotonic()
        self._bar: tqdm | None = None

    def show(self, progress: Progress) -> None:
        if self._bar is None:
            running = time.monotonic() - self._started
            if not self._enabled or running < BAR_DELAY:
                return
            self._bar = tqdm(desc=f"job {self._job_id}", unit="task", dynamic_ncols=True)
            self._bar.start_t -= running  # its elapsed time and rate count from the job's start
        if progress.total is not None and self._bar.total != progress.total:
            self._bar.total = progress.total
        self._bar.update(progress.done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
