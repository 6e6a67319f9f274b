# SPDX-License-Identifier: BSD-3-Clause
"""How far a job is, and the bar that shows it (a widget in Jupyter, text in a terminal)."""

from __future__ import annotations

from dataclasses import dataclass

from tqdm.auto import tqdm


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
    """A tqdm bar that follows a job; shows nothing when disabled."""

    def __init__(self, enabled: bool, job_id: str) -> None:
        self._bar = tqdm(desc=f"job {job_id}", unit="task", dynamic_ncols=True) if enabled else None

    def show(self, progress: Progress) -> None:
        if self._bar is None:
            return
        if progress.total is not None and self._bar.total != progress.total:
            self._bar.total = progress.total
        self._bar.update(progress.done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
