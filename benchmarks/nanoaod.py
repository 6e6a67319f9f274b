"""The NanoAOD benchmark: rhc's analysis runs against a local loop and coffea, in one run.

On one generated file of 2,000,000 NanoAOD-shaped events (written to a temporary directory and
removed afterwards) and the reference analysis, rhc.nanoaod.Dimuon, in chunks of 100,000 events:
events/s of the analysis, medians of several rounds, each round running every system once:
  rhc cold    rhc.nanoaod.run on 2 fresh `rhc worker` processes: the first run after starting
              the cluster, so the workers have not seen the file (nor imported uproot)
  rhc warm    a second run on the same workers: their memory caches hold the chunks
  rhc rerun   a third run from the same notebook: it also knows how long a cached chunk takes
              (a diagnostic: an analyst's next re-run)
  rhc map     a user's own function of a chunk, defined in this script (so __main__: shipped
              by value), through Manager.remote_map(..., reduce=add) on 2 fresh workers
  pool        the same chunk task in a ProcessPoolExecutor(2) whose processes were forked from
              this one after it had imported everything and analysed the file (nothing to
              import, no broker, no first calls): what two processes at once can do on this
              machine, whatever system drives them
  local loop  rhc.nanoaod.run_locally: the same chunks in this process, one after another
  coffea      processor.Runner with FuturesExecutor(workers=2) and BaseSchema, the same
              selection and weights through rhc.nanoaod.dimuon.fill
  rhc primed  a fresh cluster whose workers first analysed another (small) file: the file
              is new to them but their libraries have run, as on workers that stay up
              between runs (a diagnostic, to separate worker start-up from reading)
Targets (issue 15): rhc cold >= 0.95x the pool, rhc warm >= 5x rhc cold, rhc map >= 0.95x the
pool; and (issue 6) rhc cold >= coffea. Reading remote files (HTTP, root://), cold and warm, is
benchmarks/remote.py's.

Beside the figures, the minor page faults per chunk of the processes each run uses (the
workers and their task processes, or the pool's; not Redis's): each is the first touch of a
fresh page of memory, a microsecond or more on a virtual machine. A worker's memory cache keeps
every chunk's arrays, so theirs land on fresh pages; a cold worker's count also holds its first
analysis (lazy imports, first calls), which primed workers have behind them.

Every run's histogram must equal, bin for bin, the one of rhc.nanoaod.dimuon.direct (the file
read whole in one process, without chunks), or the benchmark stops before reporting. Systems run
one at a time, so none takes cores from another; every run reads the file from the OS page cache
("cold" is about the systems' own processes and caches, for all of them alike).

Run `python benchmarks/nanoaod.py` (or `make bench-nanoaod`): it prints a table and writes
benchmarks/results/nanoaod.json.
"""

from __future__ import annotations

import contextlib
import functools
import io
import multiprocessing
import shlex
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import awkward as ak
import coffea
import numpy as np
import uproot
from coffea import processor
from coffea.nanoevents import BaseSchema
from harness import CHUNKSIZE, WORKERS, Checker, median, rhc_cluster, run_rhc, timed, verdict
from machine import header, machine, publish
from processes import descendants_minor_faults

import rhc
from rhc.nanoaod import Chunk, Dimuon, Processor, RunResult, add, make_chunks, run, run_locally
from rhc.nanoaod.chunks import datasets
from rhc.nanoaod.dimuon import BRANCHES, WEIGHT, direct, fill, mass_histogram
from rhc.nanoaod.generate import generate_physics
from rhc.nanoaod.processor import RunOutput, merge_outputs
from rhc.nanoaod.reading import Reader, current_reader
from rhc.nanoaod.runner import chunk_task

EVENTS = 2_000_000
ROUNDS = 7
"""Every system runs once per round, so a slow spell of this shared machine
hits all of them rather than one; figures are medians over rounds. A round takes ~10 s."""
PRIMER_EVENTS, PRIMER_CHUNKSIZE = 20_000, 1_000
"""The small file the primed workers analyse first: 20 chunks, so that both workers run some."""
SEED, PRIMER_SEED = 1, 2
TARGETS = {
    "rhc cold / pool": ("rhc cold", "pool", 0.95),
    "rhc warm / rhc cold": ("rhc warm", "rhc cold", 5.0),
    "rhc map / pool": ("rhc map", "pool", 0.95),
    "rhc cold / coffea": ("rhc cold", "coffea", 1.0),
}
"""Each ratio of events/s (first system over second) and the least it must be."""
LABEL = 50


