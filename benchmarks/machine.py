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


def header(summary: dict) -> list[str]:
    """The first lines of every benchmark's table: its command and the machine it ran on."""
    host = dict(summary["machine"])
    described = f"{host.pop('cores')} cores ({host.pop('cpu')}), Python {host.pop('python')}, "
    described += host.pop("platform") + "; " + ", ".join(f"{k} {v}" for k, v in host.items())
    return [f"command: {summary['command']}", f"machine: {described}"]


def figure_table(summary: dict, method: str, units: dict[str, tuple[str, str]], width: int) -> str:
    """A benchmark's figures, one per line with its unit and its target's verdict, under the
    header and `method`; `units` names each figure's unit and format, `width` its label's."""
    figures, targets = summary["figures"], summary["targets"]
    lines = [*header(summary), f"method: {method}", ""]
    lines.append(f"{'figure':<{width}}{'value':>14}  {'target':<12}")
    for name, (unit, form) in units.items():
        target = targets.get(name)
        verdict = (
            ""
            if target is None
            else f"{target['target']:<12}" + ("met" if target["met"] else "MISSED")
        )
        label = f"{name} ({unit})" if unit else name
        lines.append(f"{label:<{width}}{figures[name]:>14{form}}  {verdict}")
    lines.append(f"\nruntime: {summary['runtime_seconds']:.0f} s")
    return "\n".join(lines)
