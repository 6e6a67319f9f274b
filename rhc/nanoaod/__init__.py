# SPDX-License-Identifier: BSD-3-Clause
"""Analysing CMS NanoAOD with rhc: chunks of files, processors, merged results, worker caches.

    from rhc import Manager
    from rhc.nanoaod import Dimuon, run

    result = run(Manager(), Dimuon(), {"DY": dy_files, "data": data_files}, chunksize=100_000)
    result.value["mass"]["DY", :].plot()        # a histogram per dataset, weighted by genWeight
    result.value["sumw"]["DY"]                  # the sum of weights, to normalise with
    result.save("dimuon.root")                  # mass/DY, mass/data, sumw, ... for ROOT or uproot
    result.plot_timeline("timeline.png")

It sits above the manager and the worker and uses only their public faces: Manager.remote_map
to run, rhc.worker.get_worker() and its memory cache to read through the worker's caches.
CachedSource reads remote files through the worker's range cache for any uproot.open;
rhc_warm_up() is what a worker's task process runs once when it preloads this package.
"""

from rhc.nanoaod.accumulate import accumulate, add
from rhc.nanoaod.chunks import BadFile, BadFilesError, Chunk, make_chunks
from rhc.nanoaod.dimuon import Dimuon
from rhc.nanoaod.processor import ChunkReport, Processor
from rhc.nanoaod.reading import FileReadError, read
from rhc.nanoaod.rootfile import NothingToSaveError
from rhc.nanoaod.runner import RunOptions, RunResult, run, run_locally
from rhc.nanoaod.source import CachedSource
from rhc.nanoaod.warmup import rhc_warm_up as rhc_warm_up  # the hook, not API: not in __all__

__all__ = [
    "BadFile",
    "BadFilesError",
    "CachedSource",
    "Chunk",
    "ChunkReport",
    "Dimuon",
    "FileReadError",
    "NothingToSaveError",
    "Processor",
    "RunOptions",
    "RunResult",
    "accumulate",
    "add",
    "make_chunks",
    "read",
    "run",
    "run_locally",
]