class CoffeaDimuon(processor.ProcessorABC):
    """The reference analysis as a coffea processor: the same selection, weights and histogram
    per dataset, and the same MET sums per file as Dimuon, so coffea reads the same 9 branches
    as rhc (genWeight among them)."""

    def process(self, events: object) -> dict:
        dataset = events.metadata["dataset"]
        histogram = mass_histogram([dataset])
        sumw, _ = fill(histogram, events, dataset)
        met = np.array([float(ak.sum(events.MET_pt)), float(len(events))])
        return {
            "mass": histogram,
            "sumw": {dataset: sumw},
            "met": {events.metadata["filename"]: met},
        }

    def postprocess(self, accumulator: dict) -> dict:
        return accumulator


def user_dimuon(chunk: Chunk, reader: Reader | None = None) -> dict:
    """The reference analysis as a user writes it in a notebook: a function of a chunk, defined
    in __main__ (this script), so that it travels by value; it reads through the worker's
    caches, or through `reader`."""
    events, _ = (reader or current_reader()).read(chunk, (*BRANCHES, WEIGHT))
    return Dimuon().process(events, chunk)


def run_map(manager: rhc.Manager, path: Path) -> dict:
    """user_dimuon over the chunks through remote_map, merged on the workers."""
    chunks = make_chunks([str(path)], CHUNKSIZE, branches=BRANCHES).chunks
    return Dimuon().postprocess(manager.remote_map(user_dimuon, chunks, reduce=add, progress=False))


_POOL_READERS: dict[int, Reader] = {}


def pool_chunk(chunk: object, round_index: int) -> RunOutput:
    """The chunk task as an rhc worker runs it, in a pool process: one Reader per round, so the
    file is opened once per process and round, as on a worker that has not seen it."""
    reader = _POOL_READERS.setdefault(round_index, Reader())
    return chunk_task(Dimuon(), None, False)(chunk, reader)


def run_pool(pool: ProcessPoolExecutor, path: Path, round_index: int) -> RunResult:
    """The ceiling of any 2-process system: chunks straight to forked processes, merged here."""
    processor: Processor = Dimuon()
    chunks = make_chunks([str(path)], CHUNKSIZE, branches=processor.branches).chunks
    outputs = pool.map(functools.partial(pool_chunk, round_index=round_index), chunks)
    output = functools.reduce(merge_outputs, outputs, RunOutput())
    return RunResult(processor.postprocess(output.value), output.reports, [])


def run_coffea(path: Path) -> dict:
    """coffea as its documentation shows it, with its progress bars off (they draw on stdout
    regardless of status=False in FuturesExecutor; the output goes nowhere here)."""
    executor = processor.FuturesExecutor(workers=WORKERS, status=False)
    runner = processor.Runner(executor=executor, schema=BaseSchema, chunksize=CHUNKSIZE)
    with contextlib.redirect_stdout(io.StringIO()):
        # the dataset rhc names a plain list of files, so the histograms compare
        output = runner(datasets([str(path)]), CoffeaDimuon(), treename="Events")
    total, count = output["met"][str(path)]
    return {"mass": output["mass"], "sumw": output["sumw"], "met_mean": {str(path): total / count}}


class Runs:
    """The figures of every run, by system, checked as they come."""

    def __init__(self, check: Checker) -> None:
        self.check = check
        self.by_system: dict[str, list[dict]] = {name: [] for name in DESCRIPTIONS}

    def add(
        self,
        name: str,
        seconds: float,
        value: dict,
        result: RunResult | None = None,
        *,
        faults_before: int | None = None,
        **more: float,
    ) -> None:
        """A run's figures; faults_before: this process's descendants' minor page faults
        (descendants_minor_faults) before the run, for its faults per chunk."""
        self.check(name, value, None if result is None else result.events)
        entry = {"seconds": seconds, **more}
        if result is not None:
            summary = result.summary()
            entry["chunk_seconds"] = summary.mean_task_seconds
            entry["bytes_read"] = result.bytes_read
            if faults_before is not None:
                faults = descendants_minor_faults() - faults_before
                entry["faults_per_chunk"] = faults / len(result.chunks)
        self.by_system[name].append(entry)


