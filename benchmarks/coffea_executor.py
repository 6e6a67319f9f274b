"""The coffea benchmark: a coffea processor through coffea's Runner, with rhc's executor and
coffea's own, cold and warm, in one run.

The processor is rhc.coffea.dimuon.DimuonProcessor (the reference dimuon selection on
events.Muon, NanoAODSchema), on one generated file of 2,000,000 NanoAOD-shaped events (written to
a temporary directory and removed afterwards), in chunks of 100,000 events, 2 workers a system:

  rhc        rhc.coffea.Executor on 2 fresh `rhc worker` processes: cold is the first run after
             starting the cluster (the workers import coffea in it), warm the second run on the
             same workers (their task processes stay up, coffea imported, files' pages cached)
  rhc cache  the same workers, then Runner(cachestrategy=rhc.coffea.worker_cache): cold is the
             run that fills the workers' memory caches with NanoEvents' column buffers, warm the
             next one, whose chunks go back to the workers holding them
  futures    FuturesExecutor(workers=2), as coffea documents it: each run starts its own pool of
             2 processes (cold: the first run, warm: the second)
  iterative  IterativeExecutor, in this process (cold: the first run of a round, warm: the second)

Every run gets an empty metadata cache, so both of coffea's phases run every time (reading the
file's metadata, then processing the chunks), as in a notebook's first run over a fileset.
Figures are medians over rounds; each round runs every system, one at a time, so none takes cores
from another; the file is in the OS page cache for all of them. Every output must equal the
IterativeExecutor's bin for bin, cutflow included, or the benchmark stops before reporting.
Targets (issue 14): rhc >= 1.0x futures cold, >= 3x futures warm.

Run `python benchmarks/coffea_executor.py` (or `make bench-coffea`): it prints a table and
writes benchmarks/results/coffea.json. (Not benchmarks/coffea.py: run as a script, it would be
what `import coffea` finds.)
"""

from __future__ import annotations

import contextlib
import io
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

import awkward as ak
import coffea
import numpy as np
import uproot
from coffea import processor
from coffea.nanoevents import NanoAODSchema
from harness import CHUNKSIZE, WORKERS, rhc_cluster, timed
from machine import header, machine, publish

import rhc.coffea
from rhc.coffea.dimuon import DimuonProcessor
from rhc.nanoaod.generate import generate_physics

EVENTS = 2_000_000
ROUNDS = 5
"""Each round starts a fresh cluster and runs every system cold then warm (~40 s a round)."""
SEED = 1
TARGETS = {"cold": 1.0, "warm": 3.0}
"""rhc's events/s must be at least this many times futures', cold and warm."""
SYSTEMS = {
    "rhc": "rhc.coffea.Executor, 2 rhc workers",
    "rhc cache": "  + cachestrategy=rhc.coffea.worker_cache",
    "futures": f"FuturesExecutor(workers={WORKERS}), a pool per run",
    "iterative": "IterativeExecutor, this process",
}
LABEL = 48
VERSIONS = {
    "coffea": coffea.__version__,
    "uproot": uproot.__version__,
    "awkward": ak.__version__,
    "numpy": np.__version__,
}


def run_coffea(executor: processor.ExecutorBase, path: Path, **options: object) -> dict:
    """One Runner call, as a coffea user makes it, with its progress bars off (coffea draws
    them on stdout whatever status says; the output goes nowhere here)."""
    runner = processor.Runner(
        executor=executor,
        schema=NanoAODSchema,
        chunksize=CHUNKSIZE,
        metadata_cache={},
        **options,
    )
    with contextlib.redirect_stdout(io.StringIO()):
        return runner({"DY": [str(path)]}, treename="Events", processor_instance=DimuonProcessor())


class Checker:
    """Holds every output against the IterativeExecutor's: histogram bin for bin (flow bins
    included) and cutflow equal."""

    def __init__(self, expected: dict) -> None:
        self.expected = expected["DY"]
        self.checked = 0

    def __call__(self, what: str, output: dict) -> None:
        got, want = output["DY"], self.expected
        differ = np.count_nonzero(got["mass"].values(flow=True) != want["mass"].values(flow=True))
        if differ:
            raise RuntimeError(f"{what}: the mass histogram differs from coffea's in {differ} bins")
        if got["cutflow"] != want["cutflow"]:
            raise RuntimeError(f"{what}: cutflow {got['cutflow']} is not {want['cutflow']}")
        self.checked += 1


