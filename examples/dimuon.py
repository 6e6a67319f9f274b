# SPDX-License-Identifier: BSD-3-Clause
"""The reference analysis on whatever cluster RHC_CONFIG_FILE describes (`make run-local`): the real
NanoAOD samples when they are there (a dataset each, named after its file), plus a generated file
of a million events; a histogram per dataset, saved to dimuon.root."""

import sys
import tempfile
from pathlib import Path

import numpy as np

from rhc import Manager
from rhc.config import samples_directory
from rhc.nanoaod import Dimuon, run
from rhc.nanoaod.dimuon import direct
from rhc.nanoaod.generate import generate_physics


def main() -> None:
    manager = Manager()
    samples = sorted(str(path) for path in samples_directory().glob("*.root"))
    if not samples:
        print(f"no samples in {samples_directory()} (set RHC_SAMPLES): generated data only")
    with tempfile.TemporaryDirectory(prefix="rhc-example-") as scratch:
        generated = str(generate_physics(Path(scratch) / "physics.root", 1_000_000, seed=1))
        fileset = {Path(path).stem: [path] for path in samples} | {"generated": [generated]}
        for label in ("cold", "warm"):
            result = run(manager, Dimuon(), fileset, chunksize=100_000)
            summary = result.summary()
            print(
                f"{label} run: {result.events:,} events in {summary.wall_seconds:.2f} s "
                f"({summary.events_per_second:,.0f} events/s), {summary}"
            )
        expected = direct(fileset)
        mass = result.value["mass"]
        same = np.array_equal(mass.view(flow=True), expected["mass"].view(flow=True))
        entries = ", ".join(f"{name} {count:,}" for name, count in result.value["entries"].items())
        print(
            f"dimuon histograms per dataset, entries: {entries}; "
            f"equal to a single-process computation bin for bin: {same}"
        )
        print(f"saved to dimuon.root: {', '.join(result.save('dimuon.root'))}")
        result.plot_timeline("timeline.png")
        print("timeline: timeline.png")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
