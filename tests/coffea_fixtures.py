# SPDX-License-Identifier: BSD-3-Clause
"""coffea processors the workers import (the repository is on their PYTHONPATH in the tests).

Apart from tests/fixtures.py because importing coffea takes seconds: only the workers of the
coffea tests and benchmark pay for it.
"""

from __future__ import annotations

import time

import awkward as ak
from coffea import processor

from rhc.coffea.dimuon import DimuonProcessor


class SlowDimuonProcessor(DimuonProcessor):
    """The dimuon processor taking at least `seconds` per chunk: a run long enough to kill a
    worker in the middle of it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def process(self, events: ak.Array) -> dict:
        time.sleep(self.seconds)
        return super().process(events)


class FailingProcessor(processor.ProcessorABC):
    """Raises on the chunk starting at entry `at` of any file, a KeyError from a bad branch name,
    as a bug in a processor would."""

    def __init__(self, at: int) -> None:
        self.at = at

    def process(self, events: ak.Array) -> dict:
        if events.metadata["entrystart"] == self.at:
            return {"x": events["NoSuchBranch"]}
        return {"events": len(events)}

    def postprocess(self, accumulator: dict) -> dict:
        return accumulator