def measure_speed(path: Path, primer: Path, scratch: Path, check: Checker) -> dict:
    """ROUNDS rounds, every system once per round, one after the other."""
    runs = Runs(check)
    files = [str(path)]
    # Forked now, before any cluster or thread exists: its processes start with everything
    # imported, and stay idle while the other systems run.
    with ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("fork")) as pool:
        list(pool.map(abs, range(4 * WORKERS)))  # both processes started
        for index in range(ROUNDS):
            print(f"round {index + 1}/{ROUNDS} ...", file=sys.stderr, flush=True)
            with rhc_cluster(scratch / f"cold-{index}") as manager:
                faults = descendants_minor_faults()
                seconds, result, delay = run_rhc(manager, files)
                runs.add(
                    "rhc cold",
                    seconds,
                    result.value,
                    result,
                    faults_before=faults,
                    first_chunk_delay=delay,
                )
                faults = descendants_minor_faults()
                seconds, result, _ = run_rhc(manager, files)
                runs.add("rhc warm", seconds, result.value, result, faults_before=faults)
                seconds, result, _ = run_rhc(manager, files)
                runs.add("rhc rerun", seconds, result.value, result)
            with rhc_cluster(scratch / f"map-{index}") as manager:
                seconds, value = timed(functools.partial(run_map, manager, path))
                runs.add("rhc map", seconds, value)
            with rhc_cluster(scratch / f"primed-{index}") as manager:
                primed = run(
                    manager, Dimuon(), [str(primer)], chunksize=PRIMER_CHUNKSIZE, progress=False
                )
                if len({r.worker for r in primed.chunks}) < WORKERS:
                    raise RuntimeError("the primer ran on fewer than all workers")
                faults = descendants_minor_faults()
                seconds, result, delay = run_rhc(manager, files)
                runs.add(
                    "rhc primed",
                    seconds,
                    result.value,
                    result,
                    faults_before=faults,
                    first_chunk_delay=delay,
                )
            seconds, result = timed(lambda: run_locally(Dimuon(), files, chunksize=CHUNKSIZE))
            runs.add("local loop", seconds, result.value, result)
            seconds, value = timed(lambda: run_coffea(path))
            runs.add("coffea", seconds, value)
            faults = descendants_minor_faults()
            seconds, result = timed(functools.partial(run_pool, pool, path, index))
            runs.add("pool", seconds, result.value, result, faults_before=faults)
    return runs.by_system


def summarize(speed: dict, generation: dict, checked: int) -> dict:
    """Everything the table shows and nanoaod.json keeps, every run's raw figures included."""
    figures = {
        name: {
            "seconds": median(runs, "seconds"),
            "events_per_second": EVENTS / median(runs, "seconds"),
            **{
                key: median(runs, key)
                for key in ("chunk_seconds", "first_chunk_delay", "bytes_read", "faults_per_chunk")
                if key in runs[0]
            },
        }
        for name, runs in speed.items()
    }
    ratios = {
        name: figures[faster]["events_per_second"] / figures[slower]["events_per_second"]
        for name, (faster, slower, _) in TARGETS.items()
    }
    return {
        "command": shlex.join([sys.executable, *sys.argv]),
        "machine": machine(
            uproot=uproot.__version__,
            awkward=ak.__version__,
            numpy=np.__version__,
            coffea=coffea.__version__,
        ),
        "method": {
            "events": EVENTS,
            "chunksize": CHUNKSIZE,
            "workers": WORKERS,
            "rounds": ROUNDS,
            "file_bytes": generation["bytes"],
            "generation_seconds": generation["seconds"],
            "direct_seconds": generation["direct_seconds"],
            "results_checked_against_direct": checked,
        },
        "figures": figures,
        "ratios": ratios,
        "targets": {
            name: {"target": f">= {TARGETS[name][2]:g}x", "met": ratio >= TARGETS[name][2]}
            for name, ratio in ratios.items()
        },
        "runs": {"speed": speed},
    }


