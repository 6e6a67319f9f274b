# SPDX-License-Identifier: BSD-3-Clause
"""What every benchmark reports beside its figures: the machine it ran on; and where the
figures go."""

import contextlib
import json
import os
import platform
from pathlib import Path

import rhc

RESULTS = Path(__file__).resolve().parent / "results"


def machine(**versions: str) -> dict[str, object]:
    """Cores, CPU model, Python and platform, rhc's version and those of the peers measured."""
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next((line.split(":", 1)[1].strip() for line in lines if "model name" in line), cpu)
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "rhc": rhc.__version__,
        **versions,
    }


def publish(name: str, summary: dict, table: str) -> None:
    """Print a benchmark's table and keep its summary in benchmarks/results/NAME.json."""
    print(table)
    path = RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"written: {path.relative_to(RESULTS.parent.parent)}")
