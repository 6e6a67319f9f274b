# SPDX-License-Identifier: BSD-3-Clause
"""What every benchmark reports about the machine it ran on, beside its figures."""

import contextlib
import os
import platform
from pathlib import Path

import rhc


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