DESCRIPTIONS = {
    "rhc cold": "rhc, cold: fresh workers, first run",
    "rhc warm": "rhc, warm: second run, same workers",
    "rhc map": "rhc, a __main__ function through remote_map, cold",
    "pool": f"ProcessPoolExecutor({WORKERS}), forked, no broker",
    "local loop": "local loop (run_locally, 1 process)",
    "coffea": f"coffea Runner, FuturesExecutor({WORKERS}), BaseSchema",
    "rhc primed": "rhc, new file, workers primed by another run",
    "rhc rerun": "rhc, third run from the same notebook",
}
DIAGNOSTICS = ("rhc primed", "rhc rerun")
"""Rows that explain the others rather than compete: below a rule in the table."""


def report(summary: dict) -> str:
    """The printed table: how it was measured, the figures, the targets, and where rhc's cold
    time goes (from the diagnostic rows)."""
    method, figures = summary["method"], summary["figures"]
    pool = figures["pool"]["events_per_second"]
    local = figures["local loop"]["events_per_second"]
    file_mb = method["file_bytes"] / 1e6
    lines = [
        *header(summary),
        f"data: {method['events']:,} generated events ({file_mb:.0f} MB), Dimuon in chunks of "
        f"{method['chunksize']:,}, {WORKERS} workers per system; all "
        f"{method['results_checked_against_direct']} runs' histograms equal direct() bin for bin",
        f"method: medians of {method['rounds']} rounds; each run timed from its call to its "
        "merged result; the file is in the OS page cache for every system",
        "",
        f"{'analysis':<{LABEL}}{'wall s':>8}{'events/s':>12}{'vs pool':>9}{'vs local':>10}",
    ]
    for name, description in DESCRIPTIONS.items():
        if name == DIAGNOSTICS[0]:
            lines.append(f"{'diagnostics:':<{LABEL}}")
        rate = figures[name]["events_per_second"]
        lines.append(
            f"{description:<{LABEL}}{figures[name]['seconds']:>8.2f}{rate:>12,.0f}"
            f"{rate / pool:>8.2f}x{rate / local:>9.2f}x"
        )
    lines.append("")
    for name, target in summary["targets"].items():
        lines.append(
            f"target: {name} {target['target']}: {summary['ratios'][name]:.2f}x  "
            f"{verdict(target['met'])}"
        )
    cold, primed = figures["rhc cold"], figures["rhc primed"]
    rerun = figures["rhc rerun"]["events_per_second"] / cold["events_per_second"]
    lines += [
        f"rhc rerun / rhc cold: {rerun:.2f}x (a diagnostic: the warm target is the second run's)",
        f"rhc cold: {cold['first_chunk_delay']:.2f} s from run() to the first chunk starting "
        f"({1e3 * primed['first_chunk_delay']:.0f} ms on primed workers)",
        f"mean chunk: {1e3 * cold['chunk_seconds']:.0f} ms rhc cold, "
        f"{1e3 * primed['chunk_seconds']:.0f} ms rhc primed, "
        f"{1e3 * figures['pool']['chunk_seconds']:.0f} ms pool (2 at once); "
        f"{1e3 * figures['local loop']['chunk_seconds']:.0f} ms local loop "
        f"(1 at a time); {1e3 * figures['rhc warm']['chunk_seconds']:.0f} ms rhc warm",
        "minor page faults per chunk (a first touch of a fresh page each): "
        f"{cold['faults_per_chunk']:,.0f} rhc cold, "
        f"{primed['faults_per_chunk']:,.0f} rhc primed, "
        f"{figures['rhc warm']['faults_per_chunk']:,.0f} rhc warm, "
        f"{figures['pool']['faults_per_chunk']:,.0f} pool",
    ]
    return "\n".join(lines)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="rhc-bench-nanoaod-") as name:
        scratch = Path(name)
        print(f"generating {EVENTS:,} events ...", file=sys.stderr, flush=True)
        generation_seconds, path = timed(
            lambda: generate_physics(scratch / "dy.root", EVENTS, seed=SEED)
        )
        primer = generate_physics(scratch / "primer.root", PRIMER_EVENTS, seed=PRIMER_SEED)
        direct_seconds, expected = timed(lambda: direct([str(path)]))
        check = Checker(expected, EVENTS)
        speed = measure_speed(path, primer, scratch, check)
        generation = {
            "seconds": generation_seconds,
            "direct_seconds": direct_seconds,
            "bytes": path.stat().st_size,
        }
        summary = summarize(speed, generation, check.checked)
    publish("nanoaod", summary, report(summary))


if __name__ == "__main__":
    main()
