# SPDX-License-Identifier: BSD-3-Clause
"""How an executor's last run went: for each phase coffea's Runner called it for, the job that
ran it, the partial results the notebook received, and a span per item (worker, start, end)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rhc.nanoaod.timeline import Summary, TaskSpan, plot_timeflow, summarize

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PREPROCESSING, PROCESSING = "preprocessing", "processing"
"""The phases of a Runner call: reading each file's metadata, then processing its chunks."""


@dataclass(frozen=True)
class Phase:
    """One call of the executor: the rhc job, how many items it ran, how many partial results
    reached the notebook (about one per worker), its wall seconds and its items' spans."""

    name: str
    job: str
    items: int
    partials: int
    seconds: float
    spans: tuple[TaskSpan, ...]


@dataclass
class RunRecord:
    """The phases of the last run, shared by an executor and the copies coffea's Runner makes of
    it (copy() passes it along), so the executor the user holds shows how the run went."""

    phases: list[Phase] = field(default_factory=list)

    def add(self, phase: Phase) -> None:
        """Record a phase; preprocessing, or a phase already recorded, begins a new run (a run
        whose files' metadata coffea has cached skips preprocessing)."""
        if phase.name == PREPROCESSING or any(p.name == phase.name for p in self.phases):
            self.phases.clear()
        self.phases.append(phase)

    def phase(self, name: str) -> Phase | None:
        return next((phase for phase in self.phases if phase.name == name), None)

    @property
    def partials(self) -> int:
        """Partial results the notebook received in the whole run."""
        return sum(phase.partials for phase in self.phases)

    def spans(self) -> list[TaskSpan]:
        """A span per item of every phase, in the order the phases ran."""
        return [span for phase in self.phases for span in phase.spans]

    def summary(self) -> Summary:
        """Workers, wall time, efficiency, mean task time and gap, events/s.

        Raises:
          ArgumentError: nothing ran yet.
        """
        return summarize(self.spans())

    def plot_timeline(self, path: str | os.PathLike[str] | None = None) -> tuple[Figure, Summary]:
        """One bar per item, a row per worker; saved as PNG to path if given.

        Raises:
          ArgumentError: nothing ran yet.
        """
        return plot_timeflow(self.spans(), path)