def measure(path: Path, scratch: Path, check: Checker) -> dict[str, dict[str, list[float]]]:
    """ROUNDS rounds, every system cold then warm in each; the seconds of every run."""
    seconds: dict[str, dict[str, list[float]]] = {
        name: {"cold": [], "warm": []} for name in SYSTEMS
    }

    def add(name: str, phase: str, executor: processor.ExecutorBase, **options: object) -> None:
        took, output = timed(lambda: run_coffea(executor, path, **options))
        check(f"{name} {phase}", output)
        seconds[name][phase].append(took)

    for index in range(ROUNDS):
        print(f"round {index + 1}/{ROUNDS} ...", file=sys.stderr, flush=True)
        with rhc_cluster(scratch / f"round-{index}") as manager:
            executor = rhc.coffea.Executor(manager, status=False)
            for phase in ("cold", "warm"):
                add("rhc", phase, executor)
            for phase in ("cold", "warm"):
                add("rhc cache", phase, executor, cachestrategy=rhc.coffea.worker_cache)
        for phase in ("cold", "warm"):
            add("futures", phase, processor.FuturesExecutor(workers=WORKERS, status=False))
        for phase in ("cold", "warm"):
            add("iterative", phase, processor.IterativeExecutor())
    return seconds


def summarize(seconds: dict, generation: dict, checked: int) -> dict:
    """Everything the table shows and coffea.json keeps, every run's seconds included."""
    figures = {
        name: {
            phase: {
                "seconds": statistics.median(runs),
                "events_per_second": EVENTS / statistics.median(runs),
            }
            for phase, runs in phases.items()
        }
        for name, phases in seconds.items()
    }
    ratios = {
        phase: figures["rhc"][phase]["events_per_second"]
        / figures["futures"][phase]["events_per_second"]
        for phase in ("cold", "warm")
    }
    return {
        "command": shlex.join([sys.executable, *sys.argv]),
        "machine": machine(**VERSIONS),
        "method": {
            **{"events": EVENTS, "chunksize": CHUNKSIZE, "workers": WORKERS, "rounds": ROUNDS},
            **generation,
            "outputs_checked_against_iterative": checked,
        },
        "figures": figures,
        "ratios_rhc_to_futures": ratios,
        "targets": {
            f"rhc {phase} / futures {phase}": {
                "target": f">= {TARGETS[phase]:g}x",
                "met": ratios[phase] >= TARGETS[phase],
            }
            for phase in ("cold", "warm")
        },
        "runs": seconds,
    }


def report(summary: dict) -> str:
    method, figures = summary["method"], summary["figures"]
    futures = figures["futures"]
    lines = [
        *header(summary),
        f"data: {method['events']:,} generated events ({method['file_bytes'] / 1e6:.0f} MB), "
        f"DimuonProcessor (NanoAODSchema) in chunks of {method['chunksize']:,}, {WORKERS} "
        f"workers a system; all {method['outputs_checked_against_iterative']} outputs equal "
        "IterativeExecutor's bin for bin",
        f"method: medians of {method['rounds']} rounds; each run timed from the Runner call to "
        "its output, both phases (metadata, chunks) included",
        "",
        f"{'':<{LABEL}}{'cold s':>8}{'events/s':>12}{'vs futures':>12}"
        f"{'warm s':>8}{'events/s':>12}{'vs futures':>12}",
    ]
    for name, description in SYSTEMS.items():
        row = f"{description:<{LABEL}}"
        for phase in ("cold", "warm"):
            figure = figures[name][phase]
            ratio = figure["events_per_second"] / futures[phase]["events_per_second"]
            row += f"{figure['seconds']:>8.2f}{figure['events_per_second']:>12,.0f}{ratio:>11.2f}x"
        lines.append(row)
    lines.append("")
    for key, target in summary["targets"].items():
        phase = key.split()[1]
        verdict = "met" if target["met"] else "NOT MET"
        ratio = summary["ratios_rhc_to_futures"][phase]
        lines.append(f"target: {key} {target['target']}: {ratio:.2f}x  {verdict}")
    return "\n".join(lines)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="rhc-bench-coffea-") as name:
        scratch = Path(name)
        print(f"generating {EVENTS:,} events ...", file=sys.stderr, flush=True)
        generation_seconds, path = timed(
            lambda: generate_physics(scratch / "dy.root", EVENTS, seed=SEED)
        )
        check = Checker(run_coffea(processor.IterativeExecutor(), path))
        seconds = measure(path, scratch, check)
        generation = {"file_bytes": path.stat().st_size, "generation_seconds": generation_seconds}
        summary = summarize(seconds, generation, check.checked)
    publish("coffea", summary, report(summary))


if __name__ == "__main__":
    main()
