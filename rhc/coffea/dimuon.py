# SPDX-License-Identifier: BSD-3-Clause
"""The reference analysis as a coffea processor for NanoEvents, as a coffea user writes it:
what the coffea tests, the benchmark and the example notebook run through rhc.coffea.Executor.

The selection of rhc.nanoaod.dimuon, on events.Muon. coffea's candidates add the muons in
float32, so a mass on a bin edge may fall in the bin next to rhc.nanoaod.dimuon's (8 of 372,519
pairs of a generated million events): compare this processor with itself under another executor.
"""

from __future__ import annotations

import awkward as ak
import hist
from coffea import processor

CUTS = ("events", "two good muons", "both pt > 15, opposite charge", "mass 50-400 GeV")
"""The cutflow's steps, in order."""


def mass_histogram() -> hist.Hist:
    """1 GeV bins from 50 to 400 GeV, as rhc.nanoaod.dimuon bins them; a count per bin."""
    return hist.Hist.new.Reg(350, 50, 400, name="mass", label=r"$m_{\mu\mu}$ [GeV]").Double()


class DimuonProcessor(processor.ProcessorABC):
    """The reference dimuon analysis written for NanoEvents, as a coffea user writes it: muons
    with mediumId, pfRelIso04_all < 0.35 and pt >= 7; events with exactly two, both with
    pt > 15 and of opposite charge; their mass from 50 to 400 GeV. Per dataset, the mass
    histogram and the cutflow (events left after each cut)."""

    def process(self, events: ak.Array) -> dict:
        muons = events.Muon
        good = muons[muons.mediumId & (muons.pfRelIso04_all < 0.35) & (muons.pt >= 7)]
        pairs = good[ak.num(good) == 2]
        first, second = pairs[:, 0], pairs[:, 1]
        kept = (first.pt > 15) & (second.pt > 15) & (first.charge != second.charge)
        mass = (first[kept] + second[kept]).mass
        in_range = (mass >= 50) & (mass < 400)
        histogram: hist.Hist = mass_histogram()
        histogram.fill(ak.to_numpy(mass))
        counts = (len(events), len(pairs), int(ak.sum(kept)), int(ak.sum(in_range)))
        return {
            events.metadata["dataset"]: {
                "mass": histogram,
                "cutflow": dict(zip(CUTS, counts, strict=True)),
            }
        }

    def postprocess(self, accumulator: dict) -> dict:
        return accumulator
