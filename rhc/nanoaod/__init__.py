# SPDX-License-Identifier: BSD-3-Clause
"""Analysing CMS NanoAOD with rhc: chunks of files, processors, merged results, worker caches.

from rhc import Manager
from rhc.nanoaod import Dimuon
result = Manager().run(Dimuon(), {"DY": files}, chunksize=100_000)
result.value["mass"].plot()
result.plot_timeline("timeline.png")
"""

from rhc.nanoaod.accumulate import accumulate, add
from rhc.nanoaod.chunks import BadFile, BadFilesError, Chunk, make_chunks
from rhc.nanoaod.dimuon import Dimuon
from rhc.nanoaod.processor import ChunkReport, Processor
from rhc.nanoaod.reading import FileReadError, read
from rhc.nanoaod.runner import RunResult, run_locally

__all__ = [
    "BadFile",
    "BadFilesError",
    "Chunk",
    "ChunkReport",
    "Dimuon",
    "FileReadError",
    "Processor",
    "RunResult",
    "accumulate",
    "add",
    "make_chunks",
    "read",
    "run_locally",
]
